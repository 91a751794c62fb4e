"""Times peer implementations for `keras_vits.benchmark`, in a separate Python process.

    <python> keras_vits/_reference_worker.py timm    # torch + timm (HF transformers for PVT v1)
    <python> keras_vits/_reference_worker.py kecam   # tf-keras + keras_cv_attention_models

The benchmark starts it and drives it over pipes: one JSON command per line on stdin, one JSON
line back. `prepare` builds a model (random weights) at a batch and image size, for inference or
a training step, warms it up and answers `{"ok": true, ...versions}`, or `{"ok": false, "error": ...}`
when this framework lacks the model or mode; `time` runs a prepared case `calls` times and returns
seconds per call; `profile` (timm training cases only, for tools/benchmarks/profile_train_ops.py) runs the
forward and backward pass, without the optimizer, `calls` times under torch.profiler and returns
each op's self CPU milliseconds and count per call. This file is never imported by the package itself.
"""

import json
import os
import sys
import time

# PVT v1 (not in timm): transformers' PvtConfig for each size, as in tools/reference/pvt_param_counts.py.
PVT_V1_DEPTHS = {
    "pvt_tiny": [2, 2, 2, 2],
    "pvt_small": [3, 4, 6, 3],
    "pvt_medium": [3, 4, 18, 3],
    "pvt_large": [3, 8, 27, 3],
}

# keras_cv_attention_models builders for the registry names it also has: (module, function, kwargs).
# kecam names no DeiT-S, but timm's deit_small_patch16_224 is a plain ViT-S/16, which kecam's ViT builds.
VIT_SMALL = ("beit", "ViT", {"depth": 12, "embed_dim": 384, "num_heads": 6, "model_name": "vit_small"})
KECAM_MODELS = {
    "vit_tiny_patch16_224": ("beit", "ViTTinyPatch16", {}),
    "vit_small_patch16_224": VIT_SMALL,
    "deit_small_patch16_224": VIT_SMALL,
    "vit_base_patch16_224": ("beit", "ViTBasePatch16", {}),
    **{f"pvt_v2_b{i}": ("pvt", f"PVT_V2B{i}", {}) for i in range(6)},
}


class Unsupported(Exception):
    pass


def timm_case(name, batch, image_size, train, case=None):
    """A no-argument callable running one inference or AdamW training step of the timm model.

    `case`: the benchmark's custom case (`model`, `image_size`, `in_chans`, `num_classes`, `arguments`,
    in keras_vits's argument names, which are timm's but for `image_size`), or None.
    """
    import timm
    import torch

    channels, classes = 3, 1000
    if case is not None:
        channels, classes, image_size = case["in_chans"], case["num_classes"], case["image_size"]
        module = forward = timm.create_model(
            case["model"],
            pretrained=False,
            num_classes=classes,
            in_chans=channels,
            img_size=image_size,
            **case["arguments"],
        )

    elif name in PVT_V1_DEPTHS:
        from transformers import PvtConfig, PvtForImageClassification

        config = PvtConfig(image_size=image_size, depths=PVT_V1_DEPTHS[name], num_labels=1000)
        module = PvtForImageClassification(config)

        def forward(x):
            return module(pixel_values=x).logits

    else:
        size_argument = {} if image_size == 224 else {"img_size": image_size}
        module = forward = timm.create_model(name, pretrained=False, num_classes=1000, **size_argument)
    images = torch.randn(batch, channels, image_size, image_size)
    info = {"threads": torch.get_num_threads(), "torch": torch.__version__, "timm": timm.__version__}
    if train:
        module.train()
        labels = torch.randint(0, classes, (batch,))
        optimizer = torch.optim.AdamW(module.parameters(), lr=1e-4, weight_decay=0.05)

        def forward_backward():
            optimizer.zero_grad(set_to_none=True)
            torch.nn.functional.cross_entropy(forward(images), labels).backward()

        def step():
            forward_backward()
            optimizer.step()

        step.forward_backward = forward_backward
        return step, info
    module.eval()

    def infer():
        with torch.inference_mode():
            forward(images)

    return infer, info


def kecam_case(name, batch, image_size, train, jit_compile):
    """A callable running the keras_cv_attention_models model in a (XLA-compiled) tf.function."""
    if train:
        raise Unsupported("training steps are timed against timm only")
    if name not in KECAM_MODELS:
        raise Unsupported(f"keras_cv_attention_models has no {name}")
    import importlib

    import keras_cv_attention_models
    import tensorflow as tf
    import tf_keras

    module, function, kwargs = KECAM_MODELS[name]
    build = getattr(importlib.import_module(f"keras_cv_attention_models.{module}"), function)
    model = build(
        input_shape=(image_size, image_size, 3), num_classes=1000, classifier_activation=None, pretrained=None, **kwargs
    )
    images = tf.random.normal([batch, image_size, image_size, 3])
    forward = tf.function(lambda x: model(x, training=False), jit_compile=jit_compile)
    info = {"kecam": keras_cv_attention_models.__version__, "kecam_keras": tf_keras.__version__}
    return (lambda: forward(images).numpy()), info


def profile_ops(function, calls):
    """`({aten op: self CPU ms per call}, {aten op: calls of it per call})` of `calls` calls of `function`."""
    import torch

    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profiler:
        for _ in range(calls):
            function()
    events = profiler.key_averages()
    return {e.key: e.self_cpu_time_total / 1000 / calls for e in events}, {e.key: e.count // calls for e in events}


def main():
    framework = sys.argv[1] if len(sys.argv) > 1 else "timm"
    if framework == "kecam":
        os.environ["TF_USE_LEGACY_KERAS"] = "1"  # kecam 1.4 is written for tf-keras; set before TF is imported
    cases = {}
    for line in sys.stdin:
        command = json.loads(line)
        key = command["key"]
        if command["op"] == "prepare":
            arguments = (command["model"], command["batch"], command["image_size"], command["train"])
            try:
                if framework == "timm":
                    step, info = timm_case(*arguments, case=command.get("case"))
                elif command.get("case"):
                    raise Unsupported("custom cases are timm's only")
                else:
                    step, info = kecam_case(*arguments, jit_compile=command.get("jit_compile", False))
            except Unsupported as error:
                print(json.dumps({"ok": False, "error": str(error)}), flush=True)
                continue
            step()
            step()
            cases[key] = step
            reply = {"ok": True, **info}
        elif command["op"] == "profile":
            milliseconds, counts = profile_ops(cases[key].forward_backward, command["calls"])
            reply = {"milliseconds": milliseconds, "counts": counts}
        else:
            step = cases[key]
            start = time.perf_counter()
            for _ in range(command["calls"]):
                step()
            reply = {"seconds": (time.perf_counter() - start) / command["calls"]}
        print(json.dumps(reply), flush=True)


if __name__ == "__main__":
    main()
