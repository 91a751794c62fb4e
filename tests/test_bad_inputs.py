"""Classes, not cases: every public entry point, each argument, each class of bad value.

Each row is an entry point, an argument, a bad value, the exception type and a fragment of its
message (the argument's name, the value or what was expected). docs/RELIABILITY.md lists the classes.
"""

import errno
import os
import pathlib
import re

import numpy as np
import pytest
import tensorflow as tf
from harness import TINY_FAMILIES, tiny_model

import keras_vits

# ----------------------------------------------------------------------------- model constructors

_COMMON = [
    # (argument, bad value, exception, fragment): type and range of every numeric argument
    ("num_classes", -1, ValueError, "num_classes must be an int >= 0"),
    ("num_classes", 2.5, ValueError, "num_classes must be an int >= 0"),
    ("num_classes", True, TypeError, "num_classes and in_chans must be ints"),
    ("in_chans", 0, ValueError, "in_chans must be a positive int"),
    ("in_chans", "3", ValueError, "in_chans must be a positive int"),
    ("image_size", 0, ValueError, "image_size must be positive"),
    ("image_size", -32, ValueError, "image_size must be positive"),
    ("image_size", 32.0, TypeError, "image_size must be an int or a pair"),
    ("image_size", (32, 32, 32), ValueError, "image_size must be an int or a pair"),
    ("image_size", "32", TypeError, "image_size must be an int or a pair"),
    ("drop_rate", -0.1, ValueError, "drop_rate must be in [0, 1)"),
    ("drop_rate", 1.0, ValueError, "drop_rate must be in [0, 1)"),
    ("drop_rate", "0.1", TypeError, "drop_rate must be a number"),
    ("attn_drop_rate", -1, ValueError, "attn_drop_rate must be in [0, 1)"),
    ("drop_path_rate", 1.5, ValueError, "drop_path_rate must be in [0, 1)"),
    ("drop_path_rate", float("nan"), TypeError, "drop_path_rate must be a number"),
    ("qkv_bias", "yes", TypeError, "qkv_bias must be True or False"),
    ("name", "", TypeError, "name must be a non-empty str"),
    ("name", 3, TypeError, "name must be a non-empty str"),
]
_VIT = [
    ("num_heads", 0, ValueError, "num_heads must be a positive int, got 0"),
    ("num_heads", -2, ValueError, "num_heads must be a positive int"),
    ("num_heads", 2.0, TypeError, "num_heads must be a positive int"),
    ("num_heads", 3, ValueError, "embed_dim (32) must be divisible by num_heads (3)"),
    ("embed_dim", 0, ValueError, "embed_dim must be a positive int"),
    ("embed_dim", 31.5, TypeError, "embed_dim must be a positive int"),
    ("depth", 0, ValueError, "depth must be a positive int"),
    ("depth", 1.0, TypeError, "depth must be a positive int"),
    ("patch_size", 0, ValueError, "patch_size must be positive"),
    ("patch_size", 5, ValueError, "must be divisible by patch_size"),
    ("patch_size", 64, ValueError, "must be divisible by patch_size"),
    ("mlp_ratio", 0, ValueError, "mlp_ratio must be > 0"),
    ("mlp_ratio", -4, ValueError, "mlp_ratio must be > 0"),
    ("mlp_ratio", 0.01, ValueError, "gives an MLP of width"),
    ("mlp_ratio", "4", TypeError, "mlp_ratio must be a finite number"),
    ("mlp_ratio", float("inf"), TypeError, "mlp_ratio must be a finite number"),
    ("init_values", "small", TypeError, "init_values must be None or a finite number"),
    ("pos_embed", "rope", ValueError, "pos_embed must be one of"),
]
_STAGED = [
    ("depths", (0, 0), ValueError, "depths entry must be a positive int, got 0"),
    ("depths", (), ValueError, "depths must have at least one stage"),
    ("depths", 2, TypeError, "depths must be a tuple of positive ints"),
    ("depths", (1.5, 1), TypeError, "depths entry must be a positive int"),
    ("num_heads", (0, 1), ValueError, "num_heads entry must be a positive int"),
]
_SWIN = [
    ("window_size", 0, ValueError, "window_size must be positive"),
    ("window_size", (4, 4, 4), ValueError, "window_size must be an int or a pair"),
    ("patch_size", 0, ValueError, "patch_size must be positive"),
    ("embed_dim", 0, ValueError, "embed_dim must be a positive int"),
    ("num_heads", (1, 3), ValueError, "num_heads (1, 3) must divide each stage's width"),
    ("num_heads", (1,), ValueError, "must have one entry per stage"),
    ("mlp_ratio", 0, ValueError, "mlp_ratio must be > 0"),
    ("shifted", 1, TypeError, "shifted must be True or False"),
    ("out_indices", (5,), ValueError, "out_indices must be stage indices"),
    ("pos_embed", "rope", ValueError, "pos_embed must be one of"),
]
_PVT = [
    ("embed_dims", (8, 0, 16, 32), ValueError, "embed_dims entry must be a positive int"),
    ("embed_dims", (8, 16, 17, 32), ValueError, "must be divisible by num_heads"),
    ("sr_ratios", (0, 1, 1, 1), ValueError, "sr_ratios entry must be a positive int, got 0"),
    ("mlp_ratios", (0, 4, 4, 4), ValueError, "mlp_ratios entry must be > 0"),
    ("mlp_ratios", (4, 4), ValueError, "must have one entry per stage"),
    ("num_heads", (1, 1, 2), ValueError, "must have one entry per stage"),
]
_PVT_V1 = [
    ("patch_sizes", (4, 0, 2, 2), ValueError, "patch_sizes entry must be a positive int"),
    ("sr_ratios", (8, 4, 2, 2), ValueError, "needs sr_ratio 1"),
]
#: Linear SRA (pvt_v2_li) pools to 7x7 whatever sr_ratios say.
_PVT_SR = [("sr_ratios", (64, 1, 1, 1), ValueError, "sr_ratios entry 64 is larger than its stage's")]

_CONSTRUCTOR_ROWS = (
    [(family, *row) for family in sorted(TINY_FAMILIES) for row in _COMMON]
    + [(family, *row) for family in ("vit", "deit") for row in _VIT]
    + [(family, *row) for family in ("swin", "pvt_v1", "pvt_v2") for row in _STAGED]
    + [("swin", *row) for row in _SWIN]
    + [(family, *row) for family in ("pvt_v1", "pvt_v2", "pvt_v2_li") for row in _PVT]
    + [(family, *row) for family in ("pvt_v1", "pvt_v2") for row in _PVT_SR]
    + [("pvt_v1", *row) for row in _PVT_V1]
)


@pytest.mark.parametrize(
    "family, argument, value, error, fragment",
    _CONSTRUCTOR_ROWS,
    ids=[f"{row[0]}-{row[1]}={row[2]!r}" for row in _CONSTRUCTOR_ROWS],
)
def test_constructors_refuse_each_bad_argument(family, argument, value, error, fragment):
    with pytest.raises(error, match=_escaped(fragment)):
        tiny_model(family, **{argument: value})


def _escaped(fragment):
    return re.escape(fragment)


def test_an_unknown_constructor_argument_is_named():
    with pytest.raises(TypeError, match="takes no argument num_head. Did you mean num_heads"):
        keras_vits.VisionTransformer(num_head=3)


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_the_attention_layers_refuse_zero_heads(family):
    from keras_vits.layers.attention import AttentionCore, SpatialReductionAttentionCore

    for layer in (AttentionCore, SpatialReductionAttentionCore):
        with pytest.raises(ValueError, match="num_heads must be a positive int, got 0"):
            layer(num_heads=0)
        with pytest.raises(ValueError, match="attn_drop_rate must be in"):
            layer(num_heads=1, attn_drop_rate=1.0)


# ----------------------------------------------------------------------------- call time: shapes and dtypes

_CALL_ROWS = [
    ("wrong channels", np.zeros((1, 32, 32, 3), "float32"), ValueError, "wrong channels"),
    ("wrong size", np.zeros((1, 16, 16, 1), "float32"), ValueError, "wrong height and width"),
    ("NCHW", np.zeros((1, 1, 32, 32), "float32"), ValueError, r"channels-first \(NCHW.*transpose\(0, 2, 3, 1\)"),
    ("NCHW uint8", np.zeros((1, 1, 32, 32), "uint8"), ValueError, r"channels-first \(NCHW"),
    ("rank 3", np.zeros((32, 32, 1), "float32"), ValueError, "expects images of rank 4"),
    ("rank 5", np.zeros((1, 1, 32, 32, 1), "float32"), ValueError, "expects images of rank 4"),
    ("uint8", np.zeros((1, 32, 32, 1), "uint8"), TypeError, "expects float images"),
    ("int32", np.zeros((1, 32, 32, 1), "int32"), TypeError, "expects float images"),
    ("0-255 floats", np.full((1, 32, 32, 1), 200.0, "float32"), ValueError, r"\[200, 200\]: these look like raw 0-255"),
    ("NaN", np.full((1, 32, 32, 1), np.nan, "float32"), ValueError, "NaN or infinite"),
    ("a list", [[0.0]], TypeError, "expects a float tensor or array"),
    ("None", None, TypeError, "expects a float tensor or array"),
]


@pytest.mark.parametrize("family", ["vit", "swin", "pvt_v2"])
@pytest.mark.parametrize("how", ["call", "predict"])
@pytest.mark.parametrize("case, images, error, fragment", _CALL_ROWS, ids=[r[0] for r in _CALL_ROWS])
def test_models_refuse_bad_images_at_call_time(family, how, case, images, error, fragment):
    model = tiny_model(family)
    with pytest.raises(error, match=fragment):
        model(images) if how == "call" else model.predict(images, verbose=0)


def test_raw_pixels_pass_inside_allow_unnormalised_images_and_normalised_extremes_pass_always():
    from keras_vits.models.base import allow_unnormalised_images

    model = tiny_model("vit")
    pixels = np.full((2, 32, 32, 1), 255.0, "float32")
    with pytest.raises(ValueError, match="allow_unnormalised_images"):
        model.predict(pixels, verbose=0)
    with allow_unnormalised_images():
        assert model.predict(pixels, verbose=0).shape == (2, 10)
        assert model(pixels).shape == (2, 10)
    # A white and a black pixel under the smallest std in use (ImageNet's 0.225): about 2.6 and -2.1.
    extremes = np.where(np.arange(32 * 32).reshape(1, 32, 32, 1) % 2, 2.64, -2.12).astype("float32")
    assert model.predict(extremes, verbose=0).shape == (1, 10)


# ----------------------------------------------------------------------------- create_model


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        (dict(name="vit_tiny_patch16"), ValueError, "Did you mean vit_tiny_patch16_224"),
        (dict(name="vit_tiny_patch16_224", num_heads=0), ValueError, "num_heads must be a positive int"),
        (dict(name="vit_tiny_patch16_224", num_classes=-1), ValueError, "num_classes must be an int >= 0"),
        (dict(name="vit_tiny_patch16_224", image_size=0), ValueError, "image_size must be positive"),
        (dict(name="vit_tiny_patch16_224", depths=(2,)), ValueError, "takes no argument depths"),
        (dict(name="vit_tiny_patch16_224", weights="missing.safetensors"), FileNotFoundError, "missing.safetensors"),
    ],
)
def test_create_model_refuses_bad_arguments(kwargs, error, fragment):
    with pytest.raises(error, match=fragment):
        keras_vits.create_model(**kwargs)


# ----------------------------------------------------------------------------- files a path is taken for


def _bad_files(tmp_path):
    """`{class: path}` of files no entry point can use."""
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01not a checkpoint" * 10)
    empty = tmp_path / "empty.safetensors"
    empty.write_bytes(b"")
    folder = tmp_path / "a_folder.safetensors"
    folder.mkdir()
    return {"missing": tmp_path / "missing.safetensors", "garbage": garbage, "empty": empty, "a folder": folder}


@pytest.mark.parametrize(
    "kind, error, fragment",
    [
        ("missing", FileNotFoundError, "No checkpoint file at"),
        ("garbage", ValueError, "Cannot read"),
        ("empty", ValueError, "Cannot read"),
        ("a folder", FileNotFoundError, "No checkpoint file at"),
    ],
)
@pytest.mark.parametrize("as_type", [str, pathlib.Path, os.fsencode])
def test_checkpoint_paths_of_every_kind_and_type(tmp_path, kind, error, fragment, as_type):
    path = as_type(str(_bad_files(tmp_path)[kind]))
    with pytest.raises(error, match=fragment):
        keras_vits.load_timm_weights(tiny_model("vit"), path)


def test_an_unreadable_checkpoint_is_named(tmp_path, fixtures_dir):
    if os.geteuid() == 0:
        pytest.skip("root reads every file")
    path = tmp_path / "locked.safetensors"
    path.write_bytes((fixtures_dir / "vit_token.safetensors").read_bytes())
    path.chmod(0)
    with pytest.raises(ValueError, match="locked.safetensors"):
        keras_vits.load_timm_weights(tiny_model("vit"), path)


def test_a_checkpoint_of_another_type_is_a_type_error():
    with pytest.raises(TypeError, match="checkpoint must be a path"):
        keras_vits.load_timm_weights(tiny_model("vit"), 3)


def test_bytes_paths_work_where_paths_are_taken(tmp_path, fixtures_dir):
    import json

    case = json.loads((fixtures_dir / "cases.json").read_text())["vit_token"]
    model = keras_vits.VisionTransformer(**case["config"])
    keras_vits.load_timm_weights(model, os.fsencode(str(fixtures_dir / "vit_token.safetensors")))
    model.save(tmp_path / "m.keras")
    from keras_vits.backend import load_keras_file

    assert load_keras_file(os.fsencode(str(tmp_path / "m.keras"))).count_params() == model.count_params()


# ----------------------------------------------------------------------------- full disk


def test_a_full_disk_gives_a_clear_error_and_leaves_nothing_half_written(tmp_path, monkeypatch):
    from keras_vits import _io

    target = tmp_path / "history.json"
    target.write_text("old")

    def full(partial):
        pathlib.Path(partial).write_text("half")
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(OSError, match=r"No space left to write .*history.json.*Free some space"):
        _io.write_atomically(target, full)
    assert target.read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["history.json"]


# ----------------------------------------------------------------------------- checkpoints: kind, family, content


@pytest.fixture
def vit_checkpoint(fixtures_dir):
    import json

    from safetensors.numpy import load_file

    case = json.loads((fixtures_dir / "cases.json").read_text())["vit_token"]
    return case["config"], load_file(str(fixtures_dir / "vit_token.safetensors"))


def _save(tmp_path, state, name="ckpt.safetensors"):
    from safetensors.numpy import save_file

    path = tmp_path / name
    save_file({k: np.ascontiguousarray(v) for k, v in state.items()}, str(path))
    return path


def _distilled(state):
    """The plain checkpoint with DeiT's distillation token, its position and a second head."""
    state = dict(state)
    pos = state["pos_embed"]
    state["pos_embed"] = np.concatenate([pos[:, :1], pos[:, :1], pos[:, 1:]], axis=1)
    state["dist_token"] = state["cls_token"]
    state["head_dist.weight"], state["head_dist.bias"] = state["head.weight"], state["head.bias"]
    return state


def test_a_distilled_checkpoint_in_a_plain_vit_names_the_distilled_model(vit_checkpoint, tmp_path):
    config, state = vit_checkpoint
    path = _save(tmp_path, _distilled(state))
    with pytest.raises(ValueError, match=r"distilled DeiT checkpoint .* use the `_distilled_` model"):
        keras_vits.load_timm_weights(keras_vits.VisionTransformer(**config), path)
    keras_vits.load_timm_weights(keras_vits.DeiT(**{k: v for k, v in config.items() if k in _DEIT_ARGS}), path)


_DEIT_ARGS = ("image_size", "patch_size", "in_chans", "num_classes", "embed_dim", "depth", "num_heads", "mlp_ratio")


def test_a_plain_checkpoint_in_a_distilled_deit_names_the_plain_model(vit_checkpoint, tmp_path):
    config, state = vit_checkpoint
    model = keras_vits.DeiT(**{k: v for k, v in config.items() if k in _DEIT_ARGS})
    with pytest.raises(ValueError, match=r"without distillation .* use the model without `_distilled_`"):
        keras_vits.load_timm_weights(model, _save(tmp_path, state))


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("source", ["file", "state dict"])
def test_weights_with_nan_or_inf_are_refused_and_nothing_is_assigned(vit_checkpoint, tmp_path, bad, source):
    config, state = vit_checkpoint
    state = dict(state)
    state["blocks.1.mlp.fc2.weight"] = state["blocks.1.mlp.fc2.weight"].copy()
    state["blocks.1.mlp.fc2.weight"][0, 3] = bad
    model = keras_vits.VisionTransformer(**config)
    before = [w.copy() for w in model.get_weights()]
    checkpoint = _save(tmp_path, state) if source == "file" else state
    with pytest.raises(ValueError, match=r"'blocks.1.mlp.fc2.weight' holds 1 NaN or Inf"):
        keras_vits.load_timm_weights(model, checkpoint)
    for old, new in zip(before, model.get_weights()):
        np.testing.assert_array_equal(old, new)


@pytest.mark.parametrize("dtype", ["int32", "int64", "uint8", "bool"])
@pytest.mark.parametrize("source", ["file", "state dict"])
def test_integer_weights_are_refused(vit_checkpoint, tmp_path, dtype, source):
    config, state = vit_checkpoint
    state = dict(state)
    state["blocks.0.norm1.weight"] = state["blocks.0.norm1.weight"].astype(dtype)
    checkpoint = _save(tmp_path, state) if source == "file" else state
    with pytest.raises(ValueError, match=r"not floating point weights \(1\): \['blocks.0.norm1.weight"):
        keras_vits.load_timm_weights(keras_vits.VisionTransformer(**config), checkpoint)


def test_keys_and_shapes_are_checked_before_any_tensor_is_read(vit_checkpoint, tmp_path, monkeypatch):
    from keras_vits.weights import loader

    config, state = vit_checkpoint
    reads = []
    original = loader.LazyCheckpoint.__getitem__
    monkeypatch.setattr(
        loader.LazyCheckpoint, "__getitem__", lambda self, key: reads.append(key) or original(self, key)
    )
    broken = dict(state)
    del broken["blocks.1.attn.qkv.bias"]
    for bad, fragment in [(broken, "missing from the checkpoint (1)"), (state, "shape mismatches (6)")]:
        with pytest.raises(ValueError, match=re.escape(fragment)):
            keras_vits.load_timm_weights(
                keras_vits.VisionTransformer(**{**config, "mlp_ratio": 2.0} if bad is state else config),
                _save(tmp_path, bad),
            )
        assert reads == []
    keras_vits.load_timm_weights(keras_vits.VisionTransformer(**config), _save(tmp_path, state))
    assert sorted(reads) == sorted(state)  # then each tensor once


# ----------------------------------------------------------------------------- TFLite


@pytest.fixture(scope="module")
def tflite_bytes():
    from keras_vits.export import convert_tflite

    return convert_tflite(tiny_model("vit"), "float32", batch_size=2)


@pytest.mark.parametrize(
    "images, fragment",
    [
        (np.zeros((0, 32, 32, 1), np.float32), "at least one image of shape (32, 32, 1), got 0 images"),
        (np.zeros((3, 32, 32, 1), np.float32), "multiple of the model's batch size 2, got 3"),
        (np.zeros((2, 32, 32, 3), np.float32), "expects images of shape (N, 32, 32, 1), got (2, 32, 32, 3)"),
        (np.zeros((32, 32, 1), np.float32), "expects images of shape (N, 32, 32, 1)"),
    ],
)
def test_tflite_predict_refuses_zero_or_mis_shaped_images(tflite_bytes, images, fragment):
    from keras_vits.export import TFLiteModel

    with pytest.raises(ValueError, match=re.escape(fragment)):
        TFLiteModel(tflite_bytes).predict(images)


def test_tflite_model_takes_bytes_or_a_path_and_refuses_anything_else(tflite_bytes, tmp_path):
    from keras_vits.export import TFLiteModel

    path = tmp_path / "m.tflite"
    path.write_bytes(tflite_bytes)
    for source in (tflite_bytes, path, str(path), os.fsencode(str(path))):
        assert TFLiteModel(source).predict(np.zeros((2, 32, 32, 1), np.float32)).shape == (2, 10)
    (tmp_path / "junk.tflite").write_bytes(b"junk" * 10)
    rows = [
        (tmp_path / "missing.tflite", FileNotFoundError, "No TFLite model at"),
        (tmp_path / "junk.tflite", ValueError, "is not a TFLite model"),
        (b"junk" * 10, ValueError, "neither TFLite flatbuffer bytes"),
        (3, TypeError, "model_content must be .tflite bytes or a path"),
    ]
    for source, error, fragment in rows:
        with pytest.raises(error, match=fragment):
            TFLiteModel(source)
    with pytest.raises(ValueError, match="num_threads must be a positive int"):
        TFLiteModel(tflite_bytes, num_threads=0)


def test_tflite_model_refuses_a_model_with_several_outputs():
    """A features_only model's maps: returning only the first would drop the others unseen."""
    from keras_vits.export import TFLiteModel

    function = tf.function(lambda images: (images * 2.0, tf.reduce_mean(images, axis=[1, 2])))
    concrete = function.get_concrete_function(tf.TensorSpec((1, 8, 8, 3), tf.float32))
    two_outputs = tf.lite.TFLiteConverter.from_concrete_functions([concrete]).convert()
    runner = TFLiteModel(two_outputs)  # loads: its op report still works
    assert runner.delegation()
    with pytest.raises(ValueError, match="one output .*this one has 2"):
        runner(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(ValueError, match="one output .*this one has 2"):
        runner.predict(np.zeros((1, 8, 8, 3), np.float32))


@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True])
def test_convert_tflite_refuses_a_bad_batch_size(batch_size):
    from keras_vits.export import convert_tflite

    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        convert_tflite(tiny_model("vit"), "float32", batch_size=batch_size)


# ----------------------------------------------------------------------------- folder data sets
# Data sources and training run under Keras 3 (tf-keras's image_dataset_from_directory differs).


def _image_folder(root, classes=("cat", "dog"), per_class=5):
    import tensorflow as tf

    for name in classes:
        (root / name).mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            image = tf.fill((8, 8, 3), tf.constant(index * 40, tf.uint8))
            (root / name / f"{index}.png").write_bytes(tf.io.encode_png(image).numpy())
    return root


@pytest.mark.keras3_only
@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty"])
def test_a_corrupt_image_in_a_folder_data_set_is_named_before_any_work(tmp_path, damage):
    from keras_vits.training.data import load_source

    root = _image_folder(tmp_path / "data")
    bad = root / "dog" / "1.png"
    content = bad.read_bytes()
    bad.write_bytes({"truncated": content[: len(content) // 2], "garbage": b"\x00" * 50, "empty": b""}[damage])
    with pytest.raises(ValueError, match=r"1 image file\(s\) cannot be decoded .*dog/1.png"):
        load_source(f"folder:{root}", "train", channels=3)


@pytest.mark.keras3_only
def test_an_image_with_bytes_after_its_end_is_kept(tmp_path):
    from keras_vits.training.data import load_source

    root = _image_folder(tmp_path / "data")
    path = root / "cat" / "0.png"
    path.write_bytes(path.read_bytes() + b"\x00trailing metadata" * 10)
    assert load_source(f"folder:{root}", "train", channels=3).num_examples > 0


@pytest.mark.keras3_only
def test_an_empty_class_folder_is_refused_not_made_a_class(tmp_path):
    from keras_vits.training.data import load_source

    root = _image_folder(tmp_path / "data")
    (root / "empty_class").mkdir()
    (root / "notes_only").mkdir()
    (root / "notes_only" / "readme.txt").write_text("no images here")
    with pytest.raises(ValueError, match=r"Class folder\(s\) \['empty_class', 'notes_only'\] .* hold no image"):
        load_source(f"folder:{root}", "train", channels=3)


@pytest.mark.parametrize(
    "dataset, error, fragment",
    [
        (b"folder:/tmp", TypeError, "dataset must be a str"),
        (None, TypeError, "dataset must be a str"),
        ("folder:/nonexistent/keras_vits", FileNotFoundError, "does not exist"),
        ("no_such_dataset_xyz", ValueError, "Unknown dataset"),
    ],
)
def test_data_sources_refuse_bad_names(dataset, error, fragment):
    from keras_vits.training.data import load_source

    with pytest.raises(error, match=fragment):
        load_source(dataset, "train")


@pytest.mark.keras3_only
@pytest.mark.parametrize("per_class", [0, 1, 4])
def test_a_folder_with_too_few_images_for_its_split_is_refused(tmp_path, per_class):
    from keras_vits.training.data import load_source

    root = _image_folder(tmp_path / "data", per_class=per_class)
    with pytest.raises(ValueError, match=rf"holds {2 * per_class} image\(s\), too few for its 90/10"):
        load_source(f"folder:{root}", "train", channels=3)


# ----------------------------------------------------------------------------- the command line: every flag


def _cli(argv, capsys):
    from keras_vits.cli import main

    try:
        code = main(argv)
    except SystemExit as exit_:  # argparse's usage errors
        code = exit_.code
    return code, capsys.readouterr().err


_CLI_ROWS = [
    (["info", "vit_tiny_patch16_224", "--image-size", "0"], "expected an int >= 1, got 0"),
    (["info", "vit_tiny_patch16_224", "--image-size", "abc"], "expected an int >= 1, got 'abc'"),
    (["info", "vit_tiny_patch16_224", "--image-size", "100000"], "would hold about"),
    (["info", "vit_tiny_patch16_224", "--num-classes", "-1"], "expected an int >= 0, got -1"),
    (["info", "vit_tiny_patch16"], "Did you mean"),
    (["export", "vit_tiny_patch16_224", "--weights", "missing.safetensors"], "neither an existing .safetensors"),
    (["export", "missing.keras"], "No model at"),
    (["export", "vit_tiny_patch16_224", "--version", "0"], "expected an int >= 1, got 0"),
    (["export", "vit_tiny_patch16_224", "--version", "-1"], "expected an int >= 1, got -1"),
    (["export", "vit_tiny_patch16_224", "--num-classes", "-3"], "expected an int >= 0, got -3"),
    (["export", "vit_tiny_patch16_224", "--image-size", "0"], "expected an int >= 1, got 0"),
    (["export", "vit_tiny_patch16_224", "--max-image-pixels", "0"], "expected an int >= 1, got 0"),
    (["export", "vit_tiny_patch16_224", "--mode", "int4"], "invalid choice: 'int4'"),
    (["export", "vit_tiny_patch16_224", "--format", "onnx"], "invalid choice: 'onnx'"),
    (["train", "--epochs", "0"], "expected an int >= 1, got 0"),
    (["train", "--batch-size", "0"], "expected an int >= 1, got 0"),
    (["train", "--max-steps", "-1"], "expected an int >= 1, got -1"),
    (["train", "--strategy", "gpu"], "invalid choice: 'gpu'"),
    (["train", "--precision", "float8"], "invalid choice: 'float8'"),
    (["train", "--recipe", "no_such_recipe"], "no_such_recipe"),
    (["train", "--set", "epochs=abc"], "epochs"),
    (["train", "--set", "batch_size=0"], "batch_size"),
    (["train", "--set", "no_such_field=1"], "no_such_field"),
    (["train", "--config", "missing.json"], "missing.json"),
    (["evaluate", "missing.keras"], "No model at"),
    (["evaluate", "missing.keras", "--batch-size", "0"], "expected an int >= 1, got 0"),
    (["benchmark", "vit_tiny_patch16_224", "--repeats", "0"], "expected an int >= 1, got 0"),
    (["benchmark", "vit_tiny_patch16_224", "--batch-sizes", "0"], "expected an int >= 1, got 0"),
    (["benchmark", "vit_tiny_patch16_224", "--image-size", "-224"], "expected an int >= 1, got -224"),
    (["demo", "--case", "no_such_case"], "no_such_case"),
    (["demo", "--fixtures", "/nonexistent/keras_vits"], "No demo fixtures"),
]


@pytest.mark.parametrize("argv, fragment", _CLI_ROWS, ids=[" ".join(row[0]) for row in _CLI_ROWS])
def test_every_cli_flag_refuses_bad_values_with_one_message_and_exit_2(argv, fragment, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, err = _cli(argv, capsys)
    assert code == 2, err
    assert fragment in err and "Traceback" not in err


@pytest.mark.keras3_only  # it trains, through DistillationModel (Keras 3)
@pytest.mark.parametrize(
    "failure",
    [
        "disk_full",
        "tf_no_space",
        "permission",
    ],
)
def test_a_full_disk_or_unwritable_file_during_training_is_one_message(failure, capsys, tmp_path, monkeypatch):
    import tensorflow as tf

    import keras_vits.training
    from keras_vits import _io

    def train(*args, **kwargs):
        if failure == "disk_full":  # what the run folder's atomic writes raise
            _io.write_atomically(
                tmp_path / "history.json", lambda p: (_ for _ in ()).throw(OSError(errno.ENOSPC, "full"))
            )
        if failure == "tf_no_space":  # what a checkpoint write raises
            raise tf.errors.ResourceExhaustedError(None, None, "ckpt-3.data; No space left on device")
        raise PermissionError(errno.EACCES, "Permission denied", str(tmp_path / "runs"))

    monkeypatch.setattr(keras_vits.training, "train", train)
    monkeypatch.chdir(tmp_path)
    code, err = _cli(["train", "--recipe", "demo_teacher", "--output", str(tmp_path / "run")], capsys)
    assert code == 2 and "Traceback" not in err
    expected = {"disk_full": "No space left to write", "tf_no_space": "no space left", "permission": "Permission"}
    assert expected[failure] in err
    assert not list(tmp_path.glob(".history*"))
    with pytest.raises((OSError, tf.errors.ResourceExhaustedError)):  # --debug: the error itself, with its traceback
        _cli(["--debug", "train", "--recipe", "demo_teacher", "--output", str(tmp_path / "run")], capsys)


def _corrupt_inside(path):
    """Damages a PNG's compressed pixels, keeping its signature and its IEND chunk whole."""
    content = bytearray(path.read_bytes())
    start = content.index(b"IDAT") + 4
    for offset in range(start + 2, min(start + 14, len(content) - 16)):
        content[offset] ^= 0xFF
    path.write_bytes(bytes(content))


@pytest.mark.keras3_only
def test_an_image_corrupt_inside_is_named_when_training_reaches_it(tmp_path):
    # Its ends look whole, so the quick check passes; the decode fails in the pipeline, which
    # once raised a tf.data error without the file's name.
    from keras_vits.training import train
    from keras_vits.training.recipes import Recipe

    root = _image_folder(tmp_path / "data", per_class=10)
    _corrupt_inside(root / "dog" / "3.png")
    recipe = Recipe(
        name="corrupt",
        dataset=f"folder:{root}",
        image_size=8,
        mean=(0.5,) * 3,
        std=(0.25,) * 3,
        epochs=1,
        batch_size=2,
        model="convnet_small",
        augment=False,
        checkpoint_every=1000,
    )
    with pytest.raises(ValueError, match=r"1 image file\(s\) cannot be decoded: .*dog/3.png.*run again"):
        train(recipe, tmp_path / "run", verbose=0)


@pytest.mark.parametrize("dynamic", [False, True], ids=["fixed size", "dynamic size"])
def test_channels_first_rgb_images_get_the_transpose_hint(dynamic):
    model = tiny_model("vit", in_chans=3, dynamic_img_size=dynamic)
    with pytest.raises(ValueError, match=r"got \(1, 3, 32, 32\).*channels-first \(NCHW"):
        model(np.zeros((1, 3, 32, 32), "float32"))
    with pytest.raises(ValueError, match="wrong height and width; build the model with image_size"):
        model(np.zeros((1, 3, 16, 3), "float32")) if not dynamic else tiny_model("vit")(np.zeros((1, 16, 16, 1)))
