"""Small helpers every family uses: argument pairs and timm's Linear initialisation."""

import numpy as np

from keras_vits.backend import keras


def to_2tuple(value, arg_name, minimum=1):
    """`224` or `(224, 320)` -> `(224, 320)` of ints `>= minimum`; anything else is a `ValueError`."""
    if isinstance(value, (list, tuple)):
        if len(value) != 2:
            raise ValueError(f"{arg_name} must be an int or a pair (height, width), got {value!r}.")
        pair = tuple(value)
    else:
        pair = (value, value)
    if not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) and v >= minimum for v in pair):
        kind = "positive ints" if minimum == 1 else f"ints >= {minimum}"
        raise ValueError(f"{arg_name} must hold {kind}, got {value!r}.")
    return tuple(int(v) for v in pair)


def dense_initializer():
    """timm's Linear initialisation: truncated normal, std 0.02."""
    return keras.initializers.TruncatedNormal(stddev=0.02)
