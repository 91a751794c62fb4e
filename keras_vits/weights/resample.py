"""Resampling of position-embedding grids when a checkpoint meets another input size.

timm's checkpoint filters resize with PyTorch's `F.interpolate(mode="bicubic",
antialias=True)`; TensorFlow's `tf.image.resize(method="bicubic", antialias=True)`
uses the same separable Keys kernel (a = -0.5) with half-pixel centres and
renormalised border taps, and agrees with it to about 3e-6. PVT v1 resizes with
`F.interpolate(mode="bilinear", align_corners=False)`, which is TensorFlow's
half-pixel bilinear.
"""

import numpy as np
import tensorflow as tf

RESIZE_METHODS = ("bicubic", "bilinear")


def resize_grid(grid, out_size, method="bicubic"):
    """Resizes the first two axes of `grid` as PyTorch's interpolation does for timm and PVT.

    Args:
        grid: `(H, W, C)` array.
        out_size: `(H', W')`.
        method: `"bicubic"` (antialiased, timm) or `"bilinear"` (PVT v1). Defaults to `"bicubic"`.

    Returns: `(H', W', C)` float32 array.
    """
    if method not in RESIZE_METHODS:
        raise ValueError(f"method must be one of {RESIZE_METHODS}, got {method!r}.")
    resized = tf.image.resize(
        tf.constant(grid[None], tf.float32), tuple(out_size), method=method, antialias=method == "bicubic"
    )
    return resized.numpy()[0]


def resample_abs_pos_embed(pos_embed, new_grid, num_prefix_tokens, old_grid=None, method="bicubic"):
    """Resizes a `(1, P + h * w, C)` position embedding to a new patch grid.

    Prefix-token embeddings (class, distillation) are kept as they are.

    Args:
        pos_embed: `(1, P + h * w, C)` array, timm's layout.
        new_grid: `(h', w')`.
        num_prefix_tokens: `P`.
        old_grid: `(h, w)`; None assumes a square grid. Defaults to None.
        method: see `resize_grid`. Defaults to `"bicubic"`.

    Returns: `(1, P + h' * w', C)` float32 array.
    """
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[0, num_prefix_tokens:]
    if old_grid is None:
        side = int(round(np.sqrt(patches.shape[0])))
        if side * side != patches.shape[0]:
            raise ValueError(
                f"Cannot infer the position-embedding grid of {patches.shape[0]} patch tokens "
                f"(not a square); pass old_grid=(h, w)."
            )
        old_grid = (side, side)
    grid = patches.reshape(old_grid[0], old_grid[1], -1)
    resized = resize_grid(grid, tuple(new_grid), method).reshape(1, -1, grid.shape[-1])
    return np.concatenate([prefix.astype(np.float32), resized], axis=1)
