# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite);
# `make test-fast` is the contributor's loop.
# They set up .venv first: Python packages from setup.cfg, and (as root) Debian's Fashion-MNIST.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

BACKENDS_VENV ?= .venv-backends
BPY := $(BACKENDS_VENV)/bin/python

.PHONY: setup setup-backends demo test test-fast lint doctest test-keras3 test-tf-keras test-backends gpu-wheels

setup: $(VENV)/.installed

$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[all,test]'
	@if [ "$$(id -u)" = 0 ] && [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		apt-get update -qq && apt-get install -y -qq dataset-fashion-mnist; \
	elif [ ! -d /usr/share/datasets/fashion-mnist ]; then \
		echo "Not root: install Fashion-MNIST with 'sudo apt-get install dataset-fashion-mnist'."; \
	fi
	touch $@

# A timm checkpoint into Keras, then on Fashion-MNIST: a convnet teacher, a small DeiT distilled
# from it (hard distillation), its SavedModel and int8 TFLite exports, and last the table of
# top-1 scores, teacher and student side by side.
demo: setup
	$(VENV)/bin/keras-vits demo
	$(VENV)/bin/keras-vits train --recipe demo_teacher --output runs/demo_teacher
	$(VENV)/bin/keras-vits train --recipe demo_deit_hard --output runs/demo_deit_hard --teacher runs/demo_teacher/model.keras
	$(VENV)/bin/keras-vits export runs/demo_deit_hard/model.keras --format saved_model --output saved_models
	$(VENV)/bin/keras-vits export runs/demo_deit_hard/model.keras --format tflite --mode dynamic_int8 --output saved_models
	$(VENV)/bin/keras-vits evaluate runs/demo_teacher/model.keras runs/demo_deit_hard/model.keras

# Lint and format check, the public docstrings' examples, the whole suite under Keras 3 (the
# packaging test included), the model tests again under tf-keras, then the backend tests on JAX and PyTorch.
test: setup
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory doctest
	$(MAKE) --no-print-directory test-keras3
	$(MAKE) --no-print-directory test-tf-keras
	$(MAKE) --no-print-directory test-backends

# The contributor's loop: lint, the docstrings' examples, then the Keras 3 suite without the
# packaging test, the slow marks and the tf-keras run, with each model family's battery on its
# first config only (tests/harness.py).
test-fast: setup
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory doctest
	$(PY) -m pytest -n 2 -q -p no:cacheprovider --durations=10 -m "not slow and not packaging" \
		--one-config-per-family tests

lint:
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

doctest:
	$(PY) -m pytest -q -p no:cacheprovider --doctest-modules keras_vits

test-keras3:
	$(PY) -m pytest -n 2 --durations=15 tests

test-tf-keras:
	TF_USE_LEGACY_KERAS=1 $(PY) -m pytest -n 2 -m "not keras3_only and not slow" \
		tests/test_layers.py tests/test_vit.py tests/test_swin.py tests/test_pvt.py tests/test_weights.py \
		tests/test_qat.py tests/test_vit_features.py tests/test_bad_inputs.py

# JAX and PyTorch (CPU) with Keras, and timm for the GPU check's smoke mode; no TensorFlow, so an
# accidental TensorFlow import fails. torch and torchvision are the builds these machines hold on disk.
setup-backends: $(BACKENDS_VENV)/.installed

$(BACKENDS_VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(BACKENDS_VENV)
	$(BPY) -m pip install --quiet --upgrade pip
	$(BPY) -m pip install --quiet -e '.[jax]' torch==2.14.1 torchvision==0.29.1 timm pytest pytest-xdist
	@if $(BPY) -c "import tensorflow" 2>/dev/null; then echo "$(BACKENDS_VENV) must not hold TensorFlow"; exit 1; fi
	touch $@

# On JAX and on PyTorch: the public API (tests/test_backends.py), DeiT's distillation, and the model
# battery on each family's first config (every config would multiply the XLA compiles on JAX);
# and the GPU check's smoke mode on JAX.
BACKEND_TESTS := tests/test_backends.py tests/test_distillation.py tests/test_vit.py tests/test_swin.py tests/test_pvt.py
test-backends: setup-backends
	KERAS_BACKEND=jax $(BPY) -m pytest -n 2 -q -p no:cacheprovider --durations=5 --one-config-per-family \
		$(BACKEND_TESTS) tests/test_gpu_check.py
	KERAS_BACKEND=torch $(BPY) -m pytest -n 2 -q -p no:cacheprovider --durations=5 --one-config-per-family \
		$(BACKEND_TESTS)

# The wheels tools/gpu_check.py carries to a GPU machine without Keras (Python 3.12): Keras, the
# two needs that machine lacks, and keras_vits; into .whl/ (ignored), about 3 MB.
gpu-wheels: setup
	rm -rf .whl && mkdir -p .whl
	$(PY) -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
		--platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 --platform manylinux_2_17_x86_64 \
		--platform manylinux2014_x86_64 -d .whl keras==3.15.1 namex==0.1.0 optree==0.20.0
	$(PY) -m pip wheel --quiet --no-deps -w .whl .
