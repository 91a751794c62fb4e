"""ViT and DeiT: the shared battery, parity with timm, DeiT's heads, argument validation."""

import json

import numpy as np
import pytest
from harness import ModelBattery, random_images, to_numpy
from safetensors.numpy import load_file

from keras_vits import DeiT, VisionTransformer, load_timm_weights

TINY = dict(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)


class TestVisionTransformer(ModelBattery):
    model_cls = VisionTransformer
    configs = {
        "token": TINY,
        "avg_layer_scale_gray_nonsquare": dict(
            TINY, image_size=(32, 48), in_chans=1, global_pool="avg", init_values=0.1, qkv_bias=False
        ),
        "features_sincos2d": dict(TINY, num_classes=0, pos_embed="sincos2d"),
        "no_class_token_sincos1d_4ch": dict(
            TINY, class_token=False, global_pool="avg", pos_embed="sincos1d", in_chans=4
        ),
        "no_pos_embed": dict(TINY, pos_embed="none", patch_size=(8, 4)),
    }
    second_image_sizes = {
        "token": 48,
        "avg_layer_scale_gray_nonsquare": (48, 32),
        "features_sincos2d": (40, 24),
        "no_class_token_sincos1d_4ch": 16,
        "no_pos_embed": (16, 24),
    }


class TestDeiT(ModelBattery):
    model_cls = DeiT
    configs = {
        "avg": TINY,
        "cls_head_layer_scale": dict(TINY, head="cls", init_values=1e-2),
        "features": dict(TINY, num_classes=0),
    }
    second_image_sizes = {"avg": (48, 64), "cls_head_layer_scale": 24, "features": 40}


# ----------------------------------------------------------------------------- parity with timm


def _fixture_cases(fixtures_dir):
    cases = json.loads((fixtures_dir / "cases.json").read_text())
    return {name: case for name, case in cases.items() if not name.startswith("_")}


def _build_from_case(case):
    config = dict(case["config"])
    if case["family"] == "deit":
        # timm's distilled model always has a class token, token pooling and no fc_norm.
        assert (config.pop("global_pool"), config.pop("class_token"), config.pop("fc_norm")) == ("token", True, None)
        return DeiT(**config)
    return VisionTransformer(**config)


PARITY_CASES = ["vit_token", "vit_avg_ls", "deit_distilled", "vit_token_resample48", "deit_distilled_resample"]


@pytest.mark.parametrize("case_name", PARITY_CASES)
def test_logits_match_timm(case_name, fixtures_dir):
    case = _fixture_cases(fixtures_dir)[case_name]
    model = _build_from_case(case)
    load_timm_weights(model, fixtures_dir / case["checkpoint"])  # the model's own weight map
    io = load_file(str(fixtures_dir / f"{case_name}_io.safetensors"))
    np.testing.assert_array_less(np.abs(to_numpy(model(io["images"])) - io["logits"]).max(), 1e-4)
    if "logits_cls" in io:
        cls_logits, dist_logits = model(io["images"], training=True)
        np.testing.assert_array_less(np.abs(to_numpy(cls_logits) - io["logits_cls"]).max(), 1e-4)
        np.testing.assert_array_less(np.abs(to_numpy(dist_logits) - io["logits_dist"]).max(), 1e-4)


def test_fixtures_cover_every_case(fixtures_dir):
    assert sorted(_fixture_cases(fixtures_dir)) == sorted(PARITY_CASES)


# ----------------------------------------------------------------------------- DeiT heads


def test_deit_heads_select_and_average():
    model = DeiT(**TINY)
    images = random_images((2, 32, 32, 3))
    cls_logits, dist_logits = (to_numpy(t) for t in model(images, training=True))
    assert not np.allclose(cls_logits, dist_logits)
    np.testing.assert_allclose(to_numpy(model(images)), (cls_logits + dist_logits) / 2, atol=1e-6)
    for head, expected in (("cls", cls_logits), ("dist", dist_logits)):
        single = DeiT(**TINY, head=head)
        single.set_weights(model.get_weights())
        np.testing.assert_allclose(to_numpy(single(images)), expected, atol=1e-6)


# ----------------------------------------------------------------------------- weight decay


def test_no_weight_decay_names_tokens_and_learned_position_embeddings():
    assert DeiT(**TINY).no_weight_decay() == ["cls_token", "dist_token", "pos_embed"]
    assert VisionTransformer(**TINY).no_weight_decay() == ["cls_token", "pos_embed"]
    # A fixed sin-cos table is no weight; without a class token nothing is left.
    assert VisionTransformer(**TINY, pos_embed="sincos2d").no_weight_decay() == ["cls_token"]
    assert VisionTransformer(**TINY, class_token=False, global_pool="avg", pos_embed="none").no_weight_decay() == []


# ----------------------------------------------------------------------------- argument validation


@pytest.mark.parametrize(
    "overrides, message",
    [
        (dict(image_size=30), "divisible by patch_size"),
        (dict(image_size=(32, 36)), "divisible by patch_size"),
        (dict(image_size=(32, 32, 3)), "pair"),
        (dict(in_chans=0), "in_chans"),
        (dict(num_heads=5), "divisible by num_heads"),
        (dict(global_pool="max"), "global_pool"),
        (dict(pos_embed="rope"), "pos_embed"),
        (dict(class_token=False), "class_token"),
        (dict(num_classes=-1), "num_classes"),
    ],
)
def test_vit_rejects_bad_arguments(overrides, message):
    with pytest.raises(ValueError, match=message):
        VisionTransformer(**{**TINY, **overrides})


def test_deit_rejects_unknown_head():
    with pytest.raises(ValueError, match="head must be one of"):
        DeiT(**TINY, head="mean")


def test_wrong_spatial_size_is_rejected():
    model = VisionTransformer(**TINY)
    with pytest.raises(ValueError, match="expect"):
        model(random_images((1, 48, 32, 3)))
