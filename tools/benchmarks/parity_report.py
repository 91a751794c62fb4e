"""Prints the max |logits - reference| of every parity fixture, for docs/RESULTS.md.

    python tools/benchmarks/parity_report.py

Runs in the package's own environment (no torch): it loads each fixture
checkpoint into the keras_vits model its case describes and compares with the
logits (and stage maps) the reference implementation saved.
"""

import json
import pathlib

import numpy as np
from safetensors.numpy import load_file

import keras_vits
from keras_vits.models.pvt import PVT_V1_WEIGHT_MAP, PVT_V2_WEIGHT_MAP
from keras_vits.models.swin import SWIN_WEIGHT_MAP
from keras_vits.models.vit import VIT_WEIGHT_MAP

FIXTURES = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures"

# cases file, io-file prefix, family -> (model class, weight map, extra arguments, reference)
SOURCES = (
    (
        "cases.json",
        "",
        {
            "vit": (keras_vits.VisionTransformer, VIT_WEIGHT_MAP, {}, "timm"),
            "deit": (keras_vits.DeiT, VIT_WEIGHT_MAP, {}, "timm"),
        },
    ),
    (
        "swin_cases.json",
        "swin_",
        {None: (keras_vits.SwinTransformer, SWIN_WEIGHT_MAP, {"pad_before_shift": False}, "timm")},
    ),
    (
        "swin_hf_cases.json",
        "",
        {None: (keras_vits.SwinTransformer, SWIN_WEIGHT_MAP, {}, "transformers (official padding order)")},
    ),
    (
        "pvt_cases.json",
        "pvt_",
        {
            "pvt_v2": (keras_vits.PyramidVisionTransformerV2, PVT_V2_WEIGHT_MAP, {}, "timm"),
            "pvt_v1": (keras_vits.PyramidVisionTransformer, PVT_V1_WEIGHT_MAP, {}, "transformers"),
        },
    ),
)


def _config(case, model_cls):
    config = dict(case["config"])
    if model_cls is keras_vits.DeiT:  # timm's distilled model fixes these
        for key in ("global_pool", "class_token", "fc_norm"):
            config.pop(key)
    return config


def main():
    rows = []
    for cases_file, prefix, families in SOURCES:
        cases = json.loads((FIXTURES / cases_file).read_text())
        for name, case in cases.items():
            if name.startswith("_"):
                continue
            model_cls, weight_map, extra, reference = families[case.get("family") if len(families) > 1 else None]
            io = load_file(str(FIXTURES / f"{prefix}{name}_io.safetensors"))
            model = model_cls(**_config(case, model_cls), **extra)
            keras_vits.load_timm_weights(model, FIXTURES / case["checkpoint"], weight_map)
            error = float(np.abs(model(io["images"]).numpy() - io["logits"]).max())
            stages = [k for k in io if k.startswith("stage_")]
            stage_error = ""
            if stages:
                features = model_cls(**_config(case, model_cls), **extra, features_only=True)
                keras_vits.load_timm_weights(features, FIXTURES / case["checkpoint"], weight_map)
                maps = features(io["images"])
                stage_error = (
                    f"{max(float(np.abs(m.numpy() - io[f'stage_{i}']).max()) for i, m in enumerate(maps)):.1e}"
                )
            rows.append(
                (f"{prefix}{name}", model_cls.__name__, reference, tuple(io["images"].shape[1:3]), error, stage_error)
            )
    print("| fixture | model | reference | input HxW | max abs logit error | max abs stage-map error |")
    print("|---|---|---|---|---|---|")
    for fixture, model_name, reference, size, error, stage_error in rows:
        print(f"| {fixture} | {model_name} | {reference} | {size[0]}x{size[1]} | {error:.1e} | {stage_error or '-'} |")


if __name__ == "__main__":
    main()
