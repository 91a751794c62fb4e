"""keras_vits turns TensorFlow's oneDNN kernels on for x86 CPUs, before TensorFlow loads, unless told not to."""

import os
import subprocess
import sys

import pytest

from keras_vits._onednn import enable_onednn_before_tensorflow


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
