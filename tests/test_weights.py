"""The strict safetensors loader: resampling, head handling, and every kind of bad checkpoint."""

import json
import sys
import types

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

import keras_vits
from keras_vits import (
    DeiT,
    PyramidVisionTransformer,
    PyramidVisionTransformerV2,
    SwinTransformer,
    VisionTransformer,
    load_timm_weights,
)
from keras_vits.backend import IS_KERAS_3, dtype_name, keras, layer_weights
from keras_vits.models.pvt import PVT_V1_WEIGHT_MAP, PVT_V2_WEIGHT_MAP
from keras_vits.models.swin import SWIN_WEIGHT_MAP
from keras_vits.models.vit import VIT_WEIGHT_MAP
from keras_vits.registry import resolve_checkpoint
from keras_vits.weights import read_safetensors, resample_abs_pos_embed, resize_grid


@pytest.fixture
def vit_case(fixtures_dir):
    case = json.loads((fixtures_dir / "cases.json").read_text())["vit_token"]
    return case["config"], fixtures_dir / "vit_token.safetensors"


# ----------------------------------------------------------------------------- resampling


def test_resize_grid_keeps_size_and_constants():
    grid = np.random.default_rng(0).normal(size=(4, 5, 3)).astype(np.float32)
    for method in ("bicubic", "bilinear"):
        np.testing.assert_allclose(resize_grid(grid, (4, 5), method), grid, atol=1e-6)
        constant = np.full((4, 4, 2), 3.0, np.float32)
        np.testing.assert_allclose(resize_grid(constant, (7, 3), method), 3.0, atol=1e-5)
    with pytest.raises(ValueError, match="method must be one of"):
        resize_grid(grid, (2, 2), "nearest")


def test_bilinear_upsampling_uses_half_pixel_centres():
    # PyTorch's align_corners=False: output 1 of 1 -> 2 sits at source 0.25 -> clamped ends, 0.75 mix inside.
    grid = np.array([[[0.0], [4.0]]], np.float32)  # (1, 2, 1)
    np.testing.assert_allclose(resize_grid(grid, (1, 4), "bilinear")[0, :, 0], [0.0, 1.0, 3.0, 4.0], atol=1e-6)


def test_resample_keeps_prefix_tokens_and_rejects_non_square_without_grid():
    pos = np.random.default_rng(2).normal(size=(1, 2 + 16, 4)).astype(np.float32)
    out = resample_abs_pos_embed(pos, (3, 5), num_prefix_tokens=2)
    assert out.shape == (1, 2 + 15, 4)
    np.testing.assert_array_equal(out[:, :2], pos[:, :2])
    with pytest.raises(ValueError, match="not a square"):
        resample_abs_pos_embed(pos[:, :-1], (3, 5), num_prefix_tokens=2)


# ----------------------------------------------------------------------------- head handling


def test_head_is_reinitialised_when_num_classes_differs(vit_case):
    config, checkpoint = vit_case
    reference = VisionTransformer(**config)
    load_timm_weights(reference, checkpoint)
    model = VisionTransformer(**{**config, "num_classes": 5})
    head_before = model.get_layer("head").get_weights()
    skipped = load_timm_weights(model, checkpoint, VIT_WEIGHT_MAP)  # an explicit map, as the default
    assert sorted(skipped) == ["head.bias", "head.weight"]
    for before, after in zip(head_before, model.get_layer("head").get_weights()):
        np.testing.assert_array_equal(before, after)
    np.testing.assert_array_equal(
        model.get_layer("norm").get_weights()[0], reference.get_layer("norm").get_weights()[0]
    )


def test_headless_model_gives_the_pooled_features_of_the_checkpoint(vit_case):
    config, checkpoint = vit_case
    full = VisionTransformer(**config)
    load_timm_weights(full, checkpoint)
    features = VisionTransformer(**{**config, "num_classes": 0})
    assert sorted(load_timm_weights(features, checkpoint)) == ["head.bias", "head.weight"]
    images = np.random.default_rng(0).normal(size=(2, 32, 32, 3)).astype(np.float32)
    pooled = keras.Model(full.input, full.get_layer("pool").output)(images)
    np.testing.assert_allclose(features(images).numpy(), pooled.numpy(), atol=1e-6)


def test_create_model_loads_a_checkpoint_path_with_overrides(vit_case, fixtures_dir):
    config, checkpoint = vit_case
    model = keras_vits.create_model("vit_tiny_patch16_224", weights=checkpoint, **config)
    io = load_file(str(fixtures_dir / "vit_token_io.safetensors"))
    assert np.abs(model(io["images"]).numpy() - io["logits"]).max() < 1e-4


def _fake_hub(monkeypatch, path):
    """Replaces huggingface_hub with a module whose `hf_hub_download` records its call and returns `path`."""
    calls = []

    def hf_hub_download(repo_id, filename):
        calls.append((repo_id, filename))
        return str(path)

    fake_hub = types.ModuleType("huggingface_hub")
    fake_hub.hf_hub_download = hf_hub_download
    monkeypatch.setitem(sys.modules, "huggingface_hub", fake_hub)
    return calls


def test_hub_ids_download_through_huggingface_hub(vit_case, monkeypatch):
    _, checkpoint = vit_case
    calls = _fake_hub(monkeypatch, checkpoint)
    assert resolve_checkpoint("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k") == str(checkpoint)
    assert resolve_checkpoint("hf-hub:timm/x") == str(checkpoint)
    assert calls == [
        ("timm/vit_tiny_patch16_224.augreg_in21k_ft_in1k", "model.safetensors"),
        ("timm/x", "model.safetensors"),
    ]


def test_any_hub_owner_is_accepted_and_pvt_v1_loads_from_its_hub_id(monkeypatch, fixtures_dir):
    case = json.loads((fixtures_dir / "pvt_cases.json").read_text())["v1_tiny"]
    calls = _fake_hub(monkeypatch, fixtures_dir / case["checkpoint"])
    hub_id = keras_vits.get_pretrained_cfg("pvt_tiny")["hf_hub_id"]
    assert hub_id == "Zetatech/pvt-tiny-224"
    model = keras_vits.create_model("pvt_tiny", weights=hub_id, **case["config"])
    assert calls == [("Zetatech/pvt-tiny-224", "model.safetensors")]
    io = load_file(str(fixtures_dir / "pvt_v1_tiny_io.safetensors"))
    assert np.abs(model(io["images"]).numpy() - io["logits"]).max() < 1e-4
    assert resolve_checkpoint("hf-hub:Zetatech/pvt-small-224") == str(fixtures_dir / case["checkpoint"])
    assert calls[-1] == ("Zetatech/pvt-small-224", "model.safetensors")


def test_an_existing_local_path_wins_over_a_hub_id(vit_case, monkeypatch, tmp_path):
    _, checkpoint = vit_case
    calls = _fake_hub(monkeypatch, checkpoint)
    local = tmp_path / "owner" / "name"
    local.parent.mkdir()
    local.write_bytes(checkpoint.read_bytes())
    monkeypatch.chdir(tmp_path)
    assert resolve_checkpoint("owner/name") == "owner/name"
    with pytest.raises(FileNotFoundError, match="neither an existing .safetensors file"):
        resolve_checkpoint("checkpoints/model.safetensors")  # a missing file, not a Hub repo
    assert calls == []


def test_hub_ids_without_huggingface_hub_say_how_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "huggingface_hub", None)
    with pytest.raises(ImportError, match=r"pip install 'keras-vits\[hub\]'"):
        resolve_checkpoint("Zetatech/pvt-tiny-224")


# ----------------------------------------------------------------------------- the model's own weight map


FAMILY_FIXTURES = [
    (VisionTransformer, VIT_WEIGHT_MAP, "cases.json", "vit_token", "vit_token_io"),
    (DeiT, VIT_WEIGHT_MAP, "cases.json", "deit_distilled", "deit_distilled_io"),
    (SwinTransformer, SWIN_WEIGHT_MAP, "swin_cases.json", "tiny4", "swin_tiny4_io"),
    (PyramidVisionTransformerV2, PVT_V2_WEIGHT_MAP, "pvt_cases.json", "v2_tiny", "pvt_v2_tiny_io"),
    (PyramidVisionTransformer, PVT_V1_WEIGHT_MAP, "pvt_cases.json", "v1_tiny", "pvt_v1_tiny_io"),
]


@pytest.mark.parametrize(
    "model_cls, weight_map, cases, case_name, io_name",
    FAMILY_FIXTURES,
    ids=[row[0].__name__ for row in FAMILY_FIXTURES],
)
def test_load_timm_weights_uses_the_model_classes_own_map(
    model_cls, weight_map, cases, case_name, io_name, fixtures_dir
):
    assert model_cls.weight_map is weight_map
    case = json.loads((fixtures_dir / cases).read_text())[case_name]
    config = dict(case["config"])
    if model_cls is DeiT:
        for key in ("global_pool", "class_token", "fc_norm"):
            config.pop(key)
    model = model_cls(**config)
    assert keras_vits.load_timm_weights(model, fixtures_dir / case["checkpoint"]) == []
    io = load_file(str(fixtures_dir / f"{io_name}.safetensors"))
    assert np.abs(model(io["images"]).numpy() - io["logits"]).max() < 1e-4


def test_a_model_without_a_weight_map_is_refused():
    inputs = keras.Input((4,))
    plain = keras.Model(inputs, keras.layers.Dense(2, name="head")(inputs))
    with pytest.raises(TypeError, match="has no weight_map"):
        load_timm_weights(plain, {"head.weight": np.zeros((2, 4), np.float32)})


# ----------------------------------------------------------------------------- bad checkpoints


def _write(tmp_path, state_dict, name="ckpt.safetensors"):
    path = tmp_path / name
    save_file({k: np.ascontiguousarray(v) for k, v in state_dict.items()}, str(path))
    return path


def _load_error(config, path):
    with pytest.raises(ValueError) as info:
        load_timm_weights(VisionTransformer(**config), path)
    return str(info.value)


def test_missing_keys_are_named(vit_case, tmp_path):
    config, checkpoint = vit_case
    state = read_safetensors(checkpoint)
    del state["blocks.1.attn.qkv.bias"]
    message = _load_error(config, _write(tmp_path, state))
    assert "missing from the checkpoint (1): ['blocks_1_attn_qkv/bias']" in message


def test_unexpected_keys_are_named(vit_case, tmp_path):
    config, checkpoint = vit_case
    state = read_safetensors(checkpoint)
    state["blocks.7.attn.qkv.weight"] = state["blocks.1.attn.qkv.weight"]
    message = _load_error(config, _write(tmp_path, state))
    assert "no place in the model (1): ['blocks.7.attn.qkv.weight']" in message


def test_mis_shaped_keys_are_named(vit_case):
    config, checkpoint = vit_case
    message = _load_error({**config, "mlp_ratio": 2.0}, checkpoint)
    assert "blocks.0.mlp.fc1.weight (48, 192) -> blocks_0_mlp_fc1/kernel (48, 96)" in message


def test_checkpoint_of_another_family_is_named(vit_case, tmp_path):
    config, _ = vit_case
    swin_like = {
        "patch_embed.proj.weight": np.zeros((96, 3, 4, 4), np.float32),
        "layers.0.blocks.0.attn.relative_position_bias_table": np.zeros((169, 3), np.float32),
        "layers.0.blocks.0.attn.qkv.weight": np.zeros((288, 96), np.float32),
    }
    message = _load_error(config, _write(tmp_path, swin_like))
    assert "looks like a swin checkpoint, not vit" in message


def test_corrupt_and_missing_files_raise_clear_errors(vit_case, tmp_path):
    config, checkpoint = vit_case
    corrupt = tmp_path / "corrupt.safetensors"
    corrupt.write_bytes(checkpoint.read_bytes()[:1000])
    with pytest.raises(ValueError, match="Cannot read .* as safetensors"):
        read_safetensors(corrupt)
    pickle_like = tmp_path / "model.pth"
    pickle_like.write_bytes(b"\x80\x04\x95 not a safetensors file")
    with pytest.raises(ValueError, match="never unpickles"):
        read_safetensors(pickle_like)
    with pytest.raises(FileNotFoundError, match="No checkpoint file"):
        read_safetensors(tmp_path / "absent.safetensors")
    with pytest.raises(FileNotFoundError, match="neither an existing .safetensors file"):
        resolve_checkpoint(tmp_path / "absent.safetensors")


def test_bfloat16_checkpoints_are_read_as_float32(tmp_path):
    import ml_dtypes

    values = np.array([1.5, -2.0, 0.25], np.float32)
    # safetensors' NumPy writer cannot write bfloat16; write the format by hand (8-byte header length, JSON, data).
    raw = values.astype(ml_dtypes.bfloat16).tobytes()
    header = json.dumps({"w": {"dtype": "BF16", "shape": [3], "data_offsets": [0, len(raw)]}}).encode()
    path = tmp_path / "bf16.safetensors"
    path.write_bytes(len(header).to_bytes(8, "little") + header + raw)
    loaded = read_safetensors(path)["w"]
    assert loaded.dtype == np.float32
    np.testing.assert_array_equal(loaded, values)


def test_create_model_takes_the_checkpoints_head_unless_told_otherwise(vit_case, fixtures_dir, caplog):
    """A fine-tuned 10-class file once got a random 1000-class head under the default num_classes."""
    config, checkpoint = vit_case
    config = {k: v for k, v in config.items() if k != "num_classes"}
    io = load_file(str(fixtures_dir / "vit_token_io.safetensors"))
    with caplog.at_level("WARNING", logger="keras_vits"):
        model = keras_vits.create_model("vit_tiny_patch16_224", weights=checkpoint, **config)
    assert model.outputs[0].shape[-1] == 10
    assert np.abs(model(io["images"]).numpy() - io["logits"]).max() < 1e-4  # the trained head, not a fresh one
    assert not caplog.records
    with caplog.at_level("WARNING", logger="keras_vits"):
        other = keras_vits.create_model("vit_tiny_patch16_224", weights=checkpoint, num_classes=5, **config)
    assert other.outputs[0].shape[-1] == 5
    assert "head does not fit num_classes=5" in caplog.text and "head.weight" in caplog.text
    assert keras_vits.create_model("vit_tiny_patch16_224", **config).outputs[0].shape[-1] == 1000


def _write_safetensors(path, tensors, safetensors_dtype):
    """Writes `{key: array}` in safetensors' format by hand (its NumPy writer has no bfloat16)."""
    header, chunks, offset = {}, [], 0
    for key, value in sorted(tensors.items()):
        raw = np.ascontiguousarray(value).tobytes()
        header[key] = {
            "dtype": safetensors_dtype,
            "shape": list(value.shape),
            "data_offsets": [offset, offset + len(raw)],
        }
        chunks.append(raw)
        offset += len(raw)
    text = json.dumps(header).encode()
    path.write_bytes(len(text).to_bytes(8, "little") + text + b"".join(chunks))


@pytest.mark.parametrize("half", ["float16", "bfloat16"])
def test_half_precision_checkpoints_load_as_their_values_in_float32(vit_case, fixtures_dir, tmp_path, half):
    """Fine-tuned files often come in float16 or bfloat16; a bfloat16 state dict was once refused as missing."""
    import ml_dtypes

    config, checkpoint = vit_case
    io = load_file(str(fixtures_dir / "vit_token_io.safetensors"))
    full = read_safetensors(checkpoint)
    halved = {key: value.astype(np.float16 if half == "float16" else ml_dtypes.bfloat16) for key, value in full.items()}
    path = tmp_path / f"{half}.safetensors"
    _write_safetensors(path, halved, {"float16": "F16", "bfloat16": "BF16"}[half])
    rounded = VisionTransformer(**config)  # the float32 checkpoint rounded to half precision, read back as float32
    load_timm_weights(rounded, {key: value.astype(np.float32) for key, value in halved.items()})
    expected = rounded(io["images"]).numpy()
    from_file = keras_vits.create_model("vit_tiny_patch16_224", weights=path, **config)
    from_state_dict = VisionTransformer(**config)
    load_timm_weights(from_state_dict, halved)
    for model in (from_file, from_state_dict):
        assert all(variable.dtype == "float32" for variable in model.weights)
        np.testing.assert_allclose(model(io["images"]).numpy(), expected, atol=1e-6)
    if IS_KERAS_3:  # a model's own dtype is Keras 3's: its variables in that half precision (the head's
        # stay float32) hold the checkpoint's values exactly.
        same_dtype = VisionTransformer(**config, dtype=half)
        load_timm_weights(same_dtype, path)
        assert half in {dtype_name(variable.dtype) for variable in same_dtype.weights}
        for key, variable in layer_weights(same_dtype).items():
            np.testing.assert_array_equal(np.asarray(variable, np.float32), np.asarray(layer_weights(rounded)[key]))
    # Within half precision of the float32 checkpoint's logits: 8 bits of mantissa for bfloat16, 11 for float16.
    relative = 2.0**-8 if half == "bfloat16" else 2.0**-11
    error = np.abs(expected - io["logits"]).max()
    assert 0 < error < 20 * relative * np.abs(io["logits"]).max(), error
