"""Resampling of position embeddings and relative-position bias tables when a checkpoint meets another size.

The one home of every resampler. Array functions (`resize_grid`,
`resample_abs_pos_embed`) work on NumPy arrays; the `(value, layer)` functions
are the `WeightMap.resamplers` of the families, resizing a checkpoint value to
the layer it is assigned to. `resample_abs_pos_embed_tf` is the in-graph form
of the bicubic resize (a `dynamic_img_size` ViT resizes its embedding to each
call's grid): the same kernel as matrix products, which XLA compiles.

timm's checkpoint filters resize with PyTorch's `F.interpolate(mode="bicubic",
antialias=True)`; TensorFlow's `tf.image.resize(method="bicubic", antialias=True)`
uses the same separable Keys kernel (a = -0.5) with half-pixel centres and
renormalised border taps, and agrees with it to about 3e-6. PVT v1 resizes with
`F.interpolate(mode="bilinear", align_corners=False)`, which is TensorFlow's
half-pixel bilinear. Relative-position bias tables are resized as timm's
`resize_rel_pos_bias_table` (from BEiT) does.
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


def _keys_cubic(x, a=-0.5):
    """The Keys cubic convolution kernel (PyTorch's and TensorFlow's bicubic), zero for `|x| >= 2`."""
    x = tf.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return tf.where(x <= 1.0, near, tf.where(x < 2.0, far, tf.zeros_like(x)))


def bicubic_resize_matrix(in_size, out_size):
    """`(out_size, in_size)` float32 weights of antialiased bicubic resizing along one axis, in TF ops.

    Half-pixel centres; when shrinking, the kernel is stretched by the scale
    (antialiasing); each row is renormalised over the taps inside the input, as
    `F.interpolate(mode="bicubic", antialias=True)` and `tf.image.resize(...,
    antialias=True)` do. Only matmul-friendly ops, so it runs under XLA, where
    `tf.image.resize`'s antialiased kernel (`ScaleAndTranslate`) has no lowering.

    Args:
        in_size: a Python int.
        out_size: an int or a scalar int32 tensor.
    """
    out_size = tf.cast(out_size, tf.float32)
    scale = float(in_size) / out_size
    stretch = tf.maximum(scale, 1.0)
    centres = scale * (tf.range(out_size, dtype=tf.float32) + 0.5)
    taps = tf.range(in_size, dtype=tf.float32) + 0.5
    weights = _keys_cubic((taps[None, :] - centres[:, None]) / stretch)
    return weights / tf.reduce_sum(weights, axis=1, keepdims=True)


def resample_abs_pos_embed_tf(pos_embed, new_grid, num_prefix_tokens, old_grid):
    """In-graph `resample_abs_pos_embed` (bicubic, antialiased) to a grid that may be known only at run time.

    The same resize as at load time (`resize_grid`, `tf.image.resize`), written as
    two matrix products (`bicubic_resize_matrix`) so that XLA compiles it; the two
    agree to float32 rounding (tests/test_vit_features.py). At the stored grid the
    matrices are the identity; a grid known while tracing to be the stored one adds
    no op at all.

    Args:
        pos_embed: `(1, P + h * w, C)` float32 tensor or variable.
        new_grid: `(h', w')`: Python ints, or an int32 tensor of shape `(2,)`.
        num_prefix_tokens: `P`, a Python int.
        old_grid: `(h, w)`, Python ints.

    Returns: `(1, P + h' * w', C)` float32 tensor.
    """
    pos_embed = tf.cast(pos_embed, tf.float32)  # a Keras 3 layer reads its variable in the compute dtype
    old_grid = tuple(int(g) for g in old_grid)
    static = isinstance(new_grid, (tuple, list)) and all(isinstance(g, int) for g in new_grid)
    if static and tuple(new_grid) == old_grid:
        return pos_embed
    dim = pos_embed.shape[-1]
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[0, num_prefix_tokens:]
    grid = tf.reshape(patches, [old_grid[0], old_grid[1], dim])
    rows = bicubic_resize_matrix(old_grid[0], new_grid[0])
    cols = bicubic_resize_matrix(old_grid[1], new_grid[1])
    grid = tf.einsum("ih,hwc->iwc", rows, grid)
    grid = tf.einsum("jw,iwc->ijc", cols, grid)
    return tf.concat([prefix, tf.reshape(grid, [1, -1, dim])], axis=1)


def _resample_pos_embed_to_layer(value, layer, method):
    """`value` resized to a `PositionEmbedding` layer's grid, keeping its prefix tokens."""
    value = np.asarray(value, np.float32)
    old_grid = value.shape[1:3] if value.ndim == 4 else None  # (1, h, w, C), as timm's Swin stores it
    value = value.reshape(1, -1, value.shape[-1])
    prefix = layer.num_prefix_tokens
    if value.shape[1] == prefix + layer.grid_size[0] * layer.grid_size[1]:
        return value
    if value.shape[1] <= prefix:
        raise ValueError(
            f"Checkpoint position embedding of shape {value.shape} has no patch tokens after {prefix} prefix tokens."
        )
    return resample_abs_pos_embed(value, layer.grid_size, prefix, old_grid=old_grid, method=method)


def resample_pos_embed(value, layer):
    """A checkpoint's `(1, P + h*w, C)` or `(1, h, w, C)` embedding for `layer`'s grid, bicubic as timm.

    `layer` is a `PositionEmbedding` (ViT, DeiT, Swin's absolute embedding).
    Returns: `(1, P + h' * w', C)` float32 array.
    """
    return _resample_pos_embed_to_layer(value, layer, "bicubic")


def resample_pos_embed_bilinear(value, layer):
    """As `resample_pos_embed`, bilinearly as the official PVT v1 does."""
    return _resample_pos_embed_to_layer(value, layer, "bilinear")


def resample_relative_position_bias_table(value, layer):
    """A `((2w-1)^2, heads)` table resized to `layer`'s window (a `WindowAttentionCore`), as timm does.

    Source offsets lie on a geometric progression stretched to cover the new
    table, and values are interpolated linearly, clamped at the edges.
    Returns: `((2wh-1) * (2ww-1), heads)` float32 array.
    """
    if value.shape == tuple(layer.relative_position_bias_table.shape):
        return value
    old = int(round(np.sqrt(value.shape[0])))
    if old * old != value.shape[0]:
        raise ValueError(f"Cannot resample a relative position bias table of {value.shape[0]} rows: not square.")
    new_size = (2 * layer.window_size[0] - 1, 2 * layer.window_size[1] - 1)
    grid = value.reshape(old, old, -1).astype(np.float64)
    rows = _geometric_interpolation_matrix(old, new_size[0])
    cols = _geometric_interpolation_matrix(old, new_size[1])
    out = np.einsum("ih,hwc->iwc", rows, grid)
    out = np.einsum("jw,iwc->ijc", cols, out)
    return out.reshape(new_size[0] * new_size[1], -1).astype(np.float32)


def _geometric_interpolation_matrix(src, dst):
    """`(dst, src)` weights: linear interpolation from BEiT's geometric source offsets to integer offsets."""
    left, right = 1.01, 1.5
    while right - left > 1e-6:  # the ratio whose progression reaches dst // 2, by bisection
        ratio = (left + right) / 2.0
        if (1.0 - ratio ** (src // 2)) / (1.0 - ratio) > dst // 2:
            right = ratio
        else:
            left = ratio
    distances = np.cumsum([ratio**i for i in range(src // 2)])
    positions = np.concatenate([-distances[::-1], [0.0], distances])
    targets = np.arange(-(dst // 2), dst // 2 + 1, dtype=np.float64)
    return np.stack([np.interp(targets, positions, basis) for basis in np.eye(src)], axis=1)
