"""PVT v1 and v2: the shared battery, adaptive pooling, features, and parity with timm (v2) and transformers (v1)."""

import json

import numpy as np
import pytest
from harness import ModelBattery, random_images, to_numpy
from safetensors.numpy import load_file

from keras_vits import (
    PyramidVisionTransformer,
    PyramidVisionTransformerV2,
    load_timm_weights,
)
from keras_vits.layers import AdaptiveAveragePooling2D, SpatialReductionAttentionCore
from keras_vits.layers.pvt_pooling import adaptive_pool_matrix

TINY = dict(
    image_size=64,
    embed_dims=(8, 16, 24, 32),
    depths=(1, 1, 1, 1),
    num_heads=(1, 2, 1, 2),
    mlp_ratios=(2, 2, 2, 2),
    num_classes=10,
)


class TestPyramidVisionTransformerV2(ModelBattery):
    model_cls = PyramidVisionTransformerV2
    configs = {
        "default": TINY,
        "linear_gray_nonsquare": dict(TINY, linear=True, in_chans=1, image_size=(48, 80)),
        "features_no_qkv_bias": dict(TINY, num_classes=0, qkv_bias=False),
    }
    second_image_sizes = {"default": (96, 64), "linear_gray_nonsquare": 40, "features_no_qkv_bias": 72}

    def feature_width(self, config):
        return config["embed_dims"][-1]


class TestPyramidVisionTransformer(ModelBattery):
    model_cls = PyramidVisionTransformer
    configs = {
        "default": TINY,
        "features_nonsquare": dict(TINY, num_classes=0, image_size=(64, 96)),
    }
    second_image_sizes = {"default": (96, 128), "features_nonsquare": 32}

    def feature_width(self, config):
        return config["embed_dims"][-1]


# ----------------------------------------------------------------------------- layers


@pytest.mark.parametrize("in_size, out_size", [(14, 7), (20, 7), (3, 7), (5, 2)])
def test_adaptive_pool_bins_match_pytorch(in_size, out_size):
    matrix = adaptive_pool_matrix(in_size, out_size)
    for i, row in enumerate(matrix):
        start, stop = int(np.floor(i * in_size / out_size)), int(np.ceil((i + 1) * in_size / out_size))
        expected = np.zeros(in_size)
        expected[start:stop] = 1.0 / (stop - start)
        np.testing.assert_allclose(row, expected, atol=1e-7)


def test_adaptive_pooling_averages_each_bin():
    x = random_images((2, 14, 20, 3))
    out = to_numpy(AdaptiveAveragePooling2D(7)(x))
    assert out.shape == (2, 7, 7, 3)
    np.testing.assert_allclose(out[:, 0, 0], x[:, 0:2, 0:3].mean(axis=(1, 2)), atol=1e-6)
    np.testing.assert_allclose(out[:, 6, 6], x[:, 12:14, 17:20].mean(axis=(1, 2)), atol=1e-6)


def test_spatial_reduction_core_accepts_fused_or_separate_key_values():
    query, key, value = random_images((2, 6, 8)), random_images((2, 3, 8), seed=1), random_images((2, 3, 8), seed=2)
    fused = SpatialReductionAttentionCore(2)([query, np.concatenate([key, value], axis=-1)])
    separate = SpatialReductionAttentionCore(2)([query, key, value])
    np.testing.assert_allclose(to_numpy(fused), to_numpy(separate), atol=1e-6)
    with pytest.raises(ValueError, match="key_value"):
        SpatialReductionAttentionCore(2)([query, key])


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="one entry per stage"):
        PyramidVisionTransformerV2(**{**TINY, "sr_ratios": (8, 4, 2)})
    with pytest.raises(ValueError, match="sr_ratio 1"):
        PyramidVisionTransformer(**{**TINY, "sr_ratios": (8, 4, 2, 2)})
    with pytest.raises(ValueError, match="divisible by num_heads"):
        PyramidVisionTransformerV2(**{**TINY, "num_heads": (3, 2, 1, 2)})


# ----------------------------------------------------------------------------- weight decay


def test_no_weight_decay_names_v1_position_embeddings_and_class_token_and_nothing_in_v2():
    assert PyramidVisionTransformer(**TINY).no_weight_decay() == [
        "stages_0_pos_embed",
        "stages_1_pos_embed",
        "stages_2_pos_embed",
        "stages_3_cls_token",
        "stages_3_pos_embed",
    ]
    assert PyramidVisionTransformerV2(**TINY).no_weight_decay() == []


def test_v1_patch_embedding_drops_partial_patches_as_a_strided_conv_does():
    model = PyramidVisionTransformer(**{**TINY, "image_size": (70, 100)}, features_only=True)
    assert [tuple(o.shape[1:3]) for o in model.outputs] == [(17, 25), (8, 12), (4, 6), (2, 3)]


# ----------------------------------------------------------------------------- features


@pytest.mark.parametrize("model_cls", [PyramidVisionTransformerV2, PyramidVisionTransformer])
def test_features_only_returns_stage_maps_at_strides_4_8_16_32(model_cls):
    model = model_cls(**{**TINY, "image_size": (64, 96)}, features_only=True)
    outputs = model(random_images((2, 64, 96, 3)))
    assert [tuple(o.shape) for o in outputs] == [(2, 16, 24, 8), (2, 8, 12, 16), (2, 4, 6, 24), (2, 2, 3, 32)]
    assert [(i["num_chs"], i["reduction"]) for i in model.feature_info] == [(8, 4), (16, 8), (24, 16), (32, 32)]
    picked = model_cls(**TINY, features_only=True, out_indices=(2, 3))
    assert [i["reduction"] for i in picked.feature_info] == [16, 32]


# ----------------------------------------------------------------------------- parity


def _cases(fixtures_dir):
    cases = json.loads((fixtures_dir / "pvt_cases.json").read_text())
    return {name: case for name, case in cases.items() if not name.startswith("_")}


def _model(case, **overrides):
    model_cls = PyramidVisionTransformerV2 if case["family"] == "pvt_v2" else PyramidVisionTransformer
    return model_cls(**case["config"], **overrides)


PARITY_CASES = [
    "v2_tiny",
    "v2_linear",
    "v2_nonsquare",
    "v2_linear_nonsquare",
    "v2_features",
    "v1_tiny",
    "v1_resize",
    "v1_features",
]


@pytest.mark.parametrize("case_name", PARITY_CASES)
def test_logits_and_stage_maps_match_the_reference(case_name, fixtures_dir):
    case = _cases(fixtures_dir)[case_name]
    io = load_file(str(fixtures_dir / f"pvt_{case_name}_io.safetensors"))
    model = _model(case)
    load_timm_weights(model, fixtures_dir / case["checkpoint"])  # the model's own weight map
    assert np.abs(to_numpy(model(io["images"])) - io["logits"]).max() < 1e-4
    features = _model(case, features_only=True)
    skipped = load_timm_weights(features, fixtures_dir / case["checkpoint"])
    assert skipped and all(k.startswith(("head.", "classifier.", "pvt.encoder.layer_norm.")) for k in skipped)
    for index, stage in enumerate(features(io["images"])):
        assert np.abs(to_numpy(stage) - io[f"stage_{index}"]).max() < 1e-4, f"stage {index}"


def test_fixtures_cover_every_case(fixtures_dir):
    assert sorted(_cases(fixtures_dir)) == sorted(PARITY_CASES)


def test_v1_checkpoint_into_v2_names_the_family(fixtures_dir):
    model = PyramidVisionTransformerV2(**TINY)
    with pytest.raises(ValueError, match="looks like a pvt_v1 checkpoint, not pvt_v2"):
        load_timm_weights(model, fixtures_dir / "pvt_v1_tiny.safetensors")
