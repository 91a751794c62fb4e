"""The registry: names, errors, overrides, and every variant's parameter count and MACs against the references."""

import gc

import numpy as np
import pytest

import keras_vits
from keras_vits.backend import keras

# Trainable parameters with a 1000-class head, as timm 1.0.31 counts them
# (`tools/param_counts.py`, which writes tools/timm_reference.json).
TIMM_TRAINABLE_PARAMS = {
    "vit_tiny_patch16_224": 5_717_416,
    "vit_tiny_patch16_384": 5_790_376,
    "vit_small_patch8_224": 22_055_272,
    "vit_small_patch16_224": 22_050_664,
    "vit_small_patch16_384": 22_196_584,
    "vit_small_patch32_224": 22_878_952,
    "vit_small_patch32_384": 22_915_432,
    "vit_base_patch8_224": 86_576_872,
    "vit_base_patch16_224": 86_567_656,
    "vit_base_patch16_384": 86_859_496,
    "vit_base_patch32_224": 88_224_232,
    "vit_base_patch32_384": 88_297_192,
    "vit_large_patch14_224": 304_203_752,
    "vit_large_patch16_224": 304_326_632,
    "vit_large_patch16_384": 304_715_752,
    "vit_large_patch32_224": 306_535_400,
    "vit_large_patch32_384": 306_632_680,
    "vit_huge_patch14_224": 632_045_800,
    "deit_tiny_patch16_224": 5_717_416,
    "deit_small_patch16_224": 22_050_664,
    "deit_base_patch16_224": 86_567_656,
    "deit_base_patch16_384": 86_859_496,
    "deit_tiny_distilled_patch16_224": 5_910_800,
    "deit_small_distilled_patch16_224": 22_436_432,
    "deit_base_distilled_patch16_224": 87_338_192,
    "deit_base_distilled_patch16_384": 87_630_032,
    # tools/swin_param_counts.py -> tools/swin_reference.json
    "swin_tiny_patch4_window7_224": 28_288_354,
    "swin_small_patch4_window7_224": 49_606_258,
    "swin_base_patch4_window7_224": 87_768_224,
    "swin_large_patch4_window7_224": 196_532_476,
    "swin_base_patch4_window12_384": 87_903_584,
    "swin_large_patch4_window12_384": 196_735_516,
    # tools/pvt_param_counts.py -> tools/pvt_reference.json (v1: transformers' PvtForImageClassification)
    "pvt_v2_b0": 3_666_760,
    "pvt_v2_b1": 14_009_000,
    "pvt_v2_b2": 25_362_856,
    "pvt_v2_b2_li": 22_553_512,
    "pvt_v2_b3": 45_238_696,
    "pvt_v2_b4": 62_556_072,
    "pvt_v2_b5": 81_956_008,
    "pvt_tiny": 13_229_288,
    "pvt_small": 24_485_864,
    "pvt_medium": 44_208_104,
    "pvt_large": 61_369_320,
}

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
    assert keras_vits.list_models() == sorted(TIMM_TRAINABLE_PARAMS)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TIMM_TRAINABLE_PARAMS))
def test_trainable_parameters_equal_timm(name):
    model = keras_vits.create_model(name)
    try:
        assert _trainable_params(model) == TIMM_TRAINABLE_PARAMS[name]
        if name in PAPER_GMACS:
            gmacs = keras_vits.count_macs(model) / 1e9
            tolerance = 0.03 if name.startswith("pvt") else 0.02
            assert gmacs == pytest.approx(PAPER_GMACS[name], rel=tolerance), f"{name}: {gmacs:.2f} GMACs"
    finally:
        del model
        keras.backend.clear_session()
        gc.collect()


def test_every_paper_macs_model_is_in_the_parameter_test():
    assert set(PAPER_GMACS) <= set(TIMM_TRAINABLE_PARAMS)


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
