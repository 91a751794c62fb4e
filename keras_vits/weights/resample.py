"""Resampling of position embeddings and relative-position bias tables when a checkpoint meets another size.

The one home of every resampler. Array functions (`resize_grid`,
`resample_abs_pos_embed`) work on NumPy arrays; the `(value, layer)` functions
are the `WeightMap.resamplers` of the families, resizing a checkpoint value to
the layer it is assigned to. `resample_abs_pos_embed_in_graph` is the in-graph
form of the bicubic resize (a `dynamic_img_size` ViT resizes its embedding to
each call's grid), in `keras_vits.ops`, so it runs on every backend.

Every resize is separable and linear, so it is written as one `(out, in)` matrix
per axis (`resize_matrix`), the same at load time and in the graph, with no
TensorFlow. timm's checkpoint filters resize with PyTorch's `F.interpolate(mode="bicubic",
antialias=True)`: the Keys kernel (a = -0.5) with half-pixel centres, stretched
by the scale when shrinking, and border taps renormalised; TensorFlow's
`tf.image.resize(method="bicubic", antialias=True)` is the same resize. PVT v1
resizes with `F.interpolate(mode="bilinear", align_corners=False)`: half-pixel
centres, edges clamped. Relative-position bias tables are resized as timm's
`resize_rel_pos_bias_table` (from BEiT) does.
"""

import numpy as np

RESIZE_METHODS = ("bicubic", "bilinear")


def _keys_cubic(x, xp):
    """The Keys cubic convolution kernel (a = -0.5), zero for `|x| >= 2`; `xp` is `np` or `keras_vits.ops`."""
    a = -0.5
    x = xp.abs(x)
    near = ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0
    far = ((a * x - 5.0 * a) * x + 8.0 * a) * x - 4.0 * a
    return xp.where(x <= 1.0, near, xp.where(x < 2.0, far, xp.zeros_like(x)))


def _bicubic_weights(in_size, out_size, xp):
    """`(out_size, in_size)` antialiased bicubic weights; `out_size` is a float (np) or float32 scalar (ops)."""
    scale = float(in_size) / out_size
    stretch = xp.maximum(scale, 1.0)
    centres = scale * (xp.arange(out_size, dtype="float32") + 0.5)
    taps = xp.arange(in_size, dtype="float32") + 0.5
    weights = _keys_cubic((taps[None, :] - centres[:, None]) / stretch, xp)
    return weights / xp.sum(weights, axis=1, keepdims=True)


def _bilinear_weights(in_size, out_size):
    """`(out_size, in_size)` half-pixel bilinear weights, edges clamped (no antialiasing)."""
    source = np.clip((np.arange(out_size) + 0.5) * (in_size / out_size) - 0.5, 0.0, in_size - 1.0)
    lower = np.floor(source).astype(np.int64)
    upper = np.minimum(lower + 1, in_size - 1)
    fraction = source - lower
    weights = np.zeros((out_size, in_size), np.float64)
    np.add.at(weights, (np.arange(out_size), lower), 1.0 - fraction)
    np.add.at(weights, (np.arange(out_size), upper), fraction)
    return weights


def resize_matrix(in_size, out_size, method="bicubic"):
    """`(out_size, in_size)` float32 weights of resizing one axis as PyTorch's interpolation does.

    Args:
        in_size, out_size: ints.
        method: `"bicubic"` (antialiased, timm) or `"bilinear"` (PVT v1). Defaults to `"bicubic"`.
    """
    if method not in RESIZE_METHODS:
        raise ValueError(f"method must be one of {RESIZE_METHODS}, got {method!r}.")
    if method == "bilinear":
        return _bilinear_weights(int(in_size), int(out_size)).astype(np.float32)
    return _bicubic_weights(int(in_size), float(out_size), np).astype(np.float32)


def resize_grid(grid, out_size, method="bicubic"):
    """Resizes the first two axes of `grid` as PyTorch's interpolation does for timm and PVT.

    Args:
        grid: `(H, W, C)` array.
        out_size: `(H', W')`.
        method: `"bicubic"` (antialiased, timm) or `"bilinear"` (PVT v1). Defaults to `"bicubic"`.

    Returns: `(H', W', C)` float32 array.
    """
    grid = np.asarray(grid, np.float32)
    rows = resize_matrix(grid.shape[0], out_size[0], method)
    cols = resize_matrix(grid.shape[1], out_size[1], method)
    return np.einsum("jw,iwc->ijc", cols, np.einsum("ih,hwc->iwc", rows, grid)).astype(np.float32)


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


def resample_abs_pos_embed_in_graph(pos_embed, new_grid, num_prefix_tokens, old_grid):
    """In-graph `resample_abs_pos_embed` (bicubic, antialiased), on any backend.

    The same matrices as at load time (`resize_matrix`) when the grid is known while
    tracing (always on JAX and PyTorch); built in the graph from `keras_vits.ops` when
    it is known only at run time (a TensorFlow graph of unknown image size). At the
    stored grid nothing is resized and no op is added.

    Args:
        pos_embed: `(1, P + h * w, C)` float32 tensor or variable.
        new_grid: `(h', w')`: Python ints, or scalar int tensors.
        num_prefix_tokens: `P`, a Python int.
        old_grid: `(h, w)`, Python ints.

    Returns: `(1, P + h' * w', C)` float32 tensor.
    """
    from keras_vits import ops

    pos_embed = ops.cast(pos_embed, "float32")  # a Keras 3 layer reads its variable in the compute dtype
    old_grid = tuple(int(g) for g in old_grid)
    static = all(isinstance(g, (int, np.integer)) for g in new_grid)
    if static and tuple(new_grid) == old_grid:
        return pos_embed
    if static:
        rows, cols = (ops.convert_to_tensor(resize_matrix(o, n)) for o, n in zip(old_grid, new_grid))
    else:
        rows, cols = (_bicubic_weights(o, ops.cast(n, "float32"), ops) for o, n in zip(old_grid, new_grid))
    dim = pos_embed.shape[-1]
    prefix, patches = pos_embed[:, :num_prefix_tokens], pos_embed[0, num_prefix_tokens:]
    grid = ops.reshape(patches, [old_grid[0], old_grid[1], dim])
    grid = ops.einsum("ih,hwc->iwc", rows, grid)
    grid = ops.einsum("jw,iwc->ijc", cols, grid)
    return ops.concatenate([prefix, ops.reshape(grid, [1, -1, dim])], axis=1)


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
