"""tools/layer_norm_gradient_ab.py times two different graphs: the closed-form gradient and autodiff's."""

import importlib.util
import pathlib

from keras_vits.layers import LayerNorm

_SPEC = importlib.util.spec_from_file_location(
    "layer_norm_gradient_ab", pathlib.Path(__file__).parents[1] / "tools" / "layer_norm_gradient_ab.py"
)
layer_norm_gradient_ab = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(layer_norm_gradient_ab)


def _identity_n_count(step, images):
    return sum(op.type == "IdentityN" for op in step.get_concrete_function(images).graph.get_operations())


def test_only_the_closed_form_step_holds_the_custom_gradient():
    steps, images, model = layer_norm_gradient_ab.traced_steps("fmnist_student", 4)
    norms = sum(isinstance(layer, LayerNorm) for layer in model._flatten_layers())
    assert norms == 9  # two per block, four blocks, and the final norm
    # tf.custom_gradient marks each use with an IdentityN; the model has others of its own.
    extra = _identity_n_count(steps["closed form"], images) - _identity_n_count(steps["autodiff"], images)
    assert extra == norms
    assert steps["closed form"](images).shape == steps["autodiff"](images).shape == ()
