# The two commands of the README: `make demo` (the main job) and `make test` (the whole suite).
# Both set up .venv first: Python packages from setup.cfg, and (as root) Debian's Fashion-MNIST.

VENV ?= .venv
PYTHON ?= python3
PY := $(VENV)/bin/python
export TF_CPP_MIN_LOG_LEVEL ?= 2

.PHONY: setup demo test lint doctest test-keras3 test-tf-keras

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
# from it (hard distillation), its three top-1 rows, and its SavedModel and int8 TFLite exports.
demo: setup
	$(VENV)/bin/keras-vits demo
	$(VENV)/bin/keras-vits train --recipe demo_teacher --output runs/demo_teacher
	$(VENV)/bin/keras-vits train --recipe demo_deit_hard --output runs/demo_deit_hard --teacher runs/demo_teacher/model.keras
	$(VENV)/bin/keras-vits evaluate runs/demo_teacher/model.keras runs/demo_deit_hard/model.keras
	$(VENV)/bin/keras-vits export runs/demo_deit_hard/model.keras --format saved_model --output saved_models
	$(VENV)/bin/keras-vits export runs/demo_deit_hard/model.keras --format tflite --mode dynamic_int8 --output saved_models

# Lint and format check, the public docstrings' examples, the whole suite under Keras 3 (the
# packaging test included), then the model tests again under tf-keras.
test: setup
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory doctest
	$(MAKE) --no-print-directory test-keras3
	$(MAKE) --no-print-directory test-tf-keras

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
