"""Reads timm-format `.safetensors` checkpoints and assigns them strictly.

No PyTorch and no pickle: only the safetensors format is read.
"""

import os
import re
from collections.abc import Mapping

import numpy as np
import tensorflow as tf

from keras_vits.backend import depthwise_kernel, keras, layer_weights, weight_short_name
from keras_vits.weights.weight_map import WeightMap, guess_family


def read_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """`{key: np.ndarray}` from a `.safetensors` file, floats as float32, with a clear error for bad files.

    Read through safetensors' TensorFlow API rather than its NumPy one, which
    cannot represent the bfloat16 tensors some Hub checkpoints hold.
    """
    from safetensors import SafetensorError
    from safetensors.tensorflow import load_file

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"No checkpoint file at {path!r}; expected a timm-format .safetensors file.")
    try:
        tensors = load_file(path)
    except (SafetensorError, ValueError, OSError, TypeError) as error:
        raise ValueError(
            f"Cannot read {path!r} as safetensors ({error}). keras_vits reads only .safetensors "
            f"checkpoints (timm's format); it never unpickles .pth/.bin files."
        ) from error
    return {key: (tf.cast(t, tf.float32) if t.dtype.is_floating else t).numpy() for key, t in tensors.items()}


def _to_keras_value(layer, param, value):
    """`(keras_weight_name, value)` for a timm parameter of `layer`, transposed as Keras stores it."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if param == "weight":  # (C * m, 1, kh, kw) -> (kh, kw, C, m)
            variable = depthwise_kernel(layer)
            channels, kernel = variable.shape[2], value.shape[2:]
            return weight_short_name(variable), value.reshape(channels, -1, *kernel).transpose(2, 3, 0, 1)
    elif isinstance(layer, keras.layers.Conv2D):
        if param == "weight":  # (out, in, kh, kw) -> (kh, kw, in, out)
            return "kernel", value.transpose(2, 3, 1, 0)
    elif isinstance(layer, keras.layers.Dense):
        if param == "weight":  # (out, in) -> (in, out)
            return "kernel", value.T
    elif isinstance(layer, keras.layers.LayerNormalization):
        return {"weight": "gamma", "bias": "beta"}.get(param, param), value
    if param == "" and len(layer.weights) == 1:  # a bare parameter such as `cls_token`
        return weight_short_name(layer.weights[0]), value
    return param, value


def _head_differs(layer, state_dict, head_module):
    """True when the checkpoint's classifier cannot fill the model's: absent on one side, or another size."""
    in_checkpoint = f"{head_module}.weight" in state_dict
    if layer is None or not in_checkpoint:
        return (layer is None) != (not in_checkpoint)
    return tuple(layer.kernel.shape) != state_dict[f"{head_module}.weight"].T.shape


def map_state_dict(model, state_dict, weight_map):
    """Converts a timm `state_dict` to `{"layer/weight": value}` for `model`, strictly.

    Returns: `(values, skipped_head_keys)`.

    Raises:
        ValueError: naming every checkpoint key with no place in the model, every
            model weight the checkpoint does not fill, and every shape mismatch.
    """
    weights = layer_weights(model)
    layers = {layer.name: layer for layer in model.layers}
    head_shapes_differ = any(
        _head_differs(layers.get(name), state_dict, module)
        for module, name in zip(weight_map.head_modules, weight_map.head_layers)
    )
    features_only = model.get_config().get("features_only", False)
    values, unexpected, mis_shaped, skipped = {}, [], [], []
    for timm_key, value in state_dict.items():
        if weight_map.is_ignored(timm_key):
            continue
        if features_only and any(re.search(p, timm_key) for p in weight_map.unused_by_features):
            skipped.append(timm_key)
            continue
        layer_name, param = weight_map.keras_layer_and_param(timm_key)
        if layer_name in weight_map.head_layers and head_shapes_differ:
            skipped.append(timm_key)
            continue
        layer = layers.get(layer_name)
        if layer is None:
            unexpected.append(timm_key)
            continue
        resampler = weight_map.resampler(timm_key)
        if resampler is not None:
            value = resampler(value, layer)
        name, value = _to_keras_value(layer, param, np.asarray(value))
        key = f"{layer_name}/{name}"
        if key not in weights:
            unexpected.append(timm_key)
        elif tuple(weights[key].shape) != value.shape:
            mis_shaped.append(f"{timm_key} {value.shape} -> {key} {tuple(weights[key].shape)}")
        else:
            values[key] = value
    head_prefixes = tuple(f"{head}/" for head in weight_map.head_layers)
    missing = [
        key for key in weights if key not in values and not (head_shapes_differ and key.startswith(head_prefixes))
    ]
    if unexpected or missing or mis_shaped:
        families = [f for f in guess_family(state_dict) if f != weight_map.family]
        hint = (
            f" The checkpoint looks like a {' / '.join(families)} checkpoint, not {weight_map.family}."
            if families
            else ""
        )
        raise ValueError(
            f"Checkpoint does not fit {model.name} ({weight_map.family}).{hint}\n"
            f"  checkpoint keys with no place in the model ({len(unexpected)}): {unexpected[:20]}\n"
            f"  model weights missing from the checkpoint ({len(missing)}): {missing[:20]}\n"
            f"  shape mismatches ({len(mis_shaped)}): {mis_shaped[:20]}"
        )
    return values, skipped


def load_timm_weights(
    model: keras.Model,
    checkpoint: str | os.PathLike | Mapping[str, np.ndarray],
    weight_map: WeightMap | None = None,
) -> list[str]:
    """Loads a timm-format checkpoint into `model`, strictly.

    Args:
        model: a keras_vits model (any family).
        checkpoint: path to a `.safetensors` file, or a `{key: array}` state dict.
        weight_map: a `WeightMap`. Defaults to the model's own (`model.weight_map`), which
            every keras_vits model class carries.

    Returns: the checkpoint keys left unused on purpose: the head's when
    `num_classes` differs (the head keeps its fresh initialisation), and the
    final norm's and head's for a `features_only` model.
    """
    if weight_map is None:
        weight_map = getattr(model, "weight_map", None)
        if weight_map is None:
            raise TypeError(f"{type(model).__name__} has no weight_map; pass weight_map= or use a keras_vits model.")
    state_dict = read_safetensors(checkpoint) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    values, skipped = map_state_dict(model, state_dict, weight_map)
    weights = layer_weights(model)
    for key, value in values.items():
        weights[key].assign(value.astype(np.float32))
    return skipped


def checkpoint_num_classes(path, weight_map):
    """Classes of the checkpoint's head, read from the file's header alone; None if it has no head.

    Args:
        path: a `.safetensors` file.
        weight_map: the family's `WeightMap` (its first `head_modules` entry is the classifier).
    """
    from safetensors import SafetensorError, safe_open

    key = f"{weight_map.head_modules[0]}.weight"
    try:
        with safe_open(os.fspath(path), framework="numpy") as checkpoint:
            if key not in set(checkpoint.keys()):
                return None
            return int(checkpoint.get_slice(key).get_shape()[0])
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"Cannot read {os.fspath(path)!r} as safetensors ({error}).") from error
