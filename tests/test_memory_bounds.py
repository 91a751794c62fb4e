"""Bounded memory: models above the size limits are refused before they are built."""

import inspect
import json
import zipfile

import numpy as np
import pytest
from harness import TINY_FAMILIES, tiny_model

import keras_vits
from keras_vits.backend import load_keras_file
from keras_vits.models.base import MAX_ACTIVATIONS_PER_IMAGE, MAX_PARAMETERS, allow_large_models
from keras_vits.registry import VARIANTS


def _arguments(model_cls, config):
    parameters = inspect.signature(model_cls.__init__).parameters
    arguments = {k: p.default for k, p in parameters.items() if k not in ("self", "kwargs")}
    return {**arguments, **config}


@pytest.mark.parametrize("family", sorted(TINY_FAMILIES))
def test_the_size_estimate_is_the_parameter_count(family):
    model_cls, config = TINY_FAMILIES[family]
    parameters, activations = model_cls.estimate_size(_arguments(model_cls, config))
    assert parameters == tiny_model(family).count_params()
    assert 0 < activations < MAX_ACTIVATIONS_PER_IMAGE


def test_every_registry_variant_is_within_the_limits():
    for name, variant in VARIANTS.items():
        parameters, activations = variant.model_cls.estimate_size(
            _arguments(variant.model_cls, dict(variant.config, num_classes=1000))
        )
        assert parameters < MAX_PARAMETERS and activations < MAX_ACTIVATIONS_PER_IMAGE, name


@pytest.mark.parametrize("name", ["vit_base_patch16_224", "vit_large_patch16_224"])
def test_vitdet_backbones_at_1024_are_within_the_limits(name):
    # ViTDet trains ViT-B and ViT-L at 1024x1024: the usual dense-prediction setup must not need allow_large.
    variant = VARIANTS[name]
    arguments = _arguments(variant.model_cls, dict(variant.config, image_size=1024, num_classes=0))
    parameters, activations = variant.model_cls.estimate_size(arguments)
    assert parameters < MAX_PARAMETERS and 1e9 < activations < MAX_ACTIVATIONS_PER_IMAGE


@pytest.mark.parametrize("family", ["vit", "deit", "swin", "pvt_v1", "pvt_v2"])
def test_a_huge_image_size_is_refused_before_anything_is_built(family):
    # image_size=100000 was OOM-killed at 22 GB: it must fail at once, naming the limit and the way past it.
    with pytest.raises(ValueError, match=r"image_size=100000 would hold about .*allow_large=True"):
        tiny_model(family, image_size=100000)


def test_allow_large_lifts_the_limit_and_is_not_saved(tmp_path, monkeypatch):
    monkeypatch.setattr("keras_vits.models.base.MAX_PARAMETERS", 1000)
    with pytest.raises(ValueError, match="parameters"):
        tiny_model("vit")
    model = tiny_model("vit", allow_large=True)
    assert "allow_large" not in model.get_config()
    with pytest.raises(ValueError, match="allow_large"):
        keras_vits.VisionTransformer.from_config({**model.get_config(), "allow_large": True})
    with allow_large_models():
        keras_vits.VisionTransformer.from_config(model.get_config())
    with pytest.raises(ValueError, match="allow_large"):
        keras_vits.create_model("vit_tiny_patch16_224")
    assert keras_vits.create_model("vit_tiny_patch16_224", num_classes=0, allow_large=True).count_params() > 1000


def test_a_hostile_keras_config_is_refused_in_safe_mode(tmp_path):
    path = tmp_path / "model.keras"
    tiny_model("swin").save(path)
    hostile = tmp_path / "hostile.keras"
    with zipfile.ZipFile(path) as source, zipfile.ZipFile(hostile, "w") as target:
        for item in source.infolist():
            content = source.read(item)
            if item.filename == "config.json":
                config = json.loads(content)
                config["config"]["image_size"] = 100000
                config["config"]["allow_large"] = True
                content = json.dumps(config).encode()
            target.writestr(item, content)
    with pytest.raises(ValueError, match="would hold about"):
        load_keras_file(hostile)


def test_predict_at_another_size_after_a_good_call_names_the_sizes():
    model = tiny_model("vit")
    model.predict(np.zeros((2, 32, 32, 1), "float32"), verbose=0)
    with pytest.raises(ValueError, match=r"expects images of shape \(None, 32, 32, 1\), got \(2, 16, 16, 1\)"):
        model.predict(np.zeros((2, 16, 16, 1), "float32"), verbose=0)
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(np.zeros((2, 16, 16, 1), "float32")).batch(2)
    with pytest.raises(ValueError, match="wrong height and width"):
        model.predict(dataset, verbose=0)
    with pytest.raises(ValueError, match="wrong channels"):
        model.evaluate(np.zeros((2, 32, 32, 3), "float32"), np.zeros((2,)), verbose=0)
