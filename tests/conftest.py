"""Shared pytest set-up: quiet TensorFlow, an environment no test can leak, `config_name` parametrisation."""

import os
import pathlib

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before any test module imports TensorFlow
# Before TensorFlow too, as users' code should: keras_vits turns oneDNN on as TensorFlow loads
# (keras_vits/_onednn.py), so tests run the kernels users get, whatever the test modules import first.
import keras_vits  # noqa: E402, F401

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def pytest_addoption(parser):
    parser.addoption(
        "--one-config-per-family",
        action="store_true",
        help="Run each model battery on its first config only (make test-fast); by default every config runs.",
    )


def pytest_collection_modifyitems(config, items):
    """With --one-config-per-family, deselects every battery test of any config but the battery's first."""
    if not config.getoption("--one-config-per-family"):
        return
    from harness import is_extra_battery_config

    extra = [item for item in items if is_extra_battery_config(item)]
    if extra:
        config.hook.pytest_deselected(items=extra)
        items[:] = [item for item in items if not is_extra_battery_config(item)]


def pytest_generate_tests(metafunc):
    """Runs every test of a `ModelBattery` subclass once per entry of its `configs`."""
    if "config_name" in metafunc.fixturenames and metafunc.cls is not None:
        metafunc.parametrize("config_name", sorted(metafunc.cls.configs))


@pytest.fixture
def fixtures_dir():
    return FIXTURES


@pytest.fixture(autouse=True)
def environment_restored_after_each_test():
    """Puts `os.environ` back after every test.

    A library that writes to it on import (keras_cv_attention_models sets
    TF_USE_LEGACY_KERAS=1) would otherwise switch every later subprocess of the same
    pytest worker, such as tests/training_worker.py, to tf-keras: that is how a
    killed-run test once found a tf-keras checkpoint where it expected a Keras 3 one.
    """
    saved = dict(os.environ)
    yield
    if os.environ != saved:
        os.environ.clear()
        os.environ.update(saved)
