"""The registry: names, errors, overrides, and every variant's parameter count and MACs against the references."""

import gc
import json
import pathlib

import numpy as np
import pytest

import keras_vits
from keras_vits.backend import keras

# Trainable parameters with a 1000-class head, as the reference implementations count them. The tables
# live in tests/fixtures/ and are written by tools/reference/: param_counts.py (timm's ViT and DeiT),
# swin_param_counts.py (timm's Swin), pvt_param_counts.py (timm's PVT v2, transformers'
# PvtForImageClassification for PVT v1, named `pvt_v1_<size>` there and `pvt_<size>` here).
_FIXTURES = pathlib.Path(__file__).resolve().parent / "fixtures"


def _reference_params():
    tables = {name: json.loads((_FIXTURES / f"{name}_reference.json").read_text()) for name in ("timm", "swin", "pvt")}
    entries = {**tables["timm"], **tables["swin"], **tables["pvt"]["pvt_v2"]}
    entries.update({name.replace("pvt_v1_", "pvt_"): entry for name, entry in tables["pvt"]["pvt_v1"].items()})
    return {name: int(entry["trainable_params"]) for name, entry in entries.items() if not name.startswith("_")}


REFERENCE_TRAINABLE_PARAMS = _reference_params()

# Published GMACs ("FLOPs") and the tolerance each issue set: DeiT Table 1 (with its ViT rows) and
# Swin Table 1 within 2%; PVT v2 as timm lists it and PVT v1 unrounded (the paper prints 1.9/3.8/6.7/9.8) within 3%.
PAPER_GMACS = {
    "deit_small_patch16_224": 4.6,
    "deit_base_patch16_224": 17.5,
    "vit_base_patch16_384": 55.4,
    "vit_large_patch16_384": 190.7,
    "swin_tiny_patch4_window7_224": 4.5,
    "swin_small_patch4_window7_224": 8.7,
    "swin_base_patch4_window7_224": 15.4,
    "swin_base_patch4_window12_384": 47.0,
    "pvt_v2_b0": 0.57,
    "pvt_v2_b1": 2.12,
    "pvt_v2_b2": 4.05,
    "pvt_tiny": 1.96,
    "pvt_small": 3.86,
    "pvt_medium": 6.71,
    "pvt_large": 9.89,
}


def _trainable_params(model):
    return sum(int(np.prod(v.shape)) for v in model.trainable_weights)


def test_registry_holds_exactly_the_reference_names():
    assert keras_vits.list_models() == sorted(REFERENCE_TRAINABLE_PARAMS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(REFERENCE_TRAINABLE_PARAMS))
def test_trainable_parameters_equal_timm(name):
    model = keras_vits.create_model(name)
    try:
        assert _trainable_params(model) == REFERENCE_TRAINABLE_PARAMS[name]
        if name in PAPER_GMACS:
            gmacs = keras_vits.count_macs(model) / 1e9
            tolerance = 0.03 if name.startswith("pvt") else 0.02
            assert gmacs == pytest.approx(PAPER_GMACS[name], rel=tolerance), f"{name}: {gmacs:.2f} GMACs"
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


def test_every_paper_macs_model_is_in_the_parameter_test():
    assert set(PAPER_GMACS) <= set(REFERENCE_TRAINABLE_PARAMS)


def test_list_models_filters_by_pattern():
    assert keras_vits.list_models("deit_*distilled*") == [
        "deit_base_distilled_patch16_224",
        "deit_base_distilled_patch16_384",
        "deit_small_distilled_patch16_224",
        "deit_tiny_distilled_patch16_224",
    ]
    assert keras_vits.list_models("swin_*_384") == ["swin_base_patch4_window12_384", "swin_large_patch4_window12_384"]


def test_unknown_names_suggest_close_matches():
    with pytest.raises(ValueError, match="Did you mean deit_small_distilled_patch16_224, deit_small_patch16_224"):
        keras_vits.create_model("deit_smal")
    with pytest.raises(ValueError, match="Did you mean vit_base_patch16_224"):
        keras_vits.create_model("vit_bse_patch16_224")


def test_create_model_applies_overrides_and_class_choice():
    model = keras_vits.create_model(
        "deit_tiny_distilled_patch16_224", num_classes=7, image_size=(64, 96), depth=1, head="cls"
    )
    assert isinstance(model, keras_vits.DeiT)
    assert model.name == "deit_tiny_distilled_patch16_224"
    assert tuple(model.inputs[0].shape) == (None, 64, 96, 3)
    config = model.get_config()
    assert (config["num_classes"], config["depth"], config["head"], config["embed_dim"]) == (7, 1, "cls", 192)
    assert isinstance(keras_vits.create_model("deit_tiny_patch16_224", depth=1), keras_vits.VisionTransformer)


def test_pretrained_configs_carry_preprocessing():
    vit = keras_vits.get_pretrained_cfg("vit_base_patch16_224")
    assert vit["mean"] == (0.5, 0.5, 0.5) and vit["hf_hub_id"].startswith("timm/vit_base_patch16_224.")
    deit = keras_vits.get_pretrained_cfg("deit_base_patch16_384")
    assert deit["mean"] == (0.485, 0.456, 0.406) and deit["crop_pct"] == 1.0
    assert keras_vits.get_pretrained_cfg("vit_huge_patch14_224")["num_classes"] == 0
    assert keras_vits.get_pretrained_cfg("vit_large_patch14_224")["hf_hub_id"] is None


def test_unknown_arguments_are_named_with_what_the_model_takes():
    with pytest.raises(ValueError, match="takes no argument featurs_only. Did you mean features_only"):
        keras_vits.create_model("vit_tiny_patch16_224", featurs_only=True)
    with pytest.raises(ValueError, match="takes no argument windw_size"):
        keras_vits.create_model("swin_tiny_patch4_window7_224", windw_size=8)


def test_every_family_offers_pyramid_features_through_create_model():
    for name in ("swin_tiny_patch4_window7_224", "pvt_v2_b0", "pvt_tiny"):
        model = keras_vits.create_model(name, features_only=True, out_indices=(1, 3), depths=(1, 1, 1, 1))
        assert [info["reduction"] for info in model.feature_info] == [8, 32], name
        assert [tuple(o.shape[1:3]) for o in model.outputs] == [(28, 28), (7, 7)], name
