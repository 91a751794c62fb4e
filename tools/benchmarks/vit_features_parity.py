"""Prints the max errors of ViT and DeiT block maps and dynamic-size runs against timm, for docs/RESULTS.md.

    python tools/benchmarks/vit_features_parity.py

Runs in the package's environment (no torch), on the fixtures of
tools/reference/make_vit_features_fixtures.py: `features_only` maps of every block against
`forward_intermediates` (norm off and on, prefix tokens), and a `dynamic_img_size`
model at another size against timm's `dynamic_img_size=True` (logits and maps).
"""

import json
import pathlib

import numpy as np
from safetensors.numpy import load_file

import keras_vits

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"


def build(case, **overrides):
    config = dict(case["config"])
    if case["family"] == "deit":
        for key in ("global_pool", "class_token", "fc_norm"):
            config.pop(key)
        return keras_vits.DeiT(**{**config, **overrides})
    return keras_vits.VisionTransformer(**{**config, **overrides})


def loaded(case, **overrides):
    model = build(case, **overrides)
    keras_vits.load_timm_weights(model, FIXTURES / case["checkpoint"])
    return model


def max_error(outputs, io, keys):
    return max(float(np.abs(np.asarray(out) - io[key]).max()) for out, key in zip(outputs, keys))


def main():
    cases = json.loads((FIXTURES / "vit_features_cases.json").read_text())
    print(
        "| fixture | model | input HxW | block maps (norm off / on) | prefix tokens "
        "| dynamic size | dynamic logits | dynamic maps |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for name, case in cases.items():
        if name.startswith("_"):
            continue
        depth, prefix = case["config"]["depth"], case["config"]["class_token"]
        io = load_file(str(FIXTURES / case["features_io"]))
        errors, prefix_errors = [], []
        for norm, suffix in ((False, ""), (True, "_norm")):
            model = loaded(
                case,
                num_classes=0,
                features_only=True,
                out_indices=tuple(range(depth)),
                features_norm=norm,
                return_prefix_tokens=prefix,
            )
            outputs = list(model(io["images"]))
            maps = outputs[::2] if prefix else outputs
            errors.append(max_error(maps, io, [f"block{i}{suffix}" for i in range(depth)]))
            if prefix:
                prefix_errors.append(max_error(outputs[1::2], io, [f"prefix{i}{suffix}" for i in range(depth)]))
        dyn = load_file(str(FIXTURES / case["dynamic_io"]))
        logits = max_error([loaded(case, dynamic_img_size=True)(dyn["images"])], dyn, ["logits"])
        features = loaded(
            case, num_classes=0, dynamic_img_size=True, features_only=True, out_indices=tuple(range(depth))
        )
        dyn_maps = max_error(list(features(dyn["images"])), dyn, [f"block{i}" for i in range(depth)])
        height, width = io["images"].shape[1:3]
        size = "x".join(map(str, case["dynamic_image_size"]))
        prefix_text = f"{max(prefix_errors):.1e}" if prefix_errors else "-"
        print(
            f"| {name} | {type(features).__name__} | {height}x{width} | {errors[0]:.1e} / {errors[1]:.1e} | "
            f"{prefix_text} | {size} | {logits:.1e} | {dyn_maps:.1e} |"
        )


if __name__ == "__main__":
    main()
