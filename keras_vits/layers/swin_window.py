"""Swin's window operations for shifted-window attention, in builtin-only TFLite ops.

The cyclic shift is slice + concat rather than a roll, which TFLite has no
builtin for; partition and reverse are reshape + transpose. Windows keep the
image batch as their own axis, `(B, num_windows, window_area, C)`, so shapes
stay static and per-image costs stay countable.

Maps that are not a multiple of the window are zero-padded at the bottom and
right. The official Swin detection code (and HuggingFace's Swin) pads *then*
shifts; timm shifts the unpadded map *then* pads. Both are available
(`pad_before_shift`); in both the shifted-window mask covers the padded map.
"""

import numpy as np

from keras_vits import ops
from keras_vits.backend import keras, register_serializable
from keras_vits.layers.attention import AttentionCoreBase, attend, merge_heads, split_fused_qkv
from keras_vits.layers.helpers import to_2tuple


def window_padding(size, window_size):
    """`(pad_h, pad_w)` that make `size` a multiple of `window_size`."""
    return tuple((w - s % w) % w for s, w in zip(size, window_size))


def cyclic_shift(x, shift_size):
    """Rolls `(B, H, W, C)` by `-shift` on H and W (towards the top left), with slice + concat."""
    shift_h, shift_w = shift_size
    if shift_h:
        x = ops.concatenate([x[:, shift_h:], x[:, :shift_h]], axis=1)
    if shift_w:
        x = ops.concatenate([x[:, :, shift_w:], x[:, :, :shift_w]], axis=2)
    return x


def reverse_cyclic_shift(x, shift_size):
    """Rolls `(B, H, W, C)` by `+shift` on H and W: the inverse of `cyclic_shift`."""
    shift_h, shift_w = shift_size
    if shift_h:
        x = ops.concatenate([x[:, -shift_h:], x[:, :-shift_h]], axis=1)
    if shift_w:
        x = ops.concatenate([x[:, :, -shift_w:], x[:, :, :-shift_w]], axis=2)
    return x


def window_partition(x, window_size, xp=ops):
    """`(B, H, W, C)` -> `(B, num_windows, wh * ww, C)`, windows in row-major order.

    `H` and `W` must be multiples of the window's `(wh, ww)`. `xp` is `keras_vits.ops`
    for tensors, or `np` for arrays (the shift mask is built from this layout too).
    """
    height, width, channels = x.shape[1], x.shape[2], x.shape[3]
    wh, ww = window_size
    x = xp.reshape(x, [-1, height // wh, wh, width // ww, ww, channels])
    x = xp.transpose(x, [0, 1, 3, 2, 4, 5])
    return xp.reshape(x, [-1, (height // wh) * (width // ww), wh * ww, channels])


def window_reverse(windows, window_size, padded_size):
    """`(B, num_windows, wh * ww, C)` -> `(B, Hp, Wp, C)`: the inverse of `window_partition`."""
    (wh, ww), (height, width) = window_size, padded_size
    channels = windows.shape[-1]
    x = ops.reshape(windows, [-1, height // wh, width // ww, wh, ww, channels])
    x = ops.transpose(x, [0, 1, 3, 2, 4, 5])
    return ops.reshape(x, [-1, height, width, channels])


def relative_position_index(window_size):
    """`(N, N)` int32 index into the `((2wh-1)(2ww-1), heads)` bias table, `N = wh * ww`."""
    wh, ww = window_size
    coords = np.stack(np.meshgrid(np.arange(wh), np.arange(ww), indexing="ij")).reshape(2, -1)
    relative = (coords[:, :, None] - coords[:, None, :]).transpose(1, 2, 0)
    relative[:, :, 0] += wh - 1
    relative[:, :, 1] += ww - 1
    return (relative[:, :, 0] * (2 * ww - 1) + relative[:, :, 1]).astype(np.int32)


def shifted_window_mask(padded_size, window_size, shift_size, masked_value=-100.0):
    """`(num_windows, N, N)` float32 additive mask for shifted windows over a padded map.

    Tokens that the cyclic shift brought together from different regions of the
    map cannot attend to each other (`masked_value`, as in the official code).
    """
    region = np.zeros(padded_size, np.float32)
    for axis, (size, window, shift) in enumerate(zip(padded_size, window_size, shift_size)):
        ids = np.zeros(size, np.float32)
        if shift:
            ids[size - window : size - shift] = 1
            ids[size - shift :] = 2
        region += ids[:, None] * 3 if axis == 0 else ids[None, :]
    windows = window_partition(region[None, :, :, None], window_size, xp=np)[0, :, :, 0]
    different = windows[:, None, :] != windows[:, :, None]
    return np.where(different, masked_value, 0.0).astype(np.float32)


def stage_window_and_shift(feature_size, window_size, shift_size):
    """Window and shift a stage really uses: a window larger than the map shrinks to it, unshifted.

    Applied per axis, as timm does: `(7, 7)` on a `(4, 9)` map gives window `(4, 7)`, shift `(0, 3)`.
    """
    window = tuple(min(f, w) for f, w in zip(feature_size, window_size))
    shift = tuple(0 if f <= w else s for f, w, s in zip(feature_size, window_size, shift_size))
    return window, shift


@register_serializable
class WindowPartition(keras.layers.Layer):
    """Pads a feature map to whole windows, shifts it cyclically, and cuts it into windows.

    Args:
        window_size: int or `(wh, ww)`.
        shift_size: int or `(sh, sw)`; 0 for regular windows. Defaults to 0.
        pad_before_shift: pad then shift (official detection code) rather than
            shift then pad (timm). Defaults to True.

    Shapes: `(B, H, W, C)` -> `(B, num_windows, wh * ww, C)`.
    """

    def __init__(self, window_size, shift_size=0, pad_before_shift=True, **kwargs):
        super().__init__(**kwargs)
        self.window_size = to_2tuple(window_size, "window_size")
        self.shift_size = to_2tuple(shift_size, "shift_size", minimum=0)
        self.pad_before_shift = bool(pad_before_shift)

    def call(self, x):
        pad_h, pad_w = window_padding(x.shape[1:3], self.window_size)
        if not self.pad_before_shift:
            x = cyclic_shift(x, self.shift_size)
        if pad_h or pad_w:
            x = ops.pad(x, [[0, 0], [0, pad_h], [0, pad_w], [0, 0]])
        if self.pad_before_shift:
            x = cyclic_shift(x, self.shift_size)
        return window_partition(x, self.window_size)

    def compute_output_shape(self, input_shape):
        pad = window_padding(input_shape[1:3], self.window_size)
        count = ((input_shape[1] + pad[0]) // self.window_size[0]) * ((input_shape[2] + pad[1]) // self.window_size[1])
        return (input_shape[0], count, self.window_size[0] * self.window_size[1], input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(window_size=self.window_size, shift_size=self.shift_size, pad_before_shift=self.pad_before_shift)
        return config


@register_serializable
class WindowReverse(keras.layers.Layer):
    """Joins windows back into a feature map, undoes the shift, and crops the padding.

    Args:
        window_size: int or `(wh, ww)`.
        feature_size: `(H, W)` of the map before padding.
        shift_size: int or `(sh, sw)`. Defaults to 0.
        pad_before_shift: as in `WindowPartition`. Defaults to True.

    Shapes: `(B, num_windows, wh * ww, C)` -> `(B, H, W, C)`.
    """

    def __init__(self, window_size, feature_size, shift_size=0, pad_before_shift=True, **kwargs):
        super().__init__(**kwargs)
        self.window_size = to_2tuple(window_size, "window_size")
        self.feature_size = to_2tuple(feature_size, "feature_size")
        self.shift_size = to_2tuple(shift_size, "shift_size", minimum=0)
        self.pad_before_shift = bool(pad_before_shift)

    def call(self, windows):
        pad = window_padding(self.feature_size, self.window_size)
        padded = (self.feature_size[0] + pad[0], self.feature_size[1] + pad[1])
        x = window_reverse(windows, self.window_size, padded)
        if self.pad_before_shift:
            x = reverse_cyclic_shift(x, self.shift_size)
        if pad[0] or pad[1]:
            x = x[:, : self.feature_size[0], : self.feature_size[1]]
        if not self.pad_before_shift:
            x = reverse_cyclic_shift(x, self.shift_size)
        return x

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.feature_size, input_shape[-1])

    def get_config(self):
        config = super().get_config()
        config.update(
            window_size=self.window_size,
            feature_size=self.feature_size,
            shift_size=self.shift_size,
            pad_before_shift=self.pad_before_shift,
        )
        return config


@register_serializable
class WindowAttentionCore(AttentionCoreBase):
    """Multi-head attention inside windows, with relative position bias and the shift mask.

    Holds the relative position bias table (timm's `relative_position_bias_table`);
    the qkv and output projections around it are plain `Dense` layers. The bias
    index and the mask are constants recomputed from the arguments, never loaded.

    Args:
        num_heads: attention heads.
        window_size: int or `(wh, ww)`.
        padded_size: `(Hp, Wp)`, the feature map padded to whole windows.
        shift_size: int or `(sh, sw)`; non-zero adds the shifted-window mask. Defaults to 0.
        relative_position_bias: learn a relative position bias. Defaults to True.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.

    Shapes: `(B, num_windows, N, 3 * C)` -> `(B, num_windows, N, C)`, `N = wh * ww`.
    """

    #: The bias table takes no weight decay (timm's `no_weight_decay` keywords).
    exclude_from_weight_decay = True

    def __init__(
        self,
        num_heads,
        window_size,
        padded_size,
        shift_size=0,
        relative_position_bias=True,
        attn_drop_rate=0.0,
        **kwargs,
    ):
        super().__init__(num_heads, attn_drop_rate, **kwargs)
        self.window_size = to_2tuple(window_size, "window_size")
        self.padded_size = to_2tuple(padded_size, "padded_size")
        self.shift_size = to_2tuple(shift_size, "shift_size", minimum=0)
        self.relative_position_bias = bool(relative_position_bias)
        if any(p % w for p, w in zip(self.padded_size, self.window_size)):
            raise ValueError(f"padded_size {self.padded_size} must be a multiple of window_size {self.window_size}.")
        self.num_windows = (self.padded_size[0] // self.window_size[0]) * (self.padded_size[1] // self.window_size[1])

    def build(self, input_shape):
        self.check_fused_qkv_width(input_shape)
        if self.relative_position_bias:
            wh, ww = self.window_size
            self.relative_position_bias_table = self.add_weight(
                name="relative_position_bias_table",
                shape=((2 * wh - 1) * (2 * ww - 1), self.num_heads),
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            )
            self._bias_index = ops.convert_to_tensor(relative_position_index(self.window_size).reshape(-1))
        self._mask = (
            ops.convert_to_tensor(
                shifted_window_mask(self.padded_size, self.window_size, self.shift_size)[None, :, None]
            )
            if any(self.shift_size)
            else None
        )
        super().build(input_shape)

    def call(self, qkv, training=None):
        area, dim = qkv.shape[2], qkv.shape[3] // 3
        query, key, value = split_fused_qkv(ops.reshape(qkv, [-1, area, 3 * dim]), self.num_heads)
        bias = None
        if self.relative_position_bias:
            bias = ops.cast(
                ops.take(self.relative_position_bias_table, self._bias_index, axis=0), "float32"
            )  # (N*N, heads)
            bias = ops.transpose(ops.reshape(bias, [area, area, self.num_heads]), [2, 0, 1])

        def add_bias_and_mask(scores):  # (B * windows, heads, N, N)
            if bias is not None:
                scores += bias
            if self._mask is not None:
                scores = ops.reshape(scores, [-1, self.num_windows, self.num_heads, area, area]) + self._mask
                scores = ops.reshape(scores, [-1, self.num_heads, area, area])
            return scores

        context = merge_heads(
            attend(query, key, value, dropout=self.attn_dropout, training=training, add_to_scores=add_bias_and_mask)
        )
        return ops.reshape(context, [-1, self.num_windows, area, dim])

    def compute_output_shape(self, input_shape):
        return (*input_shape[:-1], input_shape[-1] // 3)

    def macs_per_image(self, input_shape):
        """`q @ k^T` and `probs @ v` in every window of one image."""
        windows, area, dim = input_shape[1], input_shape[2], input_shape[3] // 3
        return 2 * windows * area * area * dim

    def get_config(self):
        config = super().get_config()
        config.update(
            window_size=self.window_size,
            padded_size=self.padded_size,
            shift_size=self.shift_size,
            relative_position_bias=self.relative_position_bias,
        )
        return config


@register_serializable
class PatchMerging2x2(keras.layers.Layer):
    """Concatenates each 2x2 neighbourhood's channels, padding odd sizes with zeros.

    Channel order is timm's and the paper's: `[x(0,0), x(1,0), x(0,1), x(1,1)]`
    (row offset fastest), so timm's `downsample.norm` and `downsample.reduction`
    weights apply unchanged.

    Shapes: `(B, H, W, C)` -> `(B, ceil(H / 2), ceil(W / 2), 4 * C)`.
    """

    def call(self, x):
        height, width, channels = x.shape[1], x.shape[2], x.shape[3]
        if height % 2 or width % 2:
            x = ops.pad(x, [[0, 0], [0, height % 2], [0, width % 2], [0, 0]])
            height, width = height + height % 2, width + width % 2
        x = ops.reshape(x, [-1, height // 2, 2, width // 2, 2, channels])
        x = ops.transpose(x, [0, 1, 3, 4, 2, 5])  # (B, H/2, W/2, col offset, row offset, C)
        return ops.reshape(x, [-1, height // 2, width // 2, 4 * channels])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], (input_shape[1] + 1) // 2, (input_shape[2] + 1) // 2, 4 * input_shape[3])
