"""Patch embedding: a strided convolution, then the grid flattened to tokens."""

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
    pair = tuple(int(v) for v in pair)
    return pair


def patch_grid(image_size, patch_size):
    """The `(h, w)` patch grid of an image; the image must tile exactly."""
    image_size = to_2tuple(image_size, "image_size")
    patch_size = to_2tuple(patch_size, "patch_size")
    if image_size[0] % patch_size[0] or image_size[1] % patch_size[1]:
        raise ValueError(
            f"image_size {image_size} must be divisible by patch_size {patch_size}; "
            f"the nearest valid sizes are "
            f"{tuple(max(p, round(i / p) * p) for i, p in zip(image_size, patch_size))}."
        )
    return image_size[0] // patch_size[0], image_size[1] // patch_size[1]


def patch_embed(images, patch_size, embed_dim, use_bias=True, name="patch_embed"):
    """Cuts an image into non-overlapping patches and embeds each linearly.

    A `Conv2D` with kernel and stride `patch_size` is the linear embedding
    (timm's `patch_embed.proj`), which TFLite runs as one builtin op.

    Args:
        images: `(B, H, W, in_chans)` tensor; `H, W` divisible by `patch_size`.
        patch_size: int or `(ph, pw)`.
        embed_dim: token width `C`.
        use_bias: bias in the projection. Defaults to True.
        name: prefix of the layer names (`{name}_proj`).

    Returns: `(B, (H / ph) * (W / pw), C)` tensor, patches in row-major order.
    """
    patch_size = to_2tuple(patch_size, "patch_size")
    grid = patch_grid(tuple(images.shape[1:3]), patch_size)
    x = keras.layers.Conv2D(embed_dim, patch_size, strides=patch_size, use_bias=use_bias, name=f"{name}_proj")(images)
    return keras.layers.Reshape((grid[0] * grid[1], embed_dim), name=f"{name}_flatten")(x)
