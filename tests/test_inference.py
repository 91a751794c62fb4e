"""keras_vits.inference and keras_vits.benchmark: every fast path gives the plain path's outputs.

Benchmarks are not timed here; these tests check correctness and the table's structure only.
"""

import importlib.util
import os
import sys

import numpy as np
import pytest
import tensorflow as tf

import keras_vits
from keras_vits.benchmark import benchmark_case, format_table, matmul_flops, run_benchmark, train_step_function
from keras_vits.inference import MODES, bfloat16_copy, compile_for_inference, inference_function
from keras_vits.registry import create_model

pytestmark = pytest.mark.keras3_only

PVT_TINY = dict(
    image_size=32,
    embed_dims=(8, 16, 24, 32),
    depths=(1, 1, 1, 1),
    num_heads=(1, 2, 1, 2),
    mlp_ratios=(2, 2, 2, 2),
    num_classes=10,
)
FAMILIES = {
    "vit": lambda: keras_vits.VisionTransformer(
        image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10
    ),
    "deit": lambda: keras_vits.DeiT(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10),
    "swin": lambda: keras_vits.SwinTransformer(
        image_size=32, patch_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10
    ),
    "pvt_v1": lambda: keras_vits.PyramidVisionTransformer(**PVT_TINY),
    "pvt_v2": lambda: keras_vits.PyramidVisionTransformerV2(**PVT_TINY),
}


@pytest.fixture(scope="module")
def images():
    return tf.random.stateless_normal([2, 32, 32, 3], seed=(5, 6))


@pytest.mark.parametrize("family", sorted(FAMILIES))
@pytest.mark.parametrize("mode", MODES)
def test_fast_paths_match_the_plain_model(family, mode, images):
    model = FAMILIES[family]()
    expected = np.asarray(model(images, training=False))
    logits = np.asarray(inference_function(model, mode)(images))
    assert logits.dtype == np.float32 and logits.shape == expected.shape
    if mode.startswith("bfloat16"):
        scale = np.abs(expected).max()
        assert np.abs(logits - expected).max() <= 0.05 * scale + 0.02
    else:
        np.testing.assert_allclose(logits, expected, atol=1e-4, rtol=1e-4)


def test_bfloat16_copy_shares_weights_not_variables():
    model = FAMILIES["vit"]()
    copy = bfloat16_copy(model)
    assert copy.dtype_policy.name == "mixed_bfloat16" and model.dtype_policy.name == "float32"
    for a, b in zip(model.get_weights(), copy.get_weights()):
        np.testing.assert_array_equal(a, b)
    assert keras_vits.backend.keras.mixed_precision.global_policy().name == "float32"


def test_compile_for_inference_picks_a_correct_path(images):
    model = FAMILIES["pvt_v2"]()
    path = compile_for_inference(model, images, modes=["float32", "xla", "bfloat16"])
    assert path.mode in path.seconds and set(path.seconds) <= {"float32", "xla", "bfloat16"}
    tolerance = 0.05 if path.mode == "bfloat16" else 1e-4
    np.testing.assert_allclose(np.asarray(path(images)), np.asarray(model(images)), atol=tolerance * 10, rtol=tolerance)


def test_compile_for_inference_rejects_paths_that_disagree(images):
    model = FAMILIES["vit"]()
    path = compile_for_inference(model, images, modes=["float32", "bfloat16"], rtol=1e-9)
    assert path.mode == "float32" and "bfloat16" not in path.seconds


def test_train_step_changes_the_weights():
    model = keras_vits.create_model("deit_tiny_distilled_patch16_224", image_size=32, patch_size=16, depth=1)
    before = [w.copy() for w in model.get_weights()]
    loss = train_step_function(model, batch_size=2)(tf.zeros([2, 32, 32, 3]))
    assert np.isfinite(float(loss))
    assert any(not np.array_equal(b, a) for b, a in zip(before, model.get_weights()))


def test_benchmark_rows_and_table():
    rows, machine = run_benchmark(
        ["vit_tiny_patch16_224"],
        batch_sizes=[1],
        image_size=32,
        modes=["float32", "train"],
        repeats=1,
        calls=1,
        log=lambda message: None,
    )
    assert [(r["mode"], r["batch"]) for r in rows] == [("float32", 1), ("train", 1)]
    assert rows[0]["images_per_second"] > 0 and 0 < rows[0]["fraction_of_matmul_limit"] < 1.5
    assert machine["float32_matmul_gflops"] > 1
    table = format_table(rows, machine)
    assert "| vit_tiny_patch16_224 | 1 | float32 |" in table
    with pytest.raises(ValueError, match="Unknown modes"):
        run_benchmark(["vit_tiny_patch16_224"], modes=["fp8"])


def test_benchmark_has_the_fashion_mnist_student_case():
    rows, _ = run_benchmark(
        ["fmnist_student"], batch_sizes=[4], modes=["train"], repeats=1, calls=1, log=lambda message: None
    )
    assert [(r["model"], r["batch"], r["mode"]) for r in rows] == [("fmnist_student", 4, "train")]
    assert rows[0]["images_per_second"] > 0
    registry_name, size, channels, classes, arguments = benchmark_case("fmnist_student", 224)
    model = create_model(registry_name, image_size=size, in_chans=channels, num_classes=classes, **arguments)
    assert model.inputs[0].shape[1:] == (28, 28, 1) and model.count_params() < 600_000  # the recipes' student
    assert benchmark_case("vit_tiny_patch16_224", 64) == ("vit_tiny_patch16_224", 64, 3, 1000, {})


@pytest.mark.slow
def test_benchmark_times_keras_cv_attention_models_beside():
    """kecam runs in a tf-keras worker process; rows get its graph and XLA images per second."""
    # Not importorskip: importing kecam sets TF_USE_LEGACY_KERAS=1 in this process's environment,
    # which every later subprocess of this pytest worker (the training workers) would inherit.
    if importlib.util.find_spec("keras_cv_attention_models") is None:
        pytest.skip("keras_cv_attention_models is not installed (the 'test' extra)")
    legacy_keras_before = os.environ.get("TF_USE_LEGACY_KERAS")
    rows, machine = run_benchmark(
        ["pvt_v2_b0", "deit_tiny_distilled_patch16_224"],
        batch_sizes=[1],
        image_size=64,
        modes=["float32"],
        repeats=1,
        calls=1,
        kecam_python=sys.executable,
        log=lambda message: None,
    )
    pvt, deit = rows
    assert pvt["kecam_images_per_second"] > 0 and pvt["kecam_xla_images_per_second"] > 0
    assert "kecam_images_per_second" not in deit  # kecam has no distilled DeiT: the row stays, without peer columns
    assert machine["kecam"] == "1.4.3" and machine["kecam_keras"].startswith("2.")
    table = format_table(rows, machine)
    assert "keras_cv_attention_models 1.4.3" in table
    assert os.environ.get("TF_USE_LEGACY_KERAS") == legacy_keras_before  # kecam switched only its worker
    assert table.splitlines()[4].count("x |") == 1  # pvt_v2_b0: "vs best kecam" only (no timm column)


def test_matmul_flops_is_positive():
    assert matmul_flops("float32", size=256, repeats=1) > 1e8
