"""`keras_vits.variants`: the registry as data, and the size table `keras-vits info` reads without Keras."""

import inspect

import pytest

import keras_vits
from keras_vits import layers, registry, variants

#: The smallest variant of each family: built and counted against the table.
SMALLEST = (
    "vit_tiny_patch16_224",
    "deit_tiny_distilled_patch16_224",
    "swin_tiny_patch4_window7_224",
    "pvt_v2_b0",
    "pvt_tiny",
)


def _arguments(model_cls, config):
    """The constructor's defaults with `config` over them, as `estimate_size` takes them."""
    parameters = inspect.signature(model_cls.__init__).parameters
    return {**{k: p.default for k, p in parameters.items() if k not in ("self", "kwargs")}, **config}


def test_the_size_table_names_exactly_the_registry_variants():
    assert list(variants.default_sizes()) == list(registry.VARIANTS) == list(variants.VARIANTS)


def test_the_registry_resolves_each_class_name_and_keeps_the_data():
    for name, data in variants.VARIANTS.items():
        variant = registry.VARIANTS[name]
        assert variant.model_cls is getattr(keras_vits, data.family), name
        assert (variant.config, variant.pretrained) == (data.config, data.pretrained), name


def test_list_models_is_one_function_for_the_library_and_the_command_line():
    assert keras_vits.list_models is registry.list_models is variants.list_models
    assert variants.list_models("pvt_v2_b2*") == ["pvt_v2_b2", "pvt_v2_b2_li"]


def test_every_variant_is_normalised_as_timm_names_it():
    means_and_stds = {(data.pretrained["mean"], data.pretrained["std"]) for data in variants.VARIANTS.values()}
    assert means_and_stds == {
        (layers.IMAGENET_DEFAULT_MEAN, layers.IMAGENET_DEFAULT_STD),
        (layers.IMAGENET_INCEPTION_MEAN, layers.IMAGENET_INCEPTION_STD),
    }


@pytest.mark.parametrize("name", list(variants.VARIANTS))
def test_every_tables_parameters_are_the_size_estimate(name):
    variant = registry.VARIANTS[name]
    config = dict(variant.config, num_classes=variants.DEFAULT_NUM_CLASSES)
    parameters, _ = variant.model_cls.estimate_size(_arguments(variant.model_cls, config))
    assert variants.default_sizes()[name]["parameters"] == parameters


@pytest.mark.parametrize("name", SMALLEST)
def test_the_smallest_variant_of_each_family_built_has_the_tables_sizes(name):
    model = keras_vits.create_model(name)
    assert variants.default_sizes()[name] == {"parameters": model.count_params(), "macs": keras_vits.count_macs(model)}
    assert variants.default_input_shape(name) == tuple(model.inputs[0].shape)


def test_an_unknown_name_says_what_is_close():
    with pytest.raises(ValueError, match=r"Unknown model name 'pvt_v2_b9'\. Did you mean pvt_v2_b"):
        variants.get_variant_data("pvt_v2_b9")
    with pytest.raises(ValueError, match="Unknown model name 'swin_tin'"):
        registry.get_variant("swin_tin")
