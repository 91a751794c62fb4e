"""keras_vits.training.loop: argument and data checks, the optimizer, the loop, resume after a kill, strategies.

Data comes from `tfds.testing.mock_data` and generated image folders, never the network.
The strategy and kill tests run `tests/training_worker.py` in their own processes.
"""

import json
import os
import pathlib
import re
import signal
import socket
import subprocess
import sys
import time
import warnings

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from training_worker import TINY_STUDENT, tiny_recipe, write_image_folder

from keras_vits import create_model as keras_vits_create_model
from keras_vits.backend import keras
from keras_vits.training import run_folder
from keras_vits.training.loop import (
    NaNLossError,
    build_model,
    evaluate,
    learning_rate_schedule,
    no_weight_decay_variables,
    restore_checkpoint,
    summary_table,
    train,
    training_checkpoint,
)
from keras_vits.training.pipeline import make_dataset
from keras_vits.training.recipes import Recipe

pytestmark = pytest.mark.keras3_only
#: The variants of a long training test that repeat what its first variant checks: `make test` runs
#: them, `make test-fast` leaves them out.
SLOW = pytest.mark.slow

WORKER = pathlib.Path(__file__).with_name("training_worker.py")


def _run_worker(*args, env=None, timeout=600):
    result = subprocess.run(
        [sys.executable, str(WORKER), *map(str, args)], capture_output=True, text=True, timeout=timeout, env=env
    )
    assert result.returncode == 0, result.stderr[-3000:]
    line = [ln for ln in result.stdout.splitlines() if ln.startswith("RESULT ")][-1]
    return json.loads(line[len("RESULT ") :])


# ------------------------------------------------------ checks before any work


@pytest.mark.parametrize(
    "call, error, message",
    [
        (lambda t: train(tiny_recipe(), 3), TypeError, "output_dir must be a path"),
        (lambda t: train({"name": "x"}, t), TypeError, "recipe must be a keras_vits.training.Recipe"),
        (lambda t: train(tiny_recipe(), t, max_steps=0), ValueError, "max_steps must be >= 1, got 0"),
        (lambda t: train(tiny_recipe(), t, max_steps=2.5), TypeError, "max_steps must be an int >= 1 or None"),
        (lambda t: evaluate(t / "model.keras", batch_size=0), ValueError, "batch_size must be >= 1, got 0"),
        (lambda t: evaluate(t / "model.keras", batch_size="8"), TypeError, "batch_size must be an int"),
        (lambda t: evaluate(t / "model.keras", image_size=-1), ValueError, "image_size must be >= 1"),
        (lambda t: evaluate(None), TypeError, "model_path must be a path"),
        (lambda t: evaluate(bytes(t / "missing.keras")), FileNotFoundError, "missing.keras"),
    ],
)
def test_train_and_evaluate_check_their_arguments_before_any_work(tmp_path, call, error, message):
    with pytest.raises(error, match=message):
        call(tmp_path)
    assert not list(tmp_path.iterdir()), "nothing is written"


def test_wrong_channel_count_fails_before_training(tmp_path):
    recipe = tiny_recipe(mean=(0.5, 0.5, 0.5), std=(0.5, 0.5, 0.5))
    with (
        tfds.testing.mock_data(num_examples=16),
        pytest.raises(ValueError, match="have 1 channels but the recipe normalises 3"),
    ):
        train(recipe, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_teacher_with_other_classes_fails_before_training(tmp_path):
    teacher = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(3)])
    teacher.save(tmp_path / "teacher.keras")
    recipe = tiny_recipe(distillation="hard", teacher=str(tmp_path / "teacher.keras"))
    with tfds.testing.mock_data(num_examples=16):
        with pytest.raises(ValueError, match="teacher predicts 3 classes and the student 10"):
            train(recipe, tmp_path / "run", verbose=0)
        with pytest.raises(FileNotFoundError, match="Teacher .* does not exist"):
            train(recipe.replace(teacher=str(tmp_path / "none.keras")), tmp_path / "run2", verbose=0)


def test_a_teacher_and_the_distillation_mode_must_agree(tmp_path):
    with tfds.testing.mock_data(num_examples=16):
        with pytest.raises(ValueError, match="teacher='t.keras' was given but distillation is 'none'"):
            train(tiny_recipe(teacher="t.keras"), tmp_path / "a", verbose=0)
        with pytest.raises(ValueError, match="distillation='hard' needs a teacher"):
            train(tiny_recipe(distillation="hard"), tmp_path / "b", verbose=0)
    assert not (tmp_path / "a").exists() or not (tmp_path / "a" / "checkpoints").exists()


def test_convnet_teachers_refuse_registry_model_settings():
    with pytest.raises(ValueError, match=r"convnet_small is a keras_vits.training teacher, which takes no \[.drop"):
        build_model(tiny_recipe(model="convnet_small", model_overrides={}, drop_path_rate=0.1), 10, 1)
    with pytest.raises(ValueError, match=r"takes no \['model_overrides'\]"):
        build_model(tiny_recipe(model="convnet_small"), 10, 1)  # tiny_recipe's overrides are a DeiT's


def test_train_and_eval_splits_with_other_class_names_are_refused(tmp_path):
    write_image_folder(tmp_path / "train", classes=("cat", "dog"))
    write_image_folder(tmp_path / "test", classes=("ant", "bee"))
    recipe = tiny_recipe(dataset=f"folder:{tmp_path}", mean=(0.5,), std=(0.5,))
    with pytest.raises(ValueError, match=r"'train' and 'test' splits name other classes: \['cat', 'dog'\] against"):
        train(recipe, tmp_path / "run", verbose=0)


def test_a_second_run_into_a_folder_in_use_is_refused_with_the_holders_pid(tmp_path):
    out = tmp_path / "run"
    with run_folder.folder_lock(out), tfds.testing.mock_data(num_examples=16):
        with pytest.raises(run_folder.FolderInUseError, match=rf"in use by another process \(pid {os.getpid()}\)"):
            train(tiny_recipe(), out, max_steps=1, verbose=0)
        assert not (out / "checkpoints").exists()
    with tfds.testing.mock_data(num_examples=16):
        train(tiny_recipe(), out, max_steps=1, verbose=0)  # the lock went with its holder


# ------------------------------------------------------------------- optimizer


def test_no_weight_decay_for_norms_biases_tokens_and_position_embeddings():
    model = build_model(tiny_recipe(), num_classes=10, channels=1)
    excluded = {v.path if hasattr(v, "path") else v.name for v in no_weight_decay_variables(model)}
    names = {v.path for v in model.trainable_variables}
    decayed = names - excluded
    assert all(name.endswith("kernel") for name in decayed), decayed
    assert any("token" in name for name in excluded) and any("embedding" in name for name in excluded)
    assert any(name.endswith("gamma") for name in excluded) and any(name.endswith("bias") for name in excluded)


def test_learning_rate_warms_up_scales_with_batch_and_decays():
    recipe = Recipe(name="t", base_lr=5e-4, min_lr=1e-5, epochs=10, warmup_epochs=1)
    schedule = learning_rate_schedule(recipe, steps_per_epoch=100, global_batch_size=1024)
    peak = 5e-4 * 1024 / 512
    assert float(schedule(0)) == pytest.approx(0.0)
    assert float(schedule(50)) == pytest.approx(peak / 2, rel=1e-3)
    assert float(schedule(100)) == pytest.approx(peak, rel=1e-4)
    assert float(schedule(1000)) == pytest.approx(1e-5, rel=1e-3)
    assert float(schedule(550)) < float(schedule(300)) < peak


def test_a_min_lr_above_the_peak_warns_and_holds_the_peak():
    """It was clipped to the peak, a constant learning rate, with no word said."""
    recipe = Recipe(name="t", base_lr=1e-3, min_lr=1e-3, warmup_epochs=0)  # peak 1e-3 * 128 / 512 = 2.5e-4
    with pytest.warns(UserWarning, match=r"min_lr \(0.001\) is above the peak learning rate 0.00025 .*batch 128"):
        schedule = learning_rate_schedule(recipe, steps_per_epoch=10, global_batch_size=128)
    assert [float(schedule(step)) for step in (0, 50, 100)] == pytest.approx([2.5e-4] * 3)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # at or below the peak: no warning
        learning_rate_schedule(recipe.replace(min_lr=2.5e-4), 10, 128)


# -------------------------------------------------------------------- the loop


def test_train_writes_everything_and_resumes(tmp_path):
    out = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=32):
        first = train(tiny_recipe(), out, max_steps=5, verbose=0)
        assert first["steps"] == 5
        for name in ("checkpoints", "tensorboard", "history.json", "curves.png", "recipe.json", "model.keras"):
            assert (out / name).exists(), name
        assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("-5")
        second = train(tiny_recipe(), out, verbose=0)
    assert second["steps"] == 8  # 2 epochs x 4 steps, counting on from 5
    # train_seconds is the whole run's: the first process's (from the checkpoint) and this one's
    own_seconds = second["trained_images"] / second["images_per_second"]
    assert second["train_seconds"] == pytest.approx(first["train_seconds"] + own_seconds, rel=1e-6)
    assert [h["epoch"] for h in second["history"]] == [1, 2]
    assert {"top1_cls", "top1_dist", "top1_avg", "train_loss", "eval_loss"} <= set(second["history"][-1])
    # 4 steps an epoch: every step is logged, once, across the resume, for curves.png's per-step line
    assert [s["step"] for s in json.loads((out / "steps.json").read_text())] == list(range(1, 9))
    with pytest.raises(ValueError, match="different recipe"), tfds.testing.mock_data(num_examples=32):
        train(tiny_recipe(epochs=3, base_lr=0.1), out, verbose=0)


@pytest.mark.slow
def test_ema_weights_are_checkpointed(tmp_path):
    counts = {}
    for ema in (None, 0.5):
        with tfds.testing.mock_data(num_examples=32):
            result = train(tiny_recipe(ema_momentum=ema, epochs=1), tmp_path / f"run{ema}", verbose=0)
        values = _checkpoint_values(tf.train.latest_checkpoint(str(tmp_path / f"run{ema}" / "checkpoints")))
        counts[ema] = sum(k.startswith("optimizer/") for k in values)
        assert 0 < result["final"]["loss"] < 10
    trainable = len(build_model(tiny_recipe(), 10, 1).trainable_variables)
    assert counts[0.5] == counts[None] + trainable, "one moving average per trainable variable"


@pytest.mark.slow
def test_with_an_ema_every_epochs_evaluation_scores_the_averaged_weights(tmp_path):
    """The history (and curves.png) once scored the live weights while result.json scored the EMA."""
    with tfds.testing.mock_data(num_examples=32):
        result = train(tiny_recipe(ema_momentum=0.5, epochs=2), tmp_path / "run", verbose=0)
        resumed_live = train(tiny_recipe(ema_momentum=0.5, epochs=3), tmp_path / "run3", max_steps=4, verbose=0)
    last = result["history"][-1]
    assert last["eval_loss"] == pytest.approx(result["final"]["loss"], rel=1e-6)
    assert last["top1_avg"] == pytest.approx(result["final"]["top1_avg"])
    # the live weights come back after each evaluation: the checkpoint holds them, not the average
    ema_values = resumed_live["student"].get_weights()  # finalized at the end: the averages
    saved = _checkpoint_values(tf.train.latest_checkpoint(str(tmp_path / "run3" / "checkpoints")))
    kernel = next(k for k in saved if k.startswith("student/") and "kernel" in k)
    assert not any(np.array_equal(saved[kernel], value) for value in ema_values)


def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(tmp_path):
    out = tmp_path / "run"
    recipe = tiny_recipe(base_lr=1e35, warmup_epochs=0, checkpoint_every=1, min_lr=1e33)  # peak 1.6e33
    with (
        tfds.testing.mock_data(num_examples=32),
        pytest.raises(NaNLossError, match=r"at step (\d+) .*last good checkpoint is .*ckpt-(\d+)") as error,
    ):
        train(recipe, out, verbose=0)
    import re

    bad_step, good_step = map(int, re.search(r"at step (\d+) .*ckpt-(\d+)", str(error.value)).groups())
    assert good_step == bad_step - 1
    values = _checkpoint_values(str(out / "checkpoints" / f"ckpt-{good_step}"))
    floats = [v for v in values.values() if v.dtype.kind == "f"]
    assert len(floats) > 10 and all(np.isfinite(v).all() for v in floats)


@pytest.mark.slow
def test_the_final_epochs_train_unaugmented_also_after_a_resume(tmp_path, monkeypatch):
    """`unaugmented_final_epochs=2` of 4: epochs 3 and 4 see plain images, and a resume inside epoch 4 too."""
    from keras_vits.training import loop

    out = tmp_path / "run"
    recipe = tiny_recipe(epochs=4, augment=True, unaugmented_final_epochs=2, checkpoint_every=4)
    calls = []

    def recording(source, recipe, global_batch_size, training, epoch=0, skip_batches=0, augment=True):
        if training:
            calls.append((epoch, skip_batches, augment))
        return make_dataset(source, recipe, global_batch_size, training, epoch, skip_batches, augment)

    monkeypatch.setattr(loop, "make_dataset", recording)
    with tfds.testing.mock_data(num_examples=64):  # batch 8: 8 steps an epoch
        train(recipe, out, max_steps=28, verbose=0)  # stops inside epoch 4, after its checkpoint at step 28
        train(recipe, out, verbose=0)
    assert calls == [(0, 0, True), (1, 0, True), (2, 0, False), (3, 0, False), (3, 4, False)]
    with pytest.raises(ValueError, match=r"unaugmented_final_epochs \(5\) cannot exceed epochs \(4\)"):
        recipe.replace(unaugmented_final_epochs=5)


@pytest.mark.slow
def test_initial_weights_from_a_keras_file_start_the_run_and_a_resume_does_not_read_them_again(tmp_path):
    from keras_vits.backend import layer_weights, load_keras_file

    first, second = tmp_path / "first", tmp_path / "second"
    with tfds.testing.mock_data(num_examples=32):  # batch 8: 4 steps an epoch, a checkpoint every 2
        train(tiny_recipe(epochs=1), first, verbose=0)
        trained = {key: v.numpy() for key, v in layer_weights(load_keras_file(first / "model.keras")).items()}
        # a learning rate too small to move the weights: what the run starts from is what it ends with
        recipe = tiny_recipe(
            epochs=1, initial_weights=str(first / "model.keras"), base_lr=1e-9, min_lr=0.0, weight_decay=0.0
        )
        train(recipe, second, max_steps=2, verbose=0)
        (first / "model.keras").unlink()  # resumed from its checkpoint, the run never needs the file again
        result = train(recipe, second, verbose=0)
    assert result["steps"] == 4
    started = layer_weights(result["student"])
    assert set(started) == set(trained)
    for key, value in trained.items():
        np.testing.assert_allclose(started[key].numpy(), value, atol=1e-6, err_msg=key)
    assert json.loads((second / "recipe.json").read_text())["initial_weights"] == str(first / "model.keras")


def test_initial_weights_that_do_not_fit_are_refused_before_any_step(tmp_path):
    other = build_model(tiny_recipe(model_overrides=dict(TINY_STUDENT, embed_dim=8)), 10, 1)
    other.save(tmp_path / "other.keras")
    out = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=16):
        with pytest.raises(ValueError, match=r"do not fit .* differences: .*\(8,\) in the file, \(16,\) in the model"):
            train(tiny_recipe(initial_weights=str(tmp_path / "other.keras")), out, verbose=0)
        with pytest.raises(FileNotFoundError, match="No initial weights at"):
            train(tiny_recipe(initial_weights=str(tmp_path / "missing.keras")), out, verbose=0)
    assert not (out / "checkpoints").exists() and not (out / "recipe.json").exists()
    with pytest.raises(ValueError, match="convnet_small is a keras_vits.training teacher with no timm checkpoints"):
        build_model(tiny_recipe(model="convnet_small"), 10, 1, "timm/resnet50.a1_in1k")


def test_initial_weights_from_a_timm_checkpoint(fixtures_dir):
    """A registry model starts from a timm .safetensors file, as create_model(weights=...) loads it."""
    overrides = {"patch_size": 8, "embed_dim": 48, "depth": 2, "num_heads": 3}
    checkpoint = str(fixtures_dir / "deit_distilled.safetensors")
    recipe = tiny_recipe(image_size=32, model_overrides=overrides, mean=(0.5,) * 3, std=(0.5,) * 3)
    started = build_model(recipe, 10, 3, checkpoint)
    expected = keras_vits_create_model(
        recipe.model, weights=checkpoint, num_classes=10, image_size=32, in_chans=3, **overrides
    ).get_weights()
    assert len(started.get_weights()) == len(expected)
    for got, want in zip(started.get_weights(), expected):
        np.testing.assert_array_equal(got, want)
    fresh = build_model(recipe, 10, 3)
    assert not np.array_equal(fresh.get_weights()[0], expected[0]), "without initial_weights the init is random"


# ------------------------------------------------------- kills and checkpoints


def _checkpoint_values(path):
    reader = tf.train.load_checkpoint(path)
    return {k: reader.get_tensor(k) for k, _ in tf.train.list_variables(path) if k != "_CHECKPOINTABLE_OBJECT_GRAPH"}


KILLED_RUN_SETTINGS = {
    "float32": {},
    # A start far above what float16 gradients allow: the first steps overflow, are skipped and halve
    # the scale, so the saved scale differs from the initial one and the restore must bring it back.
    "mixed_float16": {"precision": "mixed_float16", "initial_loss_scale": 2.0**30},
}


@pytest.mark.parametrize("precision", ["float32", pytest.param("mixed_float16", marks=SLOW)])
def test_a_killed_run_resumes_with_its_step_and_optimizer_state(tmp_path, precision):
    out = tmp_path / "run"
    settings = KILLED_RUN_SETTINGS[precision]
    overrides = [f"{key}={value}" for key, value in settings.items()]
    args = [sys.executable, str(WORKER), out, "--slow", "--set", "epochs=4", "checkpoint_every=3", *overrides]
    process = subprocess.Popen(list(map(str, args)), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    try:
        while time.time() < deadline:
            latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
            if latest and int(latest.rsplit("-", 1)[1]) >= 6:
                break
            time.sleep(0.2)
        else:
            pytest.fail("no checkpoint at step >= 6 within 300 s")
        os.kill(process.pid, signal.SIGKILL)
    finally:
        process.wait()
    assert process.returncode == -signal.SIGKILL
    latest = tf.train.latest_checkpoint(str(out / "checkpoints"))
    saved_step = int(latest.rsplit("-", 1)[1])
    saved = _checkpoint_values(latest)
    assert int(saved["progress/batches_done/.ATTRIBUTES/VARIABLE_VALUE"]) == saved_step
    if precision == "float32":
        assert int(saved["optimizer/iteration/.ATTRIBUTES/VARIABLE_VALUE"]) == saved_step
    else:  # skipped steps do not count as optimizer iterations; the saved scale is below the initial one
        assert float(saved["loss_scale/dynamic_scale/.ATTRIBUTES/VARIABLE_VALUE"]) < settings["initial_loss_scale"]

    # Spy on the restore: the state the resumed run starts from, written out again, equals the saved one.
    restored = {}
    original_restore = tf.train.Checkpoint.restore

    def spy_restore(self, path, *args, **kwargs):
        status = original_restore(self, path, *args, **kwargs)
        restored["step"] = int(self.progress["batches_done"].numpy())
        restored["values"] = _checkpoint_values(self.write(str(tmp_path / "restored" / "state")))
        return status

    tf.train.Checkpoint.restore = spy_restore
    try:
        with tfds.testing.mock_data(num_examples=64):
            result = train(tiny_recipe(epochs=4, checkpoint_every=3, **settings), out, verbose=0)
    finally:
        tf.train.Checkpoint.restore = original_restore
    assert restored["step"] == saved_step
    moments = [k for k in saved if k.startswith("optimizer/") and not k.startswith("optimizer/iteration/")]
    assert len(moments) > 10
    assert set(restored["values"]) >= set(saved) - {"save_counter/.ATTRIBUTES/VARIABLE_VALUE"}
    for key, value in saved.items():
        if key != "save_counter/.ATTRIBUTES/VARIABLE_VALUE":
            np.testing.assert_array_equal(restored["values"][key], value, err_msg=key)
    assert result["steps"] == 4 * 8  # all epochs, counted on from the saved step


class _Killed(BaseException):
    """Stands in for SIGKILL at one point of the loop (BaseException: nothing catches it)."""


@pytest.mark.parametrize(  # 4 divides the 8 steps of an epoch: a periodic save there
    ("killed_at", "checkpoint_every"),
    [
        ("history", 3),
        pytest.param("history", 4, marks=SLOW),
        pytest.param("checkpoint", 3, marks=SLOW),
        pytest.param("checkpoint", 4, marks=SLOW),
    ],
)
def test_a_kill_around_the_epoch_end_loses_no_history_entry(tmp_path, monkeypatch, killed_at, checkpoint_every):
    """Killed after the epoch's history write or after its checkpoint: resumed, every epoch is logged once."""
    out = tmp_path / "run"
    recipe = tiny_recipe(epochs=3, checkpoint_every=checkpoint_every)  # 64 mock images, batch 8: 8 steps an epoch
    original_save, original_write = tf.train.CheckpointManager.save, run_folder.atomic_write_text

    def save(self, checkpoint_number=None, **kwargs):
        path = original_save(self, checkpoint_number=checkpoint_number, **kwargs)
        if killed_at == "checkpoint" and checkpoint_number == 16:
            raise _Killed
        return path

    def write(path, text):
        original_write(path, text)
        if killed_at == "history" and pathlib.Path(path).name == run_folder.HISTORY_FILE and '"epoch": 2' in text:
            raise _Killed

    with tfds.testing.mock_data(num_examples=64):
        monkeypatch.setattr(tf.train.CheckpointManager, "save", save)
        monkeypatch.setattr(run_folder, "atomic_write_text", write)
        with pytest.raises(_Killed):
            train(recipe, out, verbose=0)
        monkeypatch.undo()
        result = train(recipe, out, verbose=0)
    history = json.loads((out / run_folder.HISTORY_FILE).read_text())
    assert [entry["epoch"] for entry in history] == [1, 2, 3]
    assert [entry["step"] for entry in history] == [8, 16, 24]
    assert all(np.isfinite(entry["train_loss"]) and "top1_avg" in entry for entry in history)
    assert result["steps"] == 24
    assert [s["step"] for s in json.loads((out / run_folder.STEPS_FILE).read_text())] == list(range(1, 25))


@pytest.mark.parametrize("saved_progress", [(), pytest.param(("batches_done",), marks=SLOW)])
def test_a_checkpoint_from_before_batches_done_resumes_at_its_step(tmp_path, monkeypatch, saved_progress):
    """Checkpoints of older versions: without `progress/` at all (float32 runs only: they resume from
    the optimizer's step), and with `progress/batches_done` but no `progress/train_seconds`."""
    from keras_vits.training import loop

    out = tmp_path / "run"
    original = loop.training_checkpoint

    def older_checkpoint(student, optimizer, batches_done=None, train_seconds=None):
        return original(student, optimizer, *([batches_done] if saved_progress else []))

    with tfds.testing.mock_data(num_examples=32):
        monkeypatch.setattr(loop, "training_checkpoint", older_checkpoint)
        train(tiny_recipe(checkpoint_every=2), out, max_steps=4, verbose=0)
        monkeypatch.undo()
        keys = {k for k, _ in tf.train.list_variables(tf.train.latest_checkpoint(str(out / "checkpoints")))}
        assert {k.split("/")[1] for k in keys if k.startswith("progress/")} == set(saved_progress)
        result = train(tiny_recipe(checkpoint_every=2), out, verbose=0)
    assert result["steps"] == 8  # 2 epochs of 4 steps
    assert result["trained_images"] == 4 * 8  # only the 4 steps after the checkpoint's, of 8 images each
    # the older processes' time is unknown: the run's time counts from the checkpoint
    assert result["train_seconds"] == pytest.approx(result["trained_images"] / result["images_per_second"])


def _tiny_student_and_optimizer(depth):
    recipe = tiny_recipe(model_overrides={**TINY_STUDENT, "depth": depth})
    student = build_model(recipe, num_classes=10, channels=1)
    optimizer = keras.optimizers.AdamW(1e-3)
    optimizer.build(student.trainable_variables)
    return student, optimizer


def test_checkpoint_keys_name_the_weights_and_a_different_model_is_refused(tmp_path):
    student, optimizer = _tiny_student_and_optimizer(depth=1)
    student.get_layer("head").bias.assign(np.arange(10, dtype="float32"))
    path = training_checkpoint(student, optimizer).save(str(tmp_path / "ckpt"))
    keys = {k for k, _ in tf.train.list_variables(path)}
    assert "student/head/bias/.ATTRIBUTES/VARIABLE_VALUE" in keys
    assert "optimizer/iteration/.ATTRIBUTES/VARIABLE_VALUE" in keys

    same, same_optimizer = _tiny_student_and_optimizer(depth=1)
    restore_checkpoint(training_checkpoint(same, same_optimizer), path)
    np.testing.assert_array_equal(same.get_layer("head").bias.numpy(), np.arange(10))

    deeper, deeper_optimizer = _tiny_student_and_optimizer(depth=2)
    with pytest.raises(ValueError, match=r"does not hold exactly this run's model and optimizer variables"):
        restore_checkpoint(training_checkpoint(deeper, deeper_optimizer), path)


def test_a_full_disk_at_a_checkpoint_names_the_step_and_the_resume_point(tmp_path):
    from keras_vits._io import DiskFullError
    from keras_vits.training.loop import _save_checkpoint

    class FullDiskManager:
        directory = str(tmp_path / "checkpoints")
        latest_checkpoint = str(tmp_path / "checkpoints" / "ckpt-200")

        def save(self, checkpoint_number):
            raise tf.errors.ResourceExhaustedError(None, None, "ckpt-400.data: No space left on device")

    with pytest.raises(DiskFullError, match=r"step-400 checkpoint .*resumes from .*ckpt-200"):
        _save_checkpoint(FullDiskManager(), 400)

    class BrokenManager(FullDiskManager):
        def save(self, checkpoint_number):
            raise tf.errors.InvalidArgumentError(None, None, "something else")

    with pytest.raises(tf.errors.InvalidArgumentError):  # other errors are not mislabelled as a full disk
        _save_checkpoint(BrokenManager(), 400)


# -------------------------------------------------------------------- evaluate


def test_evaluate_splits_a_folder_with_the_runs_seed(tmp_path, monkeypatch):
    """A folder without train/test folders is split 90/10 by the seed: evaluate once used seed 0 for every run."""
    from keras_vits.training import loop

    write_image_folder(tmp_path / "images", per_class=10)
    recipe = tiny_recipe(dataset=f"folder:{tmp_path / 'images'}", seed=3, epochs=1, mean=(0.5,) * 3, std=(0.5,) * 3)
    train(recipe, tmp_path / "run", verbose=0)
    seeds = []
    real_load_source = loop.load_source

    def spy(*args, **kwargs):
        seeds.append(kwargs.get("seed"))
        return real_load_source(*args, **kwargs)

    monkeypatch.setattr(loop, "load_source", spy)
    evaluate(tmp_path / "run" / "model.keras")
    assert seeds == [3]


def test_evaluate_uses_the_runs_normalisation_crop_and_classes(tmp_path):
    """A model trained on an RGB folder is evaluated with its own mean, std and crop, not Fashion-MNIST's."""
    write_image_folder(tmp_path / "data" / "train", per_class=8)
    write_image_folder(tmp_path / "data" / "test", per_class=4)
    recipe = tiny_recipe(
        dataset=f"folder:{tmp_path / 'data'}",
        image_size=14,
        mean=(0.6, 0.4, 0.5),
        std=(0.2, 0.3, 0.25),
        eval_crop_fraction=0.875,
        epochs=1,
        batch_size=4,
        crop_padding=0,
    )
    result = train(recipe, tmp_path / "run", verbose=0)
    logs = evaluate(tmp_path / "run" / "model.keras")  # dataset, split and normalisation from recipe.json
    assert logs["loss"] == pytest.approx(result["final"]["loss"], rel=1e-5)

    (tmp_path / "other" / "test").mkdir(parents=True)
    write_image_folder(tmp_path / "other" / "test", classes=("ant", "bee", "cow"), per_class=2)
    with pytest.raises(
        ValueError, match=r"has the classes \['ant', 'bee', 'cow'\].*trained on \['cat', 'dog', 'eel'\]"
    ):
        evaluate(tmp_path / "run" / "model.keras", dataset=f"folder:{tmp_path / 'other'}")

    alone = tmp_path / "alone"
    alone.mkdir()
    (alone / "model.keras").write_bytes((tmp_path / "run" / "model.keras").read_bytes())
    with pytest.raises(ValueError, match="No recipe.json beside .* normalisation is unknown"):
        evaluate(alone / "model.keras", dataset=f"folder:{tmp_path / 'data'}")


# ------------------------------------------------------------------ strategies


MIRRORED_TOLERANCE = {"float32": 1e-4, "mixed_bfloat16": 2e-2, "mixed_float16": 3e-3}


@pytest.mark.parametrize(
    "precision", ["float32", *(pytest.param(p, marks=SLOW) for p in ("mixed_bfloat16", "mixed_float16"))]
)
def test_mirrored_over_two_devices_matches_one_device(tmp_path, precision):
    result = _run_worker(tmp_path, "--devices", 2, "--compare-mirrored", "--set", f"precision={precision}")
    one, two = result["one_device"], result["mirrored"]
    tolerance = MIRRORED_TOLERANCE[precision]
    np.testing.assert_allclose(two["train_losses"], one["train_losses"], rtol=tolerance)
    assert two["final"]["loss"] == pytest.approx(one["final"]["loss"], rel=tolerance)
    assert two["checksum"] == pytest.approx(one["checksum"], rel=tolerance)


def _free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    for s in sockets:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in sockets]
    for s in sockets:
        s.close()
    return ports


@pytest.mark.slow
def test_multi_worker_mirrored_two_processes_agree(tmp_path):
    workers = [f"127.0.0.1:{port}" for port in _free_ports(2)]
    processes = []
    for index in range(2):
        env = dict(
            os.environ,
            TF_CONFIG=json.dumps({"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}),
        )
        args = [
            sys.executable,
            str(WORKER),
            tmp_path / f"worker{index}",
            "--strategy",
            "multi_worker",
            "--max-steps",
            5,
        ]
        processes.append(
            subprocess.Popen(list(map(str, args)), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        )
    results = []
    for process in processes:
        stdout, stderr = process.communicate(timeout=600)
        assert process.returncode == 0, stderr[-3000:]
        results.append(json.loads([ln for ln in stdout.splitlines() if ln.startswith("RESULT ")][-1][7:]))
    assert results[0]["steps"] == results[1]["steps"] == 5
    assert results[0]["checksum"] == pytest.approx(results[1]["checksum"], rel=1e-6)
    assert results[0]["final"] == pytest.approx(results[1]["final"], rel=1e-6)


def test_worker_0_writes_the_run_only_where_the_cluster_has_no_chief():
    from types import SimpleNamespace

    from keras_vits.training.loop import is_chief

    def strategy(task_type, task_id, cluster):
        resolver = tf.distribute.cluster_resolver.SimpleClusterResolver(
            tf.train.ClusterSpec(cluster), task_type=task_type, task_id=task_id
        )
        return SimpleNamespace(cluster_resolver=resolver)

    workers = {"worker": ["localhost:1", "localhost:2"]}
    with_chief = {"chief": ["localhost:3"], **workers}
    assert is_chief(strategy("worker", 0, workers)) and not is_chief(strategy("worker", 1, workers))
    assert is_chief(strategy("chief", 0, with_chief)) and not is_chief(strategy("worker", 0, with_chief))
    assert is_chief(SimpleNamespace())  # one process, no cluster


# ------------------------------------------------- first use: data, hints and names


def _rgb_run(tmp_path, **overrides):
    """A one-step run on a colour folder (`tmp_path/data`, cat/dog/eel): its run folder."""
    write_image_folder(tmp_path / "data" / "train", per_class=4)
    write_image_folder(tmp_path / "data" / "test", per_class=2)
    fields = dict(dataset=f"folder:{tmp_path / 'data'}", mean=(0.5,) * 3, std=(0.25,) * 3, epochs=1, batch_size=4)
    train(tiny_recipe(**{**fields, **overrides}), tmp_path / "run", max_steps=1, verbose=0)
    return tmp_path / "run"


def test_a_colour_folder_with_a_one_channel_recipe_is_refused_with_the_fix(tmp_path):
    """Colour images were once decoded to the recipe's one channel (Fashion-MNIST's mean) without a word."""
    write_image_folder(tmp_path / "data", per_class=4)
    recipe = tiny_recipe(dataset=f"folder:{tmp_path / 'data'}")  # mean (0.286,), std (0.353,)
    fix = "--set mean=[0.286,0.286,0.286] std=[0.353,0.353,0.353]"
    with pytest.raises(
        ValueError, match=r"have 3 channels but the recipe normalises 1 .*colour data.*" + re.escape(fix)
    ):
        train(recipe, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists()


def test_a_missing_teacher_names_its_own_recipe_and_distillation_none(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    recipe = tiny_recipe(distillation="hard", teacher="runs/demo_teacher/model.keras")
    with pytest.raises(FileNotFoundError) as raised:
        train(recipe, tmp_path / "run", verbose=0)
    message = str(raised.value)
    assert "keras-vits train --recipe demo_teacher --dataset mnist --output runs/demo_teacher" in message
    assert "--distillation none" in message and "fmnist_teacher" not in message
    with pytest.raises(FileNotFoundError, match="train a teacher on the same data first.*--distillation none"):
        train(recipe.replace(teacher="elsewhere/teacher.keras"), tmp_path / "run", verbose=0)
    assert not (tmp_path / "run").exists(), "refused before any data is read"


def test_an_output_that_is_a_file_is_refused_before_the_data_loads(tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    with pytest.raises(ValueError, match="The output .*taken is a file, not a run folder"):
        train(tiny_recipe(dataset="no_such_data_set"), tmp_path / "taken", verbose=0)  # the data would fail later


def test_a_student_with_model_overrides_is_named_after_its_recipe():
    """A 1-deep, 16-wide student was saved as `deit_tiny_distilled_patch16_224`."""
    assert build_model(tiny_recipe(), num_classes=10, channels=1).name == "tiny_mock"
    plain = tiny_recipe(model="deit_tiny_patch16_224", model_overrides={}, image_size=32)
    assert build_model(plain, num_classes=10, channels=1).name == "deit_tiny_patch16_224"


def test_a_run_stores_its_folder_absolute_and_evaluate_says_where_a_moved_one_came_from(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    run = _rgb_run(tmp_path, dataset="folder:data")  # relative, as a user types it
    assert json.loads((run / "recipe.json").read_text())["dataset"] == f"folder:{tmp_path / 'data'}"
    assert keras.models.load_model(run / "model.keras").name == "tiny_mock"
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert "loss" in evaluate(run / "model.keras")  # from another folder
    (tmp_path / "data").rename(tmp_path / "moved")
    with pytest.raises(FileNotFoundError, match=r"does not exist.*comes from the run's recipe.json .*--dataset"):
        evaluate(run / "model.keras")
    assert "loss" in evaluate(run / "model.keras", dataset=f"folder:{tmp_path / 'moved'}")


def test_evaluate_refuses_data_of_other_channels_or_classes_than_the_model(tmp_path):
    run = _rgb_run(tmp_path)
    gray = tmp_path / "gray" / "test"
    for name in ("cat", "dog", "eel"):
        (gray / name).mkdir(parents=True)
        (gray / name / "0.png").write_bytes(tf.io.encode_png(tf.zeros((8, 8, 1), tf.uint8)).numpy())
    with pytest.raises(ValueError, match=r"takes 3-channel images; folder:.*gray test has 1"):
        evaluate(run / "model.keras", dataset=f"folder:{tmp_path / 'gray'}")
    (run / "labels.txt").unlink()  # no class names to compare: the class count still must match
    write_image_folder(tmp_path / "four" / "test", classes=("a", "b", "c", "d"), per_class=1)
    with pytest.raises(ValueError, match=r"has 4 classes \(labels 0-3\), but .* predicts 3"):
        evaluate(run / "model.keras", dataset=f"folder:{tmp_path / 'four'}")


def test_a_teacher_of_other_channels_than_the_data_is_refused(tmp_path):
    teacher = keras.Sequential([keras.Input((28, 28, 3)), keras.layers.Flatten(), keras.layers.Dense(10)])
    teacher.save(tmp_path / "rgb_teacher.keras")
    recipe = tiny_recipe(distillation="hard", teacher=str(tmp_path / "rgb_teacher.keras"))
    with (
        tfds.testing.mock_data(num_examples=16),
        pytest.raises(ValueError, match=r"takes 3-channel images but mnist has 1.*--distillation none"),
    ):
        train(recipe, tmp_path / "run", verbose=0)
    assert not (tmp_path / "run" / "checkpoints").exists()


def test_resuming_a_run_on_data_with_other_classes_is_refused(tmp_path):
    run = _rgb_run(tmp_path)
    write_image_folder(tmp_path / "data" / "train", classes=("fox",), per_class=4)
    write_image_folder(tmp_path / "data" / "test", classes=("fox",), per_class=2)
    recipe = json.loads((run / "recipe.json").read_text())
    recipe = Recipe(**{k: tuple(v) if isinstance(v, list) else v for k, v in recipe.items()})
    with pytest.raises(
        ValueError, match=r"trained on the classes \['cat', 'dog', 'eel'\].*now has \['cat', 'dog', 'eel', 'fox'\]"
    ):
        train(recipe, run, verbose=0)


def test_the_run_summary_names_the_overrides_a_registry_model_was_built_with():
    from keras_vits.training import get_recipe

    result = dict(
        parameters=456_212, epochs=4, steps=1872, global_batch_size=128, replicas=1, train_seconds=192.0,
        images_per_second=1246.0, final={"top1_avg": 0.8624},
    )  # fmt: skip
    demo = summary_table(get_recipe("demo_deit_hard"), result)
    assert "deit_tiny_distilled_patch16_224 with depth=4, embed_dim=96, num_heads=3, patch_size=7" in demo, demo
    plain = get_recipe("finetune_folder")
    assert f"model                    {plain.model} (456,212 parameters)" in summary_table(plain, result)


def test_a_teacher_run_of_another_normalisation_sees_the_students_images_renormalised(tmp_path, monkeypatch):
    """A teacher's run folder names its mean and std; the student's images used to reach it unconverted."""
    teacher_run = tmp_path / "teacher_run"
    teacher_run.mkdir()
    teacher = keras.Sequential([keras.Input((28, 28, 1)), keras.layers.Flatten(), keras.layers.Dense(10)])
    teacher.save(teacher_run / "model.keras")
    recipe = tiny_recipe(distillation="hard", teacher=str(teacher_run / "model.keras"))

    class Built(Exception):
        pass

    def distillation_model(student, teacher, teacher_preprocessing=None, **kwargs):
        raise Built(teacher_preprocessing)

    monkeypatch.setattr("keras_vits.training.loop.DistillationModel", distillation_model)
    images = np.linspace(-0.8, 2.0, 8, dtype="float32").reshape(1, 2, 4, 1)
    for teacher_mean, teacher_std in ((0.5, 0.5), (recipe.mean[0], recipe.std[0])):
        (teacher_run / "recipe.json").write_text(json.dumps({"mean": [teacher_mean], "std": [teacher_std]}))
        with tfds.testing.mock_data(num_examples=16), pytest.raises(Built) as built:
            train(recipe, tmp_path / f"run_{teacher_mean}", verbose=0)
        convert = built.value.args[0]
        if teacher_mean == recipe.mean[0]:
            assert convert is None
            continue
        pixels = images * recipe.std[0] + recipe.mean[0]
        np.testing.assert_allclose(keras.ops.convert_to_numpy(convert(images)), (pixels - 0.5) / 0.5, atol=1e-5)
        result = dict(
            parameters=1, epochs=1, steps=1, global_batch_size=8, replicas=1, train_seconds=1.0,
            images_per_second=8.0, final={},
        )  # fmt: skip
        assert "renormalised to its recipe's mean=[0.5], std=[0.5]" in summary_table(recipe, result)
