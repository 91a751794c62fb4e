"""Times reference models (timm; HF transformers for PVT v1) for `keras_vits.benchmark`, in a separate Python.

Run by the benchmark as `<reference python> -m keras_vits._reference_worker` (or by path) in an
environment with torch and timm (`pip install -e '.[reference]'`). It reads one JSON command per
line on stdin and answers one JSON line: `prepare` builds a model at a batch and size (inference or
training step, random weights) and warms it up; `time` runs it `calls` times and returns seconds per call.
This file is never imported by the package itself.
"""

import json
import sys
import time

import timm
import torch

# PVT v1 (not in timm): transformers' PvtConfig for each size, as in tools/pvt_param_counts.py.
PVT_V1_DEPTHS = {"pvt_tiny": [2, 2, 2, 2], "pvt_small": [3, 4, 6, 3], "pvt_medium": [3, 4, 18, 3], "pvt_large": [3, 8, 27, 3]}


def build(name, image_size):
    if name in PVT_V1_DEPTHS:
        from transformers import PvtConfig, PvtForImageClassification

        config = PvtConfig(image_size=image_size, depths=PVT_V1_DEPTHS[name], num_labels=1000)
        model = PvtForImageClassification(config)
        return lambda x: model(pixel_values=x).logits, model
    size_argument = {} if image_size == 224 else {"img_size": image_size}
    model = timm.create_model(name, pretrained=False, num_classes=1000, **size_argument)
    return model, model


def main():
    cases = {}
    for line in sys.stdin:
        command = json.loads(line)
        key = command["key"]
        if command["op"] == "prepare":
            forward, module = build(command["model"], command["image_size"])
            images = torch.randn(command["batch"], 3, command["image_size"], command["image_size"])
            if command["train"]:
                module.train()
                labels = torch.randint(0, 1000, (command["batch"],))
                optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, weight_decay=0.05)

                def step(forward=forward, images=images, labels=labels, optimizer=optimizer):
                    optimizer.zero_grad(set_to_none=True)
                    loss = torch.nn.functional.cross_entropy(forward(images), labels)
                    loss.backward()
                    optimizer.step()

            else:
                module.eval()

                def step(forward=forward, images=images):
                    with torch.inference_mode():
                        forward(images)

            step()
            step()
            cases[key] = step
            reply = {"ok": True, "threads": torch.get_num_threads(), "torch": torch.__version__, "timm": timm.__version__}
        else:
            step = cases[key]
            start = time.perf_counter()
            for _ in range(command["calls"]):
                step()
            reply = {"seconds": (time.perf_counter() - start) / command["calls"]}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
