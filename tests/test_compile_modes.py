"""Graph or XLA for the training step: the measured table, the overrides, and XLA's losses against graph mode's."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from training_worker import tiny_recipe

from keras_vits.cli import main as cli_main
from keras_vits.compile_modes import XLA_TRAINING, choose_jit_compile, device_type, model_family
from keras_vits.distillation import DistillationModel
from keras_vits.training.loop import build_model, train
from keras_vits.training.teachers import convnet_small

pytestmark = pytest.mark.keras3_only


def test_every_family_has_a_row_per_device_and_the_overrides_win():
    families = {family for _, family in XLA_TRAINING}
    assert families == {"vit", "swin", "pvt_v1", "pvt_v2", "other"}
    assert {(device, family) for device in ("CPU", "GPU") for family in families} == set(XLA_TRAINING)
    student = build_model(tiny_recipe(), 10, 1)
    assert model_family(student) == "vit" and model_family(convnet_small(28, 1, 10)) == "other"
    assert device_type() == "CPU"
    assert choose_jit_compile(student) is XLA_TRAINING["CPU", "vit"]
    assert choose_jit_compile(student, "xla") is True and choose_jit_compile(student, "graph") is False
    with pytest.raises(ValueError, match=r"compile_mode must be one of \('auto', 'graph', 'xla'\), got 'fast'"):
        choose_jit_compile(student, "fast")


def test_distillation_compile_auto_asks_the_table_not_keras():
    student = build_model(tiny_recipe(), 10, 1)
    model = DistillationModel(student)
    model.compile(optimizer="adam")
    assert model.jit_compile is XLA_TRAINING["CPU", "vit"]  # Keras's own "auto" would have chosen XLA
    model.compile(optimizer="adam", jit_compile=True)
    assert model.jit_compile is True
    with pytest.raises(TypeError, match="jit_compile takes True, False or 'auto'"):
        model.compile(optimizer="adam", jit_compile="yes")


def test_a_recipe_refuses_an_unknown_compile_mode():
    with pytest.raises(ValueError, match="compile_mode must be one of"):
        tiny_recipe(compile_mode="jit")


def _step_losses(tmp_path, **changes):
    # 80 images in batches of 2: 40 steps, a log point every 2, so calls of 2 steps happen.
    with tfds.testing.mock_data(num_examples=80):
        train(tiny_recipe(epochs=1, batch_size=2, checkpoint_every=1000, **changes), tmp_path, verbose=0)
    return [entry["loss"] for entry in json.loads((tmp_path / "steps.json").read_text())]


def test_xla_and_several_steps_per_call_train_as_graph_mode_does(tmp_path):
    graph = _step_losses(tmp_path / "graph", compile_mode="graph", steps_per_execution=1)
    graph_several_per_call = _step_losses(tmp_path / "graph4", compile_mode="graph", steps_per_execution=4)
    xla = _step_losses(tmp_path / "xla", compile_mode="xla", steps_per_execution=4)
    assert len(graph) == len(xla) == len(graph_several_per_call) == 20
    np.testing.assert_allclose(graph_several_per_call, graph, rtol=1e-6)
    np.testing.assert_allclose(xla, graph, rtol=2e-4)


def test_the_cli_flag_sets_the_compile_mode_and_a_resume_may_change_it(tmp_path):
    out = tmp_path / "run"
    base = ["train", "--recipe", "fmnist_deit_none", "--output", str(out), "--set", "batch_size=8", "--max-steps"]
    overrides = ["--set", 'model_overrides={"patch_size": 7, "embed_dim": 16, "depth": 1, "num_heads": 2}']
    with tfds.testing.mock_data(num_examples=32):
        assert cli_main([*base, "2", *overrides, "--compile-mode", "graph"]) == 0
        assert json.loads((out / "recipe.json").read_text())["compile_mode"] == "graph"
        assert cli_main([*base, "3", *overrides, "--compile-mode", "auto"]) == 0  # how it runs, not what it learns
    assert json.loads((out / "result.json").read_text())["steps"] == 3
    assert tf.train.latest_checkpoint(str(out / "checkpoints")).endswith("ckpt-3")
