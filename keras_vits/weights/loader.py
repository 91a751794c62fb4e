"""Reads timm-format `.safetensors` checkpoints and assigns them strictly.

No PyTorch and no pickle: only the safetensors format is read.
"""

import os
import re
from collections.abc import Mapping

import numpy as np

from keras_vits._io import as_path
from keras_vits.backend import depthwise_kernel, keras, layer_weights, weight_short_name
from keras_vits.weights.weight_map import CHECKPOINT_HINTS, WeightMap, guess_family

#: safetensors dtypes read as weights (converted to float32); integer and bool tensors are refused.
FLOAT_DTYPES = ("F64", "F32", "F16", "BF16")
#: NumPy's names of those dtypes (bfloat16 is ml_dtypes', which Keras and TensorFlow ship).
_SAFETENSORS_NAMES = {"float64": "F64", "float32": "F32", "float16": "F16", "bfloat16": "BF16"}


def checkpoint_path(path, arg_name="checkpoint"):
    """`path` (str, bytes or `os.PathLike`) as a str; anything else is a `TypeError`."""
    return str(as_path(path, arg_name, " to a .safetensors file or a state dict"))


def _read_error(path, error):
    return ValueError(
        f"Cannot read {path!r} as safetensors ({error}). keras_vits reads only .safetensors "
        f"checkpoints (timm's format); it never unpickles .pth/.bin files."
    )


class LazyCheckpoint(Mapping):
    """A `.safetensors` file as a read-only mapping that reads one tensor per `[key]`, as float32 NumPy.

    Keys, dtypes and shapes come from the header alone (`dtype(key)`, `shape(key)`), so a
    checkpoint can be checked against a model before any tensor is materialised. Use as a
    context manager, or `close()` it.
    """

    def __init__(self, path):
        from safetensors import SafetensorError, safe_open

        self.path = checkpoint_path(path)
        if not os.path.isfile(self.path):
            raise FileNotFoundError(f"No checkpoint file at {self.path!r}; expected a timm-format .safetensors file.")
        try:
            # NumPy's view, on every backend: safetensors 0.8 reads bfloat16 as ml_dtypes' NumPy bfloat16.
            self._file = safe_open(self.path, framework="numpy")
            self._keys = list(self._file.keys())
            self._header = {}
            for key in self._keys:
                tensor_slice = self._file.get_slice(key)
                self._header[key] = (str(tensor_slice.get_dtype()), tuple(int(d) for d in tensor_slice.get_shape()))
        except (SafetensorError, ValueError, OSError, TypeError) as error:
            raise _read_error(self.path, error) from error

    def dtype(self, key):
        """The safetensors dtype name of `key` (`"F32"`, `"BF16"`, `"I64"`, ...), from the header."""
        return self._header[key][0]

    def shape(self, key):
        """The shape of `key`, from the header."""
        return self._header[key][1]

    def __getitem__(self, key):
        if key not in self._header:
            raise KeyError(key)
        from safetensors import SafetensorError

        try:
            tensor = self._file.get_tensor(key)
        except (SafetensorError, ValueError, OSError) as error:
            raise _read_error(self.path, error) from error
        return tensor.astype(np.float32) if self.dtype(key) in FLOAT_DTYPES else tensor

    def __contains__(self, key):
        return key in self._header

    def __iter__(self):
        return iter(self._keys)

    def __len__(self):
        return len(self._keys)

    def close(self):
        self._file = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def read_safetensors(path: str | bytes | os.PathLike) -> dict[str, np.ndarray]:
    """`{key: np.ndarray}` from a `.safetensors` file, floats as float32, with a clear error for bad files.

    Tensors are read one at a time (each converted before the next is read); `load_timm_weights`
    reads lazily instead, checking keys and shapes first (`LazyCheckpoint`).
    """
    with LazyCheckpoint(path) as checkpoint:
        return {key: checkpoint[key] for key in checkpoint}


def _header_of(state_dict, key):
    """`(dtype name, shape)` of `key` without reading it: from a `LazyCheckpoint` header or an array."""
    if isinstance(state_dict, LazyCheckpoint):
        return state_dict.dtype(key), state_dict.shape(key)
    value = state_dict[key]
    dtype = (
        np.asarray(value).dtype
        if not hasattr(value, "dtype")
        else np.dtype(getattr(value.dtype, "as_numpy_dtype", value.dtype))
    )
    return _SAFETENSORS_NAMES.get(dtype.name, dtype.name), tuple(int(d) for d in np.shape(value))


def _to_keras_value(layer, param, value):
    """`(keras_weight_name, value)` for a timm parameter of `layer`, transposed as Keras stores it."""
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        if param == "weight":  # (C * m, 1, kh, kw) -> (kh, kw, C, m)
            variable = depthwise_kernel(layer)
            channels, kernel = variable.shape[2], value.shape[2:]
            if value.ndim != 4 or value.shape[0] % channels:
                return weight_short_name(variable), value
            return weight_short_name(variable), value.reshape(channels, -1, *kernel).transpose(2, 3, 0, 1)
    elif isinstance(layer, keras.layers.Conv2D):
        if param == "weight" and value.ndim == 4:  # (out, in, kh, kw) -> (kh, kw, in, out)
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
    return tuple(layer.kernel.shape) != tuple(reversed(_header_of(state_dict, f"{head_module}.weight")[1]))


def _problems_message(model, weight_map, state_dict, unexpected, missing, mis_shaped, bad_dtypes=()):
    families = [f for f in guess_family(state_dict) if f != weight_map.family]
    hint = (
        f" The checkpoint looks like a {' / '.join(families)} checkpoint, not {weight_map.family}." if families else ""
    )
    hint += "".join(
        f" {message}"
        for side, pattern, message in CHECKPOINT_HINTS
        if any(re.search(pattern, key) for key in (unexpected if side == "unexpected" else missing))
    )
    lines = [
        f"Checkpoint does not fit {model.name} ({weight_map.family}).{hint}",
        f"  checkpoint keys with no place in the model ({len(unexpected)}): {unexpected[:20]}",
        f"  model weights missing from the checkpoint ({len(missing)}): {missing[:20]}",
        f"  shape mismatches ({len(mis_shaped)}): {mis_shaped[:20]}",
    ]
    if bad_dtypes:
        lines.append(f"  tensors that are not floating point weights ({len(bad_dtypes)}): {bad_dtypes[:20]}")
    return "\n".join(lines)


def map_state_dict(model, state_dict, weight_map):
    """Converts a timm `state_dict` to `{"layer/weight": value}` for `model`, strictly.

    Two passes: keys, dtypes and (where nothing is resampled) shapes are checked first, from a
    `LazyCheckpoint`'s header alone; only then is each tensor read, one at a time, checked for
    NaN and Inf, resampled and transposed.

    Args:
        model: the Keras model.
        state_dict: `{timm key: array}`, or a `LazyCheckpoint`.
        weight_map: the family's `WeightMap`.

    Returns: `(values, skipped_head_keys)`.

    Raises:
        ValueError: naming every checkpoint key with no place in the model, every
            model weight the checkpoint does not fill, every shape mismatch, every
            integer tensor, and any tensor holding NaN or Inf.
    """
    weights = layer_weights(model)
    layers = {layer.name: layer for layer in model.layers}
    head_shapes_differ = any(
        _head_differs(layers.get(name), state_dict, module)
        for module, name in zip(weight_map.head_modules, weight_map.head_layers)
    )
    features_only = model.get_config().get("features_only", False)
    # --- pass 1: the header
    planned, unexpected, mis_shaped, skipped, bad_dtypes, filled = [], [], [], [], [], set()
    for timm_key in state_dict:
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
        dtype, shape = _header_of(state_dict, timm_key)
        if dtype not in FLOAT_DTYPES:
            bad_dtypes.append(f"{timm_key} ({dtype})")
            continue
        resampler = weight_map.resampler(timm_key)
        # A zero-stride view of the header's shape: the layout change without reading or allocating.
        name, view = _to_keras_value(layer, param, np.broadcast_to(np.float32(0), shape))
        key = f"{layer_name}/{name}"
        if key not in weights:
            unexpected.append(timm_key)
            continue
        filled.add(key)
        if resampler is None and tuple(weights[key].shape) != view.shape:
            mis_shaped.append(f"{timm_key} {view.shape} -> {key} {tuple(weights[key].shape)}")
            continue
        planned.append((timm_key, layer, param, resampler, key))
    head_prefixes = tuple(f"{head}/" for head in weight_map.head_layers)
    missing = [
        key for key in weights if key not in filled and not (head_shapes_differ and key.startswith(head_prefixes))
    ]
    if unexpected or missing or mis_shaped or bad_dtypes:
        raise ValueError(_problems_message(model, weight_map, state_dict, unexpected, missing, mis_shaped, bad_dtypes))
    # --- pass 2: one tensor at a time
    values = {}
    for timm_key, layer, param, resampler, key in planned:
        value = np.asarray(state_dict[timm_key], np.float32)
        if not np.isfinite(value).all():
            raise ValueError(
                f"Checkpoint tensor {timm_key!r} holds {int((~np.isfinite(value)).sum())} NaN or Inf values; "
                f"a trained checkpoint has none (the file is damaged, or came from a diverged run)."
            )
        if resampler is not None:
            value = resampler(value, layer)
        _, value = _to_keras_value(layer, param, np.asarray(value))
        if tuple(weights[key].shape) != value.shape:
            mis_shaped.append(f"{timm_key} {value.shape} -> {key} {tuple(weights[key].shape)}")
            continue
        values[key] = value
    if mis_shaped:
        raise ValueError(_problems_message(model, weight_map, state_dict, [], [], mis_shaped))
    return values, skipped


def load_timm_weights(
    model: keras.Model,
    checkpoint: str | bytes | os.PathLike | Mapping[str, np.ndarray],
    weight_map: WeightMap | None = None,
) -> list[str]:
    """Loads a timm-format checkpoint into `model`, strictly.

    A file is read lazily: its keys, dtypes and shapes are checked against the model from
    the header before any tensor is read, then tensors are read one at a time. Nothing is
    assigned unless every weight fits.

    Args:
        model: a keras_vits model (any family).
        checkpoint: path (str, bytes, `os.PathLike`) to a `.safetensors` file, or a `{key: array}` state dict.
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
    if isinstance(checkpoint, Mapping):
        values, skipped = map_state_dict(model, checkpoint, weight_map)
    else:
        with LazyCheckpoint(checkpoint_path(checkpoint)) as lazy:
            values, skipped = map_state_dict(model, lazy, weight_map)
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
    path = checkpoint_path(path, "weights")
    try:
        with safe_open(path, framework="numpy") as checkpoint:
            if key not in set(checkpoint.keys()):
                return None
            return int(checkpoint.get_slice(key).get_shape()[0])
    except (SafetensorError, OSError, ValueError) as error:
        raise ValueError(f"Cannot read {path!r} as safetensors ({error}).") from error
