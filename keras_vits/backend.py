"""Which Keras the package runs on, and the few helpers that differ between them.

Keras 3 by default, on whichever backend `KERAS_BACKEND` names (TensorFlow, JAX or
PyTorch); tf-keras when `TF_USE_LEGACY_KERAS=1` is set, as TensorFlow reads it.
tensorflow-model-optimization only accepts tf-keras models, so every layer takes its
tensor ops from `keras_vits.ops`, which gives them TensorFlow's under tf-keras.
Nothing here imports TensorFlow unless tf-keras was asked for.
"""

import os

import numpy as np


def legacy_keras_requested(environ=os.environ):
    """Whether `TF_USE_LEGACY_KERAS` asks for tf-keras, read as TensorFlow reads it."""
    return environ.get("TF_USE_LEGACY_KERAS", "").strip().lower() in ("1", "true", "yes")


if legacy_keras_requested():
    import tf_keras as keras
else:
    import keras

#: True under Keras 3, False under tf-keras (``TF_USE_LEGACY_KERAS=1``).
IS_KERAS_3 = hasattr(keras, "Variable") and hasattr(keras, "ops")

#: The Keras backend the models run on: ``"tensorflow"``, ``"jax"`` or ``"torch"`` (tf-keras: ``"tensorflow"``).
BACKEND = keras.backend.backend() if IS_KERAS_3 else "tensorflow"


def require_tensorflow_backend(feature):
    """Raises unless the models run on TensorFlow; `feature` names what needs it (``"export_saved_model"``)."""
    if BACKEND != "tensorflow":
        raise RuntimeError(
            f"{feature} needs the TensorFlow backend of Keras; this process runs Keras on {BACKEND!r} "
            f"(KERAS_BACKEND). Run it with KERAS_BACKEND=tensorflow (and TensorFlow installed): "
            f"a .keras file saved here loads there."
        )


def dtype_name(dtype):
    """A dtype of any backend (or NumPy, or a name) as its standard name: `"float32"`, `"uint8"`, `"bfloat16"`."""
    if IS_KERAS_3:
        return keras.backend.standardize_dtype(dtype)
    import tensorflow as tf

    return tf.as_dtype(dtype).name


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


def _portable_key(key):
    """Keras 3 names a DepthwiseConv2D kernel `kernel`, tf-keras `depthwise_kernel`: one key for both."""
    layer, weight = key.rsplit("/", 1)
    return f"{layer}/kernel" if weight == "depthwise_kernel" else key


def compare_layer_weights(model, source_weights):
    """How `source_weights` (`{"layer_name/weight_name": array}`) fit `layer_weights(model)`.

    Keys are compared as both Kerases would name them alike (a DepthwiseConv2D's kernel).

    Returns:
        `(pairs, missing, unexpected, mismatched)`: `pairs` is `{key: (variable, array)}` for the
        keys on both sides, `missing` and `unexpected` the sorted keys of one side only, and
        `mismatched` `[(key, array shape, variable shape)]` in the model's layer order.
    """
    targets = {_portable_key(k): v for k, v in layer_weights(model).items()}
    source = {_portable_key(k): np.asarray(v) for k, v in source_weights.items()}
    pairs = {key: (variable, source[key]) for key, variable in targets.items() if key in source}
    mismatched = [
        (key, tuple(value.shape), tuple(variable.shape))
        for key, (variable, value) in pairs.items()
        if tuple(value.shape) != tuple(variable.shape)
    ]
    return pairs, sorted(set(targets) - set(source)), sorted(set(source) - set(targets)), mismatched


def depthwise_kernel(layer):
    """A DepthwiseConv2D's kernel variable: `kernel` in Keras 3, `depthwise_kernel` in tf-keras."""
    variable = getattr(layer, "depthwise_kernel", None)
    return layer.kernel if variable is None else variable


def load_keras_file(path, what="model"):
    """A `.keras` file loaded in safe mode (no Lambda or other code), with errors that say what is wrong.

    Args:
        path: the `.keras` file.
        what: what the model is for, in messages (`"teacher"`, `"model"`).

    Raises:
        FileNotFoundError: nothing at `path`.
        ValueError: not a `.keras` archive (truncated, another format), or one Keras cannot rebuild.
    """
    import os
    import zipfile

    from keras_vits._io import as_path

    path = str(as_path(path, f"The {what}", " to a .keras file"))
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No {what} at {path!r}; expected a .keras file.")
    if not zipfile.is_zipfile(path):
        raise ValueError(
            f"{path!r} is not a .keras file (a .keras file is a zip archive; this one is truncated or another "
            f"format). Save models with model.save('name.keras')."
        )
    try:
        return keras.models.load_model(path, safe_mode=True, compile=False)
    except (ValueError, TypeError, KeyError, OSError, zipfile.BadZipFile) as error:
        raise ValueError(f"Cannot load the {what} {path!r} in safe mode: {error}") from error


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN CPU kernels in this process (keras_vits/_onednn.py).

    Read through a private module, as TensorFlow's own tests do; None when it has moved.
    """
    require_tensorflow_backend("onednn_enabled")
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # pragma: no cover - a TensorFlow that moved the module
        return None
    return bool(_pywrap_util_port.IsMklEnabled())
