"""keras_vits turns TensorFlow's oneDNN kernels on for x86 CPUs, before TensorFlow loads, unless told not to."""

import os
import subprocess
import sys

import pytest

from keras_vits._onednn import MISSED_ONEDNN_HINT, enable_onednn_before_tensorflow


def test_it_sets_the_switch_only_on_x86_before_tensorflow_loads_and_keeps_a_users_value():
    environ = {}
    assert enable_onednn_before_tensorflow(environ, machine="x86_64", tensorflow_loaded=False)
    assert environ == {"TF_ENABLE_ONEDNN_OPTS": "1"}
    users = {"TF_ENABLE_ONEDNN_OPTS": "0"}
    assert not enable_onednn_before_tensorflow(users, machine="x86_64", tensorflow_loaded=False)
    assert users == {"TF_ENABLE_ONEDNN_OPTS": "0"}
    for machine, loaded in (("aarch64", False), ("x86_64", True)):
        environ = {}
        assert not enable_onednn_before_tensorflow(environ, machine=machine, tensorflow_loaded=loaded)
        assert environ == {}


def _onednn_in_a_fresh_python(**env_changes):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    env.update(env_changes)
    code = "import keras_vits; from keras_vits.backend import onednn_enabled; print(onednn_enabled())"
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout.strip().splitlines()[-1]


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the switch is for x86 CPUs")
def test_importing_keras_vits_first_turns_onednn_on_and_zero_keeps_it_off():
    assert _onednn_in_a_fresh_python() == "True"
    assert _onednn_in_a_fresh_python(TF_ENABLE_ONEDNN_OPTS="0") == "False"


def test_the_hint_is_due_only_where_tensorflow_loaded_first_without_onednn():
    from keras_vits._onednn import missed_onednn_hint

    due = dict(environ={}, machine="x86_64", tensorflow_loaded=True, backend="tensorflow", onednn_on=False)
    assert missed_onednn_hint(**due) == MISSED_ONEDNN_HINT
    assert "TF_ENABLE_ONEDNN_OPTS=1" in MISSED_ONEDNN_HINT and "\n" not in MISSED_ONEDNN_HINT
    for change in (
        dict(onednn_on=True),  # TensorFlow turned it on by itself (AVX-512)
        dict(environ={"TF_ENABLE_ONEDNN_OPTS": "0"}),  # the user chose
        dict(tensorflow_loaded=False),  # keras_vits came first and set the switch
        dict(machine="aarch64"),
        dict(backend="jax"),
    ):
        assert missed_onednn_hint(**{**due, **change}) is None, change


_IMPORT_ORDERS = {
    "keras_vits first": "import keras_vits\nimport tensorflow\n",
    "tensorflow first": "import tensorflow\nimport keras_vits\n",
    "keras first": "import keras\nimport keras_vits\n",
    # An AVX2 CPU, where TensorFlow leaves oneDNN off: its switch read as off.
    "tensorflow first, no AVX-512": (
        "import tensorflow\nfrom tensorflow.python.util import _pywrap_util_port\n"
        "_pywrap_util_port.IsMklEnabled = lambda: False\nimport keras_vits\n"
    ),
}


@pytest.mark.skipif(os.uname().machine != "x86_64", reason="the switch is for x86 CPUs")
@pytest.mark.parametrize("order", sorted(_IMPORT_ORDERS))
def test_whatever_the_import_order_onednn_is_on_or_one_line_says_how(order):
    env = {k: v for k, v in os.environ.items() if k != "TF_ENABLE_ONEDNN_OPTS"}
    code = (
        _IMPORT_ORDERS[order]
        + "from keras_vits._onednn import tensorflow_runs_onednn\nprint(tensorflow_runs_onednn())\n"
    )
    result = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    hint_lines = [line for line in result.stderr.splitlines() if "TF_ENABLE_ONEDNN_OPTS=1" in line]
    onednn_on = result.stdout.strip().splitlines()[-1] == "True"
    assert onednn_on != bool(hint_lines) and len(hint_lines) <= 1, (order, result.stdout, hint_lines)
    if order == "keras_vits first":
        assert onednn_on
    if order.endswith("no AVX-512"):
        assert hint_lines == [MISSED_ONEDNN_HINT]
