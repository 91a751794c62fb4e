"""Swin Transformer: the shared battery, window ops, ablation switches, features, parity with timm."""

import json

import numpy as np
import pytest
from harness import ModelBattery, random_images, to_numpy
from safetensors.numpy import load_file

from keras_vits import SwinTransformer, create_model, load_timm_weights
from keras_vits.backend import layer_weights
from keras_vits.layers import AttentionCore
from keras_vits.layers.swin_window import (
    WindowAttentionCore,
    WindowPartition,
    WindowReverse,
    cyclic_shift,
    relative_position_index,
    reverse_cyclic_shift,
    shifted_window_mask,
    stage_window_and_shift,
)

TINY = dict(image_size=32, patch_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10)


class TestSwinTransformer(ModelBattery):
    model_cls = SwinTransformer
    configs = {
        "default": TINY,
        "padded_nonsquare_gray": dict(TINY, image_size=(36, 50), in_chans=1, window_size=(3, 4)),
        "no_shift": dict(TINY, shifted=False),
        "pos_none": dict(TINY, pos_embed="none"),
        "pos_absolute": dict(TINY, pos_embed="absolute"),
        "pos_absolute_relative_features": dict(TINY, pos_embed="absolute+relative", num_classes=0),
        "timm_padding_order": dict(TINY, image_size=(36, 44), pad_before_shift=False),
    }
    second_image_sizes = dict.fromkeys(configs, (48, 40))

    def feature_width(self, config):
        return config["embed_dim"] * 2 ** (len(config["depths"]) - 1)


# ----------------------------------------------------------------------------- window ops


def test_cyclic_shift_is_roll_and_reverses():
    x = random_images((2, 6, 7, 3))
    shifted = to_numpy(cyclic_shift(x, (2, 3)))
    np.testing.assert_array_equal(shifted, np.roll(x, (-2, -3), axis=(1, 2)))
    np.testing.assert_array_equal(to_numpy(reverse_cyclic_shift(shifted, (2, 3))), x)


@pytest.mark.parametrize("pad_before_shift", [True, False])
def test_partition_then_reverse_is_identity_with_padding_and_shift(pad_before_shift):
    x = random_images((2, 7, 10, 3))
    windows = WindowPartition((3, 4), (1, 2), pad_before_shift)(x)
    assert tuple(windows.shape) == (2, 3 * 3, 12, 3)
    back = WindowReverse((3, 4), (7, 10), (1, 2), pad_before_shift)(windows)
    np.testing.assert_array_equal(to_numpy(back), x)


def test_window_partition_cuts_row_major_windows():
    x = np.arange(4 * 4, dtype=np.float32).reshape(1, 4, 4, 1)
    windows = to_numpy(WindowPartition(2)(x))[0, :, :, 0]
    np.testing.assert_array_equal(windows[1], [2, 3, 6, 7])


def _official_mask(padded, window, shift):
    """The official Swin code's mask, written with its slices."""
    region = np.zeros(padded)
    count = 0
    for hs in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
        for ws in (slice(0, -window), slice(-window, -shift), slice(-shift, None)):
            region[hs, ws] = count
            count += 1
    cells = region.reshape(padded[0] // window, window, padded[1] // window, window).transpose(0, 2, 1, 3)
    cells = cells.reshape(-1, window * window)
    return np.where(cells[:, None, :] != cells[:, :, None], -100.0, 0.0)


def test_shift_mask_matches_the_official_slices():
    np.testing.assert_array_equal(shifted_window_mask((8, 12), (4, 4), (2, 2)), _official_mask((8, 12), 4, 2))


def test_relative_position_index_matches_the_formula():
    index = relative_position_index((2, 3))
    positions = [(r, c) for r in range(2) for c in range(3)]
    for i, (qr, qc) in enumerate(positions):
        for j, (kr, kc) in enumerate(positions):
            assert index[i, j] == (qr - kr + 1) * 5 + (qc - kc + 2)


def test_window_shrinks_per_axis_and_stops_shifting_where_the_map_is_smaller():
    assert stage_window_and_shift((4, 9), (7, 7), (3, 3)) == ((4, 7), (0, 3))
    assert stage_window_and_shift((7, 7), (7, 7), (3, 3)) == ((7, 7), (0, 0))


def test_one_window_without_bias_is_global_attention():
    qkv = random_images((2, 1, 16, 3 * 8))
    windowed = WindowAttentionCore(2, 4, (4, 4), relative_position_bias=False)(qkv)
    plain = AttentionCore(2)(qkv[:, 0])
    np.testing.assert_allclose(to_numpy(windowed)[:, 0], to_numpy(plain), atol=1e-5)


# ----------------------------------------------------------------------------- ablation switches


def _weights_by_name(model):
    return dict(layer_weights(model))


def _randomize(model, seed=0, std=0.3):
    """Gives every weight a random value, so small architectural changes show in the output."""
    rng = np.random.default_rng(seed)
    for variable in model.weights:
        variable.assign(rng.normal(scale=std, size=variable.shape).astype(np.float32))


def _transfer(source, target):
    """Copies every weight `target` shares by name with `source`."""
    source_weights = _weights_by_name(source)
    for key, variable in _weights_by_name(target).items():
        if key in source_weights:
            variable.assign(source_weights[key])


def test_no_shift_makes_every_block_regular_and_changes_the_output():
    images = random_images((2, 32, 32, 3))
    shifted = SwinTransformer(**TINY, features_only=True, out_indices=(0,))
    regular = SwinTransformer(**TINY, features_only=True, out_indices=(0,), shifted=False)
    _randomize(shifted)
    _transfer(shifted, regular)
    full = SwinTransformer(**TINY)
    shifts = [layer.shift_size for layer in full.layers if isinstance(layer, WindowAttentionCore)]
    assert shifts == [(0, 0), (2, 2), (0, 0), (0, 0)], "stage 2's 4x4 map equals the window: no shift there"
    assert all(layer.shift_size == (0, 0) for layer in regular.layers if isinstance(layer, WindowAttentionCore))
    # Stage 0's map is compared: global pooling would average most of the change away.
    assert np.abs(to_numpy(shifted(images)) - to_numpy(regular(images))).max() > 1e-2


def test_position_switches_add_and_remove_exactly_their_weights():
    images = random_images((2, 32, 32, 3))
    models = {
        kind: SwinTransformer(**TINY, pos_embed=kind) for kind in ("relative", "absolute", "absolute+relative", "none")
    }
    _randomize(models["absolute+relative"])
    for model in models.values():
        _transfer(models["absolute+relative"], model)
    has_table = {
        kind: any("relative_position_bias_table" in k for k in _weights_by_name(m)) for kind, m in models.items()
    }
    has_absolute = {kind: "absolute_pos_embed/embedding" in _weights_by_name(m) for kind, m in models.items()}
    assert has_table == {"relative": True, "absolute": False, "absolute+relative": True, "none": False}
    assert has_absolute == {"relative": False, "absolute": True, "absolute+relative": True, "none": False}
    outputs = {kind: to_numpy(model(images)) for kind, model in models.items()}
    for first, second in (("relative", "none"), ("absolute", "none"), ("absolute+relative", "relative")):
        assert np.abs(outputs[first] - outputs[second]).max() > 1e-3, f"{first} vs {second}"
    # Zeroing a position term turns a model into the one without it.
    both = models["absolute+relative"]
    both.get_layer("absolute_pos_embed").embedding.assign(np.zeros_like(both.get_layer("absolute_pos_embed").embedding))
    np.testing.assert_allclose(to_numpy(both(images)), outputs["relative"], atol=1e-5)
    absolute = models["absolute"]
    absolute.get_layer("absolute_pos_embed").embedding.assign(
        np.zeros_like(absolute.get_layer("absolute_pos_embed").embedding)
    )
    np.testing.assert_allclose(to_numpy(absolute(images)), outputs["none"], atol=1e-5)


def test_bad_arguments_are_rejected():
    with pytest.raises(ValueError, match="one entry per stage"):
        SwinTransformer(**{**TINY, "num_heads": (1, 2, 4)})
    with pytest.raises(ValueError, match="pos_embed must be one of"):
        SwinTransformer(**TINY | {"pos_embed": "rope"})
    with pytest.raises(ValueError, match="out_indices"):
        SwinTransformer(**TINY, features_only=True, out_indices=(0, 2))


# ----------------------------------------------------------------------------- weight decay


def test_no_weight_decay_names_the_bias_tables_and_the_absolute_embedding():
    blocks = ["layers_0_blocks_0_attn", "layers_0_blocks_1_attn", "layers_1_blocks_0_attn", "layers_1_blocks_1_attn"]
    assert SwinTransformer(**TINY).no_weight_decay() == blocks
    assert SwinTransformer(**TINY, pos_embed="absolute+relative").no_weight_decay() == ["absolute_pos_embed", *blocks]
    assert SwinTransformer(**TINY, pos_embed="none").no_weight_decay() == []


# ----------------------------------------------------------------------------- features


def test_features_only_returns_stage_maps_at_strides_4_8_16_32():
    model = SwinTransformer(
        image_size=(64, 96), embed_dim=8, depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), window_size=4, features_only=True
    )
    outputs = model(random_images((2, 64, 96, 3)))
    assert [tuple(o.shape) for o in outputs] == [(2, 16, 24, 8), (2, 8, 12, 16), (2, 4, 6, 32), (2, 2, 3, 64)]
    assert [info["reduction"] for info in model.feature_info] == [4, 8, 16, 32]
    assert [info["num_chs"] for info in model.feature_info] == [8, 16, 32, 64]
    picked = SwinTransformer(**TINY, features_only=True, out_indices=(1,))
    assert len(picked.outputs) == 1 and picked.feature_info[0]["reduction"] == 8


def test_detection_size_backbone_builds_with_padding():
    model = create_model("swin_tiny_patch4_window7_224", features_only=True, image_size=(800, 1333))
    assert [tuple(o.shape[1:3]) for o in model.outputs] == [(200, 334), (100, 167), (50, 84), (25, 42)]


# ----------------------------------------------------------------------------- parity with timm


def _cases(fixtures_dir, name):
    return {k: v for k, v in json.loads((fixtures_dir / name).read_text()).items() if not k.startswith("_")}


@pytest.mark.parametrize("case_name", ["tiny4", "pad", "window_resample"])
def test_logits_match_timm(case_name, fixtures_dir):
    case = _cases(fixtures_dir, "swin_cases.json")[case_name]
    # timm shifts the unpadded map, then pads; only the "pad" case needs padding.
    model = SwinTransformer(**case["config"], pad_before_shift=False)
    load_timm_weights(model, fixtures_dir / case["checkpoint"])
    io = load_file(str(fixtures_dir / f"swin_{case_name}_io.safetensors"))
    assert np.abs(to_numpy(model(io["images"])) - io["logits"]).max() < 1e-4
    for key, table in io.items():
        if key.startswith("resized/"):
            layer = key.removeprefix("resized/").rsplit(".", 1)[0].replace(".", "_")
            np.testing.assert_allclose(to_numpy(model.get_layer(layer).relative_position_bias_table), table, atol=1e-5)


def test_official_padding_order_differs_from_timm_only_where_padding_is_needed(fixtures_dir):
    cases = _cases(fixtures_dir, "swin_cases.json")
    for name, should_differ in (("tiny4", False), ("pad", True)):
        case = cases[name]
        model = SwinTransformer(**case["config"])
        load_timm_weights(model, fixtures_dir / case["checkpoint"])
        io = load_file(str(fixtures_dir / f"swin_{name}_io.safetensors"))
        assert (np.abs(to_numpy(model(io["images"])) - io["logits"]).max() > 1e-3) == should_differ


def test_stage_features_match_timm(fixtures_dir):
    case = _cases(fixtures_dir, "swin_cases.json")["features"]
    model = SwinTransformer(**case["config"], features_only=True)
    skipped = load_timm_weights(model, fixtures_dir / case["checkpoint"])
    assert sorted(skipped) == ["head.fc.bias", "head.fc.weight", "norm.bias", "norm.weight"]
    io = load_file(str(fixtures_dir / "swin_features_io.safetensors"))
    for index, stage in enumerate(model(io["images"])):
        assert np.abs(to_numpy(stage) - io[f"stage_{index}"]).max() < 1e-4


def test_padded_input_matches_the_official_order_as_huggingface_runs_it(fixtures_dir):
    """Pad-then-shift (the default) against HF transformers' Swin, which follows the official detection code."""
    case = _cases(fixtures_dir, "swin_hf_cases.json")["swin_hf_pad"]
    io = load_file(str(fixtures_dir / "swin_hf_pad_io.safetensors"))
    model = SwinTransformer(**case["config"])
    load_timm_weights(model, fixtures_dir / case["checkpoint"])
    assert np.abs(to_numpy(model(io["images"])) - io["logits"]).max() < 1e-4
    timm_order = SwinTransformer(**case["config"], pad_before_shift=False)
    load_timm_weights(timm_order, fixtures_dir / case["checkpoint"])
    assert np.abs(to_numpy(timm_order(io["images"])) - io["timm_logits"]).max() < 1e-4
