"""Export: SavedModel signatures for TF Serving, bad input at serving time, TFLite modes of every family."""

import os
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from harness import TINY_FAMILIES, tiny_model

import keras_vits
from keras_vits._io import LOCK_FILE, FolderInUseError, folder_lock
from keras_vits.cli import main as cli_main
from keras_vits.export import (
    TFLITE_MODES,
    TFLiteModel,
    convert_tflite,
    delegation_report,
    export_saved_model,
)
from keras_vits.export.saved_model import (
    NOT_AN_IMAGE_MESSAGE,
    RANGE_MESSAGE,
    RANK_MESSAGE,
    STAGING_PREFIX,
    UNIT_SCALE_MESSAGE,
)

LABELS = [f"class_{i}" for i in range(10)]
MEAN, STD = (0.5,), (0.25,)


def _pixels(shape, seed=0):
    return np.random.default_rng(seed).integers(0, 256, size=shape).astype(np.float32)


def _reference_probabilities(model, pixels):
    return tf.nn.softmax(model((pixels / 255.0 - MEAN[0]) / STD[0])).numpy()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    keras_vits.backend.keras.utils.set_random_seed(0)
    model = tiny_model("vit")
    base = tmp_path_factory.mktemp("serving")
    path = export_saved_model(model, LABELS, MEAN, STD, base_dir=base, name="tiny_vit", top_k=3)
    return model, path, tf.saved_model.load(str(path))


# ----------------------------------------------------------------------------- SavedModel


def test_layout_is_what_tf_serving_watches_and_versions_increment(exported, tmp_path):
    model, path, _ = exported
    assert path.name == "1" and path.parent.name == "tiny_vit"
    assert (path / "saved_model.pb").is_file() and (path / "variables").is_dir()
    assert (path / "assets" / "labels.txt").read_text().split() == LABELS
    second = export_saved_model(model, LABELS, MEAN, STD, base_dir=path.parent.parent, name="tiny_vit")
    assert second.name == "2"
    # Only the version folders and the export lock (a file, which TF Serving ignores: it loads integer folders).
    left = sorted(p.name for p in path.parent.iterdir())
    assert left == [LOCK_FILE, "1", "2"], "no temporary folder is left behind"
    with pytest.raises(ValueError, match="already exists"):
        export_saved_model(model, LABELS, MEAN, STD, base_dir=path.parent.parent, name="tiny_vit", version=1)


_TEXT = dict(capture_output=True, text=True, check=True)


def test_saved_model_cli_lists_the_three_signatures(exported):
    _, path, _ = exported
    cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir", str(path), "--all"]
    shown = subprocess.run(cli, capture_output=True, text=True, check=True).stdout
    for signature in ("serving_default", "serving_uint8", "serving_bytes"):
        assert f"signature_def['{signature}']" in shown
    for output in ("probabilities", "top_k_ids", "top_k_probabilities", "top_k_labels"):
        assert output in shown
    assert "image_bytes" in shown


def test_saved_model_cli_shows_the_pixel_scale_and_rank_of_the_image_inputs(exported):
    _, path, _ = exported
    for signature, dtype in (("serving_default", "DT_FLOAT"), ("serving_uint8", "DT_UINT8")):
        cli = [sys.executable, "-m", "tensorflow.python.tools.saved_model_cli", "show", "--dir", str(path)]
        shown = subprocess.run([*cli, "--tag_set", "serve", "--signature_def", signature], **_TEXT).stdout
        inputs = shown.split("outputs")[0]
        assert "inputs['images_0_255']" in inputs and dtype in inputs
        assert "shape: (-1, -1, -1, -1)" in inputs and "unknown_rank" not in inputs


def test_reloaded_in_a_fresh_process_matches_keras(exported, tmp_path):
    model, path, _ = exported
    pixels = _pixels((3, 32, 32, 1))
    np.save(tmp_path / "pixels.npy", pixels)
    script = (
        "import sys, numpy as np, tensorflow as tf\n"
        f"loaded = tf.saved_model.load({str(path)!r})\n"
        f"x = np.load({str(tmp_path / 'pixels.npy')!r})\n"
        "out = loaded.signatures['serving_default'](images_0_255=tf.constant(x))\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, out['probabilities'].numpy())\n"
        "print(out['top_k_labels'].numpy()[0][0].decode())\n"
    )
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    expected = _reference_probabilities(model, pixels)
    np.testing.assert_allclose(np.load(tmp_path / "out.npy"), expected, atol=1e-5)
    assert result.stdout.strip() == LABELS[int(expected[0].argmax())]


def test_the_tf1_session_loader_restores_every_variable_the_signatures_read(exported):
    """TF Serving's C++ `LoadSavedModel` path: restore by the MetaGraph's variable names, run by tensor names."""
    model, path, _ = exported
    pixels = _pixels((2, 32, 32, 1))
    expected = _reference_probabilities(model, pixels)
    feeds = {
        "serving_default": pixels,
        "serving_uint8": pixels.astype(np.uint8),
        "serving_bytes": [tf.io.encode_png(p.astype(np.uint8)).numpy() for p in pixels],
    }
    graph = tf.Graph()
    with graph.as_default(), tf.compat.v1.Session(graph=graph) as session:
        meta_graph = tf.compat.v1.saved_model.loader.load(session, ["serve"], str(path))
        for signature, value in feeds.items():
            signature_def = meta_graph.signature_def[signature]
            (image_input,) = signature_def.inputs.values()
            outputs = signature_def.outputs
            probabilities, labels = session.run(
                [outputs["probabilities"].name, outputs["top_k_labels"].name], {image_input.name: value}
            )
            np.testing.assert_allclose(probabilities, expected, atol=1e-5, err_msg=signature)
            assert [row[0].decode() for row in labels] == [LABELS[i] for i in expected.argmax(-1)]


def test_uint8_bytes_and_other_sizes_and_channels(exported):
    model, _, loaded = exported
    pixels = _pixels((2, 32, 32, 1))
    expected = _reference_probabilities(model, pixels)
    as_uint8 = loaded.signatures["serving_uint8"](images_0_255=tf.constant(pixels.astype(np.uint8)))
    np.testing.assert_allclose(as_uint8["probabilities"].numpy(), expected, atol=1e-5)
    png = [tf.io.encode_png(tf.constant(p.astype(np.uint8))).numpy() for p in pixels]
    from_bytes = loaded.signatures["serving_bytes"](image_bytes=tf.constant(png))
    np.testing.assert_allclose(from_bytes["probabilities"].numpy(), expected, atol=1e-5)
    rgb = loaded.signatures["serving_default"](images_0_255=tf.constant(np.repeat(pixels, 3, axis=-1)))
    np.testing.assert_allclose(rgb["probabilities"].numpy(), expected, atol=1e-4)
    larger = loaded.signatures["serving_default"](images_0_255=tf.constant(_pixels((1, 57, 45, 1))))
    assert larger["probabilities"].shape == (1, 10)
    top = from_bytes["top_k_ids"].numpy()
    assert top.shape == (2, 3) and np.array_equal(top[:, 0], expected.argmax(-1))
    assert [label.decode() for label in from_bytes["top_k_labels"].numpy()[0]] == [LABELS[i] for i in top[0]]


@pytest.mark.parametrize(
    "signature, value, message",
    [
        ("serving_bytes", [b""], NOT_AN_IMAGE_MESSAGE),
        ("serving_bytes", [b"not an image at all"], NOT_AN_IMAGE_MESSAGE),
        ("serving_bytes", "truncated", "invalid png"),
        ("serving_default", np.zeros((1, 32, 32, 2), np.float32), "channels"),
        ("serving_default", np.zeros((1, 1, 32, 32), np.float32), "transpose an NCHW batch by (0, 2, 3, 1)"),
        ("serving_default", np.zeros((32, 32, 1), np.float32), RANK_MESSAGE),
        ("serving_default", np.full((1, 32, 32, 1), 0.5, np.float32), UNIT_SCALE_MESSAGE),
        ("serving_default", np.full((1, 32, 32, 1), -1.5, np.float32), RANGE_MESSAGE),
    ],
)
def test_bad_requests_fail_alone_and_the_model_keeps_answering(exported, signature, value, message):
    model, _, loaded = exported
    if isinstance(value, str):  # a PNG cut short
        value = [tf.io.encode_png(tf.zeros((32, 32, 1), tf.uint8)).numpy()[:40]]
    with pytest.raises(tf.errors.InvalidArgumentError) as info:
        loaded.signatures[signature](
            **{"images_0_255" if signature != "serving_bytes" else "image_bytes": tf.constant(value)}
        )
    assert message.lower() in str(info.value).lower()
    pixels = _pixels((1, 32, 32, 1))
    answer = loaded.signatures["serving_default"](images_0_255=tf.constant(pixels))
    np.testing.assert_allclose(answer["probabilities"].numpy(), _reference_probabilities(model, pixels), atol=1e-5)


def test_the_serving_messages_are_the_ones_deployment_md_quotes(exported):
    deployment = " ".join((pathlib.Path(__file__).parents[1] / "docs" / "DEPLOYMENT.md").read_text().split())
    for message in (RANK_MESSAGE, RANGE_MESSAGE, UNIT_SCALE_MESSAGE, NOT_AN_IMAGE_MESSAGE):
        assert message in deployment
    _, _, loaded = exported
    for signature, value in [
        ("serving_default", np.zeros((32, 32, 1), np.float32)),
        ("serving_uint8", np.zeros((2, 2), np.uint8)),
    ]:
        shape = ",".join(str(d) for d in value.shape)
        with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(f"images_0_255 [{shape}] {RANK_MESSAGE}")):
            loaded.signatures[signature](images_0_255=tf.constant(value))


def test_unit_scale_floats_are_refused_per_image_and_black_or_dark_uint8_images_pass(exported):
    model, _, loaded = exported
    pixels = _pixels((2, 32, 32, 1))
    mixed = np.stack([pixels[0], pixels[1] / 255.0])  # the second image sent on [0, 1]
    with pytest.raises(tf.errors.InvalidArgumentError, match=re.escape(UNIT_SCALE_MESSAGE)):
        loaded.signatures["serving_default"](images_0_255=tf.constant(mixed))
    black = np.zeros((1, 32, 32, 1), np.float32)  # the same image on either scale
    answer = loaded.signatures["serving_default"](images_0_255=tf.constant(black))
    np.testing.assert_allclose(answer["probabilities"].numpy(), _reference_probabilities(model, black), atol=1e-5)
    dark = np.ones((1, 32, 32, 1), np.uint8)  # uint8 carries its scale: never refused
    answer = loaded.signatures["serving_uint8"](images_0_255=tf.constant(dark))
    expected = _reference_probabilities(model, dark.astype(np.float32))
    np.testing.assert_allclose(answer["probabilities"].numpy(), expected, atol=1e-5)


def _encoded(kind, height, width):
    image = tf.zeros((height, width, 1), tf.uint8)
    if kind == "png":
        return tf.io.encode_png(image).numpy()
    if kind == "jpeg":
        return tf.io.encode_jpeg(image).numpy()
    if kind == "bmp":  # a 1-bit header is enough: the size is read before any pixel
        header = b"BM" + bytes(16) + width.to_bytes(4, "little") + height.to_bytes(4, "little", signed=True)
        return header + bytes(64)
    return b"GIF89a" + width.to_bytes(2, "little") + height.to_bytes(2, "little") + bytes(64)  # gif


@pytest.mark.parametrize("kind", ["png", "jpeg", "gif", "bmp"])
def test_serving_refuses_images_above_the_pixel_limit_before_decoding(tmp_path, kind):
    keras_vits.backend.keras.utils.set_random_seed(0)
    model = tiny_model("vit")
    path = export_saved_model(model, LABELS, MEAN, STD, base_dir=tmp_path, max_image_pixels=40 * 40)
    loaded = tf.saved_model.load(str(path))
    assert int(loaded.max_image_pixels) == 1600
    small = _encoded("png", 40, 40)
    if kind in ("png", "jpeg"):
        big = _encoded(kind, 41, 40)
    else:  # a header claiming 60000 x 60000: refused from the header, with no decode attempted
        big = _encoded(kind, 60000, 60000)
    with pytest.raises(tf.errors.InvalidArgumentError, match="above the limit max_image_pixels"):
        loaded.signatures["serving_bytes"](image_bytes=tf.constant([small, big]))
    with pytest.raises(tf.errors.InvalidArgumentError, match="above the limit max_image_pixels"):
        loaded.signatures["serving_uint8"](images_0_255=tf.zeros((1, 41, 40, 1), tf.uint8))
    with pytest.raises(tf.errors.InvalidArgumentError, match="above the limit max_image_pixels"):
        loaded.signatures["serving_default"](images_0_255=tf.zeros((1, 40, 41, 1), tf.float32))
    answer = loaded.signatures["serving_bytes"](image_bytes=tf.constant([small]))  # and it keeps serving
    assert answer["probabilities"].shape == (1, 10)


@pytest.mark.parametrize(
    "kwargs, error, fragment",
    [
        (dict(max_image_pixels=0), ValueError, "max_image_pixels must be a positive int"),
        (dict(top_k=0), ValueError, "top_k must be a positive int"),
        (dict(mean=(0.5, 0.5)), ValueError, "mean must hold 1 or 1 numbers"),
        (dict(std=(0.0,)), ValueError, "std must be positive"),
        (dict(base_dir=3), TypeError, "base_dir must be a path"),
    ],
)
def test_export_arguments_are_checked_before_any_folder_is_made(tmp_path, kwargs, error, fragment):
    arguments = {"labels": LABELS, "mean": MEAN, "std": STD, "base_dir": tmp_path / "out", **kwargs}
    with pytest.raises(error, match=re.escape(fragment)):
        export_saved_model(tiny_model("vit"), **arguments)
    assert not (tmp_path / "out").exists()


def test_export_takes_a_bytes_base_dir(tmp_path):
    path = export_saved_model(tiny_model("vit"), LABELS, MEAN, STD, base_dir=os.fsencode(str(tmp_path)), name="b")
    assert path == tmp_path / "b" / "1"


def test_export_rejects_wrong_labels_and_feature_models(tmp_path):
    with pytest.raises(ValueError, match="10 single-line names"):
        export_saved_model(tiny_model("vit"), LABELS[:3], MEAN, STD, base_dir=tmp_path)
    features = keras_vits.SwinTransformer(
        image_size=32, embed_dim=8, depths=(1,), num_heads=(1,), window_size=4, features_only=True
    )
    with pytest.raises(ValueError, match="features_only"):
        export_saved_model(features, LABELS, MEAN, STD, base_dir=tmp_path)


# ----------------------------------------------------------------------------- TFLite


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_every_family_converts_in_every_mode_with_builtin_ops_only(family):
    keras_vits.backend.keras.utils.set_random_seed(0)
    model = tiny_model(family)
    images = np.random.default_rng(0).normal(size=(8, 32, 32, 1)).astype(np.float32)
    reference = model(images).numpy()
    for mode in TFLITE_MODES:
        runner = TFLiteModel(convert_tflite(model, mode, representative_images=images))
        report = runner.delegation()
        assert not [op for op in report if "FLEX" in op.upper() or "CUSTOM" in op.upper()], (mode, report)
        out = runner.predict(images)
        assert out.shape == reference.shape and np.all(np.isfinite(out)), mode
        tolerance = {"float32": 1e-4, "float16": 1e-2}.get(mode)
        if tolerance:
            np.testing.assert_allclose(out, reference, atol=tolerance, err_msg=mode)


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_int8_dense_quantizes_dense_layers_and_xnnpack_runs_every_op(family):
    keras_vits.backend.keras.utils.set_random_seed(0)
    model = tiny_model(family)
    images = np.random.default_rng(0).normal(size=(8, 32, 32, 1)).astype(np.float32)
    content = convert_tflite(model, "int8_dense", representative_images=images)
    runner = TFLiteModel(content)
    out = runner.predict(images)
    report = runner.delegation()
    assert all(done == count for count, done in report.values()), report
    from ai_edge_litert.interpreter import Interpreter

    tensors = Interpreter(model_content=content).get_tensor_details()
    assert sum(t["dtype"] == np.int8 for t in tensors) >= 4, "Dense/Conv weights and activations are int8"
    reference = model(images).numpy()
    assert np.abs(out - reference).max() <= 0.2 * np.abs(reference).max() + 0.05  # untrained: ties make top-1 moot


def test_full_int8_with_int8_input_and_output():
    model = tiny_model("vit")
    images = np.random.default_rng(0).normal(size=(8, 32, 32, 1)).astype(np.float32)
    runner = TFLiteModel(convert_tflite(model, "int8", representative_images=images, int8_io=True))
    assert runner.input["dtype"] == np.int8 and runner.output["dtype"] == np.int8
    assert runner.predict(images).shape == (8, 10)


def test_delegation_report_counts_every_op():
    model = tiny_model("vit")
    content = convert_tflite(model, "float32")
    report = delegation_report(content)
    assert all(0 <= delegated <= count for count, delegated in report.values())
    assert report["FULLY_CONNECTED"][1] == report["FULLY_CONNECTED"][0], "XNNPACK takes every dense layer"


def test_conversion_arguments_are_checked():
    model = tiny_model("vit")
    with pytest.raises(ValueError, match="mode must be one of"):
        convert_tflite(model, "int4")
    with pytest.raises(ValueError, match="needs representative_images"):
        convert_tflite(model, "int8")
    with pytest.raises(ValueError, match="int8_io applies to mode 'int8' only"):
        convert_tflite(model, "float16", int8_io=True)
    runner = TFLiteModel(convert_tflite(model, "float32"))
    with pytest.raises(ValueError, match="expects input of shape"):
        runner(np.zeros((1, 16, 16, 1), np.float32))


def test_tflite_runner_refuses_integer_pixels_and_raw_float_pixels_and_names_a_channels_first_batch():
    """uint8 pixels were cast to float32 and run as if normalised: a silent wrong answer."""
    runner = TFLiteModel(convert_tflite(tiny_model("vit"), "float32"))
    for run in (runner, runner.predict):
        with pytest.raises(TypeError, match="expects float images, already normalised"):
            run(np.zeros((1, 32, 32, 1), np.uint8))
        with pytest.raises(ValueError, match=r"got \(1, 1, 32, 32\); this looks channels-first \(NCHW"):
            run(np.zeros((1, 1, 32, 32), np.float32))
        with pytest.raises(ValueError, match=r"TFLiteModel expects normalised images.*raw 0-255 pixels"):
            run(np.full((1, 32, 32, 1), 128.0, np.float32))
    assert runner([[[[0.0]] * 32] * 32]).shape == (1, 10)  # nested lists still read as float32


@pytest.mark.parametrize("mode", ["int8", "int16x8", "int8_dense"])
def test_calibrated_modes_refuse_too_few_or_wrong_images(mode):
    """With no calibration batch the converter quantized nothing and returned float32 without a word."""
    model = tiny_model("vit")
    shape = tuple(model.inputs[0].shape[1:])
    with pytest.raises(ValueError, match=r"at least one batch of 1 image\(s\), got 0"):
        convert_tflite(model, mode, representative_images=np.zeros((0, *shape), np.float32))
    with pytest.raises(ValueError, match=r"at least one batch of 4 image\(s\), got 3"):
        convert_tflite(model, mode, representative_images=np.zeros((3, *shape), np.float32), batch_size=4)
    with pytest.raises(ValueError, match=r"must be \(N, .*\) model inputs, got shape \(2, 8, 8, 1\)"):
        convert_tflite(model, mode, representative_images=np.zeros((2, 8, 8, 1), np.float32))
    with pytest.raises(TypeError, match="must be float, already normalised"):
        convert_tflite(model, mode, representative_images=np.zeros((2, *shape), np.uint8))


def test_saved_model_versions_locks_and_stale_staging_folders(tmp_path):
    model = tiny_model("vit")
    for bad in (-1, 0, True, "2", 1.5):
        with pytest.raises(ValueError, match=r"version must be an int >= 1"):
            export_saved_model(model, LABELS, MEAN, STD, base_dir=tmp_path, name="m", version=bad)
    assert not (tmp_path / "m" / "-1").exists()
    stale = tmp_path / "m" / f"{STAGING_PREFIX}3-abcd"  # left by an export killed before its rename
    stale.mkdir(parents=True)
    in_use = rf"in use by another process \(pid {os.getpid()}\)"
    with folder_lock(tmp_path / "m"), pytest.raises(FolderInUseError, match=in_use):
        export_saved_model(model, LABELS, MEAN, STD, base_dir=tmp_path, name="m")
    path = export_saved_model(model, LABELS, MEAN, STD, base_dir=tmp_path, name="m")
    assert path.name == "1" and not stale.exists()
    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == [LOCK_FILE, "1"]


def test_cli_export_to_an_unwritable_folder_fails_before_converting(tmp_path, capsys, monkeypatch):
    """Once failed only after the whole conversion. A file where the folder should be: unwritable even as root."""
    from keras_vits import export

    blocker = tmp_path / "not_a_folder"
    blocker.write_text("")

    def no_conversion(*args, **kwargs):
        raise AssertionError("converted before checking the output folder")

    monkeypatch.setattr(export, "convert_tflite", no_conversion)
    command = ["export", "pvt_v2_b0", "--weights", "random", "--num-classes", "3", "--image-size", "32"]
    command += ["--output", str(blocker / "x")]
    for output_format in ("tflite", "saved_model"):
        assert cli_main([*command, "--format", output_format]) == 2
        assert "Cannot write to the output folder" in capsys.readouterr().err
