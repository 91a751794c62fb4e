"""Mixed precision in training: losses track float32, dynamic loss scaling, resume with the scale, teachers.

All on CPU with tiny models: mixed policies run there (slowly for float16, which CPUs lack).
The kill-and-resume and MirroredStrategy cases run in tests/test_training.py, parametrised by precision.
"""

import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from training_worker import tiny_recipe

from keras_vits.backend import keras
from keras_vits.distillation import DistillationModel
from keras_vits.training import loop, teachers
from keras_vits.training.loop import build_model, dtype_policy, make_optimizer, train, with_precision
from keras_vits.training.recipes import PRECISIONS

pytestmark = pytest.mark.keras3_only

#: Largest relative gap between a mixed run's loss and float32's, over 20 steps of the tiny student.
LOSS_TOLERANCE = {"mixed_bfloat16": 0.03, "mixed_float16": 0.005}


def _batches(count, batch=16, seed=0):
    rng = np.random.default_rng(seed)
    images = rng.normal(size=(count, batch, 28, 28, 1)).astype("float32")
    labels = rng.integers(0, 10, size=(count, batch))
    return [(tf.constant(x), tf.constant(y)) for x, y in zip(images, labels)]


def _losses_over_steps(precision, initial_weights, batches, initial_loss_scale=32768.0):
    recipe = tiny_recipe(precision=precision, initial_loss_scale=initial_loss_scale, warmup_epochs=0, base_lr=0.1)
    with dtype_policy(precision):
        student = build_model(recipe, num_classes=10, channels=1)
        student.set_weights(initial_weights)
        model = DistillationModel(student)
        optimizer = make_optimizer(recipe, student, steps_per_epoch=len(batches), global_batch_size=16)
        model.compile(optimizer=optimizer)
    step = tf.function(model.train_step)
    losses = [float(step(batch)["loss"]) for batch in batches]
    return losses, student, optimizer


@pytest.mark.parametrize("precision", ["mixed_bfloat16", "mixed_float16"])
def test_twenty_mixed_steps_track_the_float32_losses(precision):
    batches = _batches(1) * 20  # one batch, learnt by heart: the loss falls steadily
    reference_student = build_model(tiny_recipe(), num_classes=10, channels=1)
    weights = reference_student.get_weights()
    float32_losses, _, _ = _losses_over_steps("float32", weights, batches)
    mixed_losses, student, optimizer = _losses_over_steps(precision, weights, batches)
    gap = np.max(np.abs(np.array(mixed_losses) - float32_losses) / np.array(float32_losses))
    assert gap < LOSS_TOLERANCE[precision], (gap, mixed_losses, float32_losses)
    assert float32_losses[-1] < float32_losses[0] - 0.1  # the comparison is over a run that learns
    assert all(v.dtype == "float32" for v in student.trainable_variables)
    assert student.get_layer("blocks_0_attn_qkv").compute_dtype == precision.removeprefix("mixed_")
    assert student(batches[0][0]).dtype == "float32" or precision != "float32"
    assert isinstance(optimizer, keras.optimizers.LossScaleOptimizer) == (precision == "mixed_float16")


def test_an_overflowing_step_is_skipped_and_the_scale_drops():
    batches = _batches(1)
    weights = build_model(tiny_recipe(), num_classes=10, channels=1).get_weights()
    _, student, optimizer = _losses_over_steps("mixed_float16", weights, batches, initial_loss_scale=2.0**40)
    for before, after in zip(weights, student.get_weights()):
        np.testing.assert_array_equal(before, after)  # the overflowing step changed nothing
    assert loop.loss_scale(optimizer) == 2.0**39
    _, student, optimizer = _losses_over_steps("mixed_float16", weights, batches, initial_loss_scale=1024.0)
    assert loop.loss_scale(optimizer) == 1024.0
    assert any(np.any(b != a) for b, a in zip(weights, student.get_weights()))


def test_distillation_model_compile_adds_loss_scaling_for_a_float16_student():
    with dtype_policy("mixed_float16"):
        student = build_model(tiny_recipe(), num_classes=10, channels=1)
    model = DistillationModel(student)  # built outside the policy: the student's policy decides
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer)
    history = model.fit(*_batches(1)[0], epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_a_stopped_mixed_float16_run_resumes_with_its_loss_scale(tmp_path):
    recipe = tiny_recipe(precision="mixed_float16", initial_loss_scale=2.0**30, checkpoint_every=2)
    with warnings.catch_warnings(), tfds.testing.mock_data(num_examples=64):
        warnings.simplefilter("ignore", RuntimeWarning)
        first = train(recipe, tmp_path / "run", max_steps=4, verbose=0)
        resumed = train(recipe, tmp_path / "run", max_steps=4, verbose=0)  # restores, trains no more steps
    assert first["loss_scale"] < 2.0**30  # the first steps overflowed and halved it
    assert resumed["loss_scale"] == first["loss_scale"]
    keys = {k for k, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(tmp_path / "run" / "checkpoints")))}
    assert "loss_scale/dynamic_scale/.ATTRIBUTES/VARIABLE_VALUE" in keys


def test_a_resumed_run_in_another_precision_is_refused(tmp_path):
    with tfds.testing.mock_data(num_examples=32):
        train(tiny_recipe(), tmp_path / "run", max_steps=2, verbose=0)
        with pytest.raises(ValueError, match=r"precision: 'float32' there, 'mixed_bfloat16' now"):
            train(tiny_recipe(precision="mixed_bfloat16"), tmp_path / "run", max_steps=2, verbose=0)


def test_an_unknown_precision_lists_the_three():
    with pytest.raises(ValueError, match=r"precision must be one of \('float32', 'mixed_float16', 'mixed_bfloat16'\)"):
        tiny_recipe(precision="float16")
    assert PRECISIONS == ("float32", "mixed_float16", "mixed_bfloat16")


def test_mixed_float16_without_a_gpu_warns():
    if tf.config.list_physical_devices("GPU"):
        pytest.skip("a GPU is present")
    with pytest.warns(RuntimeWarning, match="without a GPU"):
        loop.warn_if_slow_precision("mixed_float16")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        loop.warn_if_slow_precision("mixed_bfloat16")


@pytest.mark.parametrize(("saved_in", "run_in"), [("float32", "mixed_bfloat16"), ("mixed_bfloat16", "float32")])
def test_a_teacher_saved_in_another_precision_loads_and_teaches(tmp_path, saved_in, run_in):
    with dtype_policy(saved_in):
        teacher = teachers.convnet_small(28, 1, 10)
    path = tmp_path / "teacher.keras"
    teacher.save(path)
    images = _batches(1)[0][0]
    expected = teacher(images, training=False).numpy().astype("float32")
    with dtype_policy(run_in):
        reloaded = with_precision(keras.models.load_model(path, safe_mode=True, compile=False), run_in)
    assert {layer.dtype_policy.name for layer in reloaded.layers if layer.weights} == {run_in}
    np.testing.assert_allclose(reloaded(images, training=False).numpy().astype("float32"), expected, atol=0.1)
    recipe = tiny_recipe(distillation="hard", teacher=str(path), precision=run_in, epochs=1)
    with tfds.testing.mock_data(num_examples=32):
        result = train(recipe, tmp_path / "run", max_steps=2, verbose=0)
    assert np.isfinite(result["final"]["loss"])


def test_a_deit_teacher_in_another_precision_keeps_its_averaged_head(tmp_path):
    """clone_model once rebuilt a DeiT as a plain two-output model: soft mode then divided its loss by 2."""
    teacher = build_model(tiny_recipe(), num_classes=10, channels=1)  # a DeiT: class and distillation heads
    path = tmp_path / "deit_teacher.keras"
    teacher.save(path)
    images = _batches(1)[0][0]
    expected = teacher(images, training=False).numpy()
    # Loaded where the policy is mixed (as the trainer loads teachers), a DeiT rebuilds in it.
    with dtype_policy("mixed_bfloat16"):
        reloaded = with_precision(keras.models.load_model(path, safe_mode=True, compile=False), "mixed_bfloat16")
    assert type(reloaded) is type(teacher)
    assert reloaded.get_layer("blocks_0_attn_qkv").compute_dtype == "bfloat16"
    np.testing.assert_allclose(reloaded(images, training=False).numpy().astype("float32"), expected, atol=0.05)
    # Loaded in float32, it is kept as it is rather than cloned into a two-output functional model.
    float32_teacher = keras.models.load_model(path, safe_mode=True, compile=False)
    assert with_precision(float32_teacher, "mixed_bfloat16") is float32_teacher
    recipe = tiny_recipe(distillation="soft", teacher=str(path), precision="mixed_bfloat16", epochs=1)
    with tfds.testing.mock_data(num_examples=32):
        result = train(recipe, tmp_path / "run", max_steps=2, verbose=0)
    assert np.isfinite(result["final"]["loss"])


def test_a_teacher_with_two_outputs_is_refused_by_name():
    inputs = keras.Input((28, 28, 1))
    features = keras.layers.Flatten()(inputs)
    teacher = keras.Model(inputs, [keras.layers.Dense(10)(features), keras.layers.Dense(10)(features)], name="twin")
    student = build_model(tiny_recipe(), num_classes=10, channels=1)
    model = DistillationModel(student, teacher, mode="hard")
    with pytest.raises(ValueError, match="teacher twin returns 2 outputs; distillation needs one"):
        model.teacher_logits(_batches(1)[0][0])
