"""Graph or XLA for the training step: the measured table, the overrides, and XLA's losses against graph mode's."""

import json

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds
from training_worker import tiny_recipe

from keras_vits import compile_modes, create_model
from keras_vits.backend import onednn_enabled
from keras_vits.cli import main as cli_main
from keras_vits.compile_modes import XLA_TRAINING, choose_jit_compile, device_type, model_family
from keras_vits.distillation import DistillationModel
from keras_vits.training.loop import build_model, dtype_policy, train
from keras_vits.training.teachers import convnet_small

pytestmark = pytest.mark.keras3_only


def test_every_family_has_a_row_per_device_and_the_overrides_win():
    families = {family for _, family in XLA_TRAINING}
    assert families == {"vit", "swin", "pvt_v1", "pvt_v2", "other"}
    assert {(device, family) for device in ("CPU", "GPU") for family in families} == set(XLA_TRAINING)
    student = build_model(tiny_recipe(), 10, 1)
    assert model_family(student) == "vit" and model_family(convnet_small(28, 1, 10)) == "other"
    assert device_type() == "CPU"
    assert onednn_enabled()  # conftest imports keras_vits before TensorFlow, as a user's script should
    assert choose_jit_compile(student) is True  # a float32 ViT of under VIT_XLA_MAX_MACS per image
    assert choose_jit_compile(student, "xla") is True and choose_jit_compile(student, "graph") is False
    with pytest.raises(ValueError, match=r"compile_mode must be one of \('auto', 'graph', 'xla'\), got 'fast'"):
        choose_jit_compile(student, "fast")


def test_on_cpus_the_choice_follows_size_precision_and_onednn(monkeypatch):
    small_vit = build_model(tiny_recipe(), 10, 1)
    with dtype_policy("mixed_bfloat16"):
        small_vit_bfloat16 = build_model(tiny_recipe(), 10, 1)
    large_vit = create_model("deit_small_patch16_224")  # 4.6 G MACs per image
    swin = create_model("swin_tiny_patch4_window7_224", embed_dim=24, depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 1))
    pvt = create_model("pvt_v2_b0", num_classes=10)
    assert [choose_jit_compile(m) for m in (small_vit, small_vit_bfloat16, large_vit, swin, pvt)] == [
        True,
        False,
        False,
        True,
        False,
    ]
    monkeypatch.setattr(compile_modes, "onednn_enabled", lambda: False)  # Eigen kernels: XLA won nowhere
    assert not any(choose_jit_compile(m) for m in (small_vit, swin))
    assert choose_jit_compile(swin, "xla") is True


class _TwoCpuReplicas:
    """Stands for MirroredStrategy over two logical CPUs, which this process cannot create
    (its devices are fixed once TensorFlow starts); tests/test_training.py runs the real one."""

    num_replicas_in_sync = 2

    class extended:  # noqa: N801 - the attribute name tf.distribute uses
        worker_devices = tuple(f"/job:localhost/replica:0/task:0/device:CPU:{i}" for i in range(2))


def test_a_step_replicated_over_cpus_is_graph_and_refuses_xla():
    student = build_model(tiny_recipe(), 10, 1)
    assert choose_jit_compile(student) is True  # one device: the small ViT's XLA row
    assert choose_jit_compile(student, strategy=_TwoCpuReplicas()) is False
    assert choose_jit_compile(student, "graph", strategy=_TwoCpuReplicas()) is False
    with pytest.raises(ValueError, match=r"compile_mode='xla' cannot run a step replicated over 2 CPU devices"):
        choose_jit_compile(student, "xla", strategy=_TwoCpuReplicas())


def test_distillation_compile_auto_asks_the_table_not_keras(monkeypatch):
    student = build_model(tiny_recipe(), 10, 1)
    model = DistillationModel(student)
    monkeypatch.setattr(compile_modes, "VIT_XLA_MAX_MACS", 0)  # every ViT takes the graph row
    model.compile(optimizer="adam")
    assert model.jit_compile is False  # Keras's own "auto" would have chosen XLA
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


@pytest.mark.slow
def test_xla_and_several_steps_per_call_train_as_graph_mode_does(tmp_path):
    graph = _step_losses(tmp_path / "graph", compile_mode="graph", steps_per_execution=1)
    graph_several_per_call = _step_losses(tmp_path / "graph4", compile_mode="graph", steps_per_execution=4)
    xla = _step_losses(tmp_path / "xla", compile_mode="xla", steps_per_execution=4)
    assert len(graph) == len(xla) == len(graph_several_per_call) == 20
    np.testing.assert_allclose(graph_several_per_call, graph, rtol=1e-6)
    np.testing.assert_allclose(xla, graph, rtol=2e-4)


@pytest.mark.slow
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
