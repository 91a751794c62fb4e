"""Patch embedding: a strided convolution, then the grid flattened to tokens."""

from keras_vits.backend import keras
from keras_vits.layers.helpers import to_2tuple


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


def patch_embed(images, patch_size, embed_dim, use_bias=True, strict=True, name="patch_embed"):
    """Cuts an image into non-overlapping patches and embeds each linearly.

    A `Conv2D` with kernel and stride `patch_size` is the linear embedding
    (timm's `patch_embed.proj`), which TFLite runs as one builtin op.

    Args:
        images: `(B, H, W, in_chans)` tensor.
        patch_size: int or `(ph, pw)`.
        embed_dim: token width `C`.
        use_bias: bias in the projection. Defaults to True.
        strict: `H, W` must be multiples of `patch_size` (timm's ViT); False drops the
            partial patches at the bottom and right, as a PyTorch strided conv does (PVT v1).
            Defaults to True.
        name: prefix of the layer names (`{name}_proj`, `{name}_flatten`).

    Returns: `(B, (H // ph) * (W // pw), C)` tensor, patches in row-major order
    (`(B, None, C)` when `H, W` are unknown until run time).
    """
    patch_size = to_2tuple(patch_size, "patch_size")
    known = None not in tuple(images.shape[1:3])
    if strict and known:
        patch_grid(tuple(images.shape[1:3]), patch_size)
    x = keras.layers.Conv2D(embed_dim, patch_size, strides=patch_size, use_bias=use_bias, name=f"{name}_proj")(images)
    length = x.shape[1] * x.shape[2] if known else -1
    return keras.layers.Reshape((length, embed_dim), name=f"{name}_flatten")(x)
