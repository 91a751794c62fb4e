"""Bicubic resampling of position-embedding grids in NumPy, as PyTorch computes it.

Written by hand rather than with `tf.image.resize` because TensorFlow's bicubic
kernel (Keys, a = -0.5, half-pixel centres) is not PyTorch's, and logits must
match timm's after a grid change. Two PyTorch paths are reproduced exactly:

- `antialias=False`: `F.interpolate(mode="bicubic", align_corners=False)`,
  cubic convolution with a = -0.75, input indices clamped at the border;
- `antialias=True`: PyTorch's separable anti-aliased path (PIL's), cubic with
  a = -0.5, support widened by the scale when downsampling, border taps
  dropped and the weights renormalised.
"""

import numpy as np


def _cubic(x, a):
    """Keys' cubic convolution kernel at offsets `x`."""
    x = np.abs(x)
    return np.where(
        x <= 1.0,
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
        np.where(x < 2.0, ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a, 0.0),
    )


def _plain_bicubic_matrix(in_size, out_size):
    """`(out_size, in_size)` weights of PyTorch's non-antialiased bicubic, a = -0.75."""
    scale = in_size / out_size
    matrix = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        source = (i + 0.5) * scale - 0.5
        floor = int(np.floor(source))
        t = source - floor
        taps = _cubic(np.array([t + 1.0, t, 1.0 - t, 2.0 - t]), -0.75)
        for offset, weight in zip(range(-1, 3), taps):
            matrix[i, min(max(floor + offset, 0), in_size - 1)] += weight
    return matrix


def _antialiased_bicubic_matrix(in_size, out_size):
    """`(out_size, in_size)` weights of PyTorch's antialiased bicubic, a = -0.5."""
    scale = in_size / out_size
    support_scale = max(scale, 1.0)
    support = 2.0 * support_scale
    matrix = np.zeros((out_size, in_size), np.float64)
    for i in range(out_size):
        centre = scale * (i + 0.5)
        start = max(int(centre - support + 0.5), 0)
        stop = min(int(centre + support + 0.5), in_size)
        taps = _cubic((np.arange(start, stop) - centre + 0.5) / support_scale, -0.5)
        matrix[i, start:stop] = taps / taps.sum()
    return matrix


def bicubic_resize(grid, out_size, antialias):
    """Resizes the first two axes of `grid` bicubically, as PyTorch does.

    Args:
        grid: `(H, W, C)` array.
        out_size: `(H', W')`.
        antialias: PyTorch's `antialias` flag (see the module docstring).

    Returns: `(H', W', C)` float32 array.
    """
    make = _antialiased_bicubic_matrix if antialias else _plain_bicubic_matrix
    rows = make(grid.shape[0], out_size[0])
    cols = make(grid.shape[1], out_size[1])
    out = np.einsum("ih,hwc->iwc", rows, grid.astype(np.float64))
    out = np.einsum("jw,iwc->ijc", cols, out)
    return out.astype(np.float32)


def resample_abs_pos_embed(pos_embed, new_grid, num_prefix_tokens, old_grid=None, antialias=True):
    """Resizes a `(1, P + h * w, C)` position embedding to a new patch grid.

    Prefix-token embeddings (class, distillation) are kept as they are.

    Args:
        pos_embed: `(1, P + h * w, C)` array, timm's layout.
        new_grid: `(h', w')`.
        num_prefix_tokens: `P`.
        old_grid: `(h, w)`; None assumes a square grid. Defaults to None.
        antialias: see `bicubic_resize`. Defaults to True, as timm's checkpoint filters.

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
    resized = bicubic_resize(grid, tuple(new_grid), antialias).reshape(1, -1, grid.shape[-1])
    return np.concatenate([prefix.astype(np.float32), resized], axis=1)
