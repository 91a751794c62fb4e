"""Shared pytest set-up: quiet TensorFlow, and `config_name` parametrisation for model batteries."""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pathlib  # noqa: E402

import pytest  # noqa: E402

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def pytest_generate_tests(metafunc):
    """Runs every test of a `ModelBattery` subclass once per entry of its `configs`."""
    if "config_name" in metafunc.fixturenames and metafunc.cls is not None:
        metafunc.parametrize("config_name", sorted(metafunc.cls.configs))


@pytest.fixture
def fixtures_dir():
    return FIXTURES
