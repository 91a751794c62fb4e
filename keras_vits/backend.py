"""Which Keras the package runs on, and the few helpers that differ between them.

The model code takes Keras from ``tf.keras``: that is Keras 3 by default and
tf-keras when ``TF_USE_LEGACY_KERAS=1`` is set before TensorFlow is imported.
tensorflow-model-optimization only accepts tf-keras models, so every layer in
this package uses TensorFlow ops inside ``call`` and builds under both.
"""

import tensorflow as tf

keras = tf.keras

#: True under Keras 3, False under tf-keras (``TF_USE_LEGACY_KERAS=1``).
IS_KERAS_3 = hasattr(keras, "Variable") and hasattr(keras, "ops")


def register_serializable(cls):
    """Registers a custom layer or model as ``keras_vits>ClassName``."""
    return keras.utils.register_keras_serializable(package="keras_vits")(cls)


def weight_short_name(variable):
    """The variable's own name without scope or ``:0``: ``kernel``, ``gamma``, ``token``."""
    return variable.name.split("/")[-1].split(":")[0]


def layer_weights(model):
    """``{"layer_name/weight_name": variable}`` for every weight of a flat functional model.

    Keyed by layer name rather than by ``variable.path`` (Keras 3) or
    ``variable.name`` (tf-keras), which differ between the two and carry name
    scopes that depend on where the model was built.
    """
    weights = {}
    for layer in model.layers:
        for variable in layer.weights:
            key = f"{layer.name}/{weight_short_name(variable)}"
            if key in weights:
                raise ValueError(f"Two weights share the key {key!r} in layer {layer.name!r}.")
            weights[key] = variable
    return weights


def depthwise_kernel(layer):
    """A DepthwiseConv2D's kernel variable: `kernel` in Keras 3, `depthwise_kernel` in tf-keras."""
    variable = getattr(layer, "depthwise_kernel", None)
    return layer.kernel if variable is None else variable


def in_xla_context():
    """True while tracing inside an XLA-compiled function (`tf.function(jit_compile=True)`,
    `model.compile(jit_compile=True)`), also from a function nested in one.

    TensorFlow exposes this only through a private module; it is the check its own
    control-flow ops use. Without it we answer False, which only costs speed.
    """
    try:
        from tensorflow.python.ops import control_flow_util
    except ImportError:  # pragma: no cover - a TensorFlow that moved the module
        return False
    return control_flow_util.GraphOrParentsInXlaContext(tf.compat.v1.get_default_graph())
