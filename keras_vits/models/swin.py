"""Swin Transformer: a hierarchical backbone with shifted-window attention.

Paper:
    Swin Transformer: Hierarchical Vision Transformer using Shifted Windows
    (Liu et al., 2021), https://arxiv.org/abs/2103.14030

Layer names follow timm's module paths (`layers.1.blocks.0.attn.qkv` ->
`layers_1_blocks_0_attn_qkv`; patch merging opens a stage, as in timm), so timm
checkpoints load through the short map at the end of this file. Window
partition, cyclic shift and reverse are builtin-only TFLite ops
(`keras_vits/layers/window.py`).
"""

import numpy as np

from keras_vits.backend import keras, register_serializable
from keras_vits.layers import PositionEmbedding, mlp_block, to_2tuple
from keras_vits.layers.attention import dense_initializer
from keras_vits.layers.norm import LayerNorm
from keras_vits.layers.transformer import residual_branch
from keras_vits.layers.window import (
    PatchMerging2x2,
    WindowAttentionCore,
    WindowPartition,
    WindowReverse,
    stage_window_and_shift,
    window_padding,
)
from keras_vits.models.base import (
    Variant,
    VitsModel,
    constructor_arguments,
    validate_head_and_input,
    validate_stages,
)
from keras_vits.weights.resample import resample_abs_pos_embed
from keras_vits.weights.weight_map import WeightMap

SWIN_POS_EMBEDS = ("relative", "absolute", "absolute+relative", "none")

# ----------------------------------------------------------------------------- graph


def swin_block(
    x,
    num_heads,
    window_size,
    shift_size,
    mlp_ratio,
    qkv_bias,
    relative_position_bias,
    drop_rate,
    attn_drop_rate,
    drop_path_rate,
    pad_before_shift,
    name,
):
    """One Swin block: (shifted-)window attention then MLP, both pre-norm residual.

    Args:
        x: `(B, H, W, C)` tensor.
        window_size: `(wh, ww)`, already adapted to the map (`stage_window_and_shift`).
        shift_size: `(sh, sw)`; `(0, 0)` for W-MSA, else SW-MSA.
        relative_position_bias: learn a relative position bias in attention.
        pad_before_shift: padding order for maps that are not whole windows (see `WindowPartition`).
        name: timm's module path with `_` (`layers_0_blocks_1`).

    Returns: `(B, H, W, C)` tensor.
    """
    height, width, dim = x.shape[1], x.shape[2], x.shape[3]
    pad = window_padding((height, width), window_size)
    y = LayerNorm(epsilon=1e-5, name=f"{name}_norm1")(x)
    y = WindowPartition(window_size, shift_size, pad_before_shift, name=f"{name}_window_partition")(y)
    y = keras.layers.Dense(3 * dim, use_bias=qkv_bias, kernel_initializer=dense_initializer(), name=f"{name}_attn_qkv")(
        y
    )
    y = WindowAttentionCore(
        num_heads,
        window_size,
        (height + pad[0], width + pad[1]),
        shift_size,
        relative_position_bias=relative_position_bias,
        attn_drop_rate=attn_drop_rate,
        name=f"{name}_attn",
    )(y)
    y = keras.layers.Dense(dim, kernel_initializer=dense_initializer(), name=f"{name}_attn_proj")(y)
    if drop_rate:
        y = keras.layers.Dropout(drop_rate, name=f"{name}_attn_proj_drop")(y)
    y = WindowReverse(window_size, (height, width), shift_size, pad_before_shift, name=f"{name}_window_reverse")(y)
    x = residual_branch(x, y, None, drop_path_rate, name, 1)
    y = LayerNorm(epsilon=1e-5, name=f"{name}_norm2")(x)
    y = mlp_block(y, int(dim * mlp_ratio), drop_rate=drop_rate, name=f"{name}_mlp")
    return residual_branch(x, y, None, drop_path_rate, name, 2)


def patch_merging(x, name):
    """2x2 neighbours concatenated, normalised, and projected from 4C to 2C (timm's `PatchMerging`).

    `(B, H, W, C)` -> `(B, ceil(H / 2), ceil(W / 2), 2C)`.
    """
    dim = x.shape[-1]
    x = PatchMerging2x2(name=f"{name}_merge")(x)
    x = LayerNorm(epsilon=1e-5, name=f"{name}_norm")(x)
    return keras.layers.Dense(
        2 * dim, use_bias=False, kernel_initializer=dense_initializer(), name=f"{name}_reduction"
    )(x)


# ----------------------------------------------------------------------------- model


@register_serializable
class SwinTransformer(VitsModel):
    """Swin Transformer: four stages of (shifted-)window attention with patch merging between them.

    Args:
        image_size: int or `(height, width)`; any size: the image is padded to the
            patch size and each stage's map to whole windows. Defaults to 224.
        patch_size: int, the patch partition. Defaults to 4.
        in_chans: input channels. Defaults to 3.
        num_classes: classes of the head; 0 returns pooled features. Defaults to 1000.
        global_pool: `"avg"`, the mean over the last map. Defaults to `"avg"`.
        embed_dim: channels of the first stage, doubled at each merge. Defaults to 96.
        depths: blocks per stage. Defaults to `(2, 2, 6, 2)`.
        num_heads: attention heads per stage. Defaults to `(3, 6, 12, 24)`.
        window_size: int or `(wh, ww)`; shrinks (per axis, unshifted) where a map is smaller. Defaults to 7.
        mlp_ratio: MLP hidden width over the stage width. Defaults to 4.
        qkv_bias: bias in the qkv projections. Defaults to True.
        shifted: alternate regular and shifted windows (SW-MSA); False keeps every
            window regular (the paper's ablation). Defaults to True.
        pos_embed: `"relative"` (bias in attention), `"absolute"` (learned, added
            after the patch embedding), `"absolute+relative"` or `"none"`. Defaults to `"relative"`.
        patch_norm: LayerNorm after the patch embedding. Defaults to True.
        pad_before_shift: for maps that are not whole windows, pad then shift as the
            official detection code and HuggingFace do; False shifts then pads, as timm
            does. Identical wherever no padding is needed. Defaults to True.
        drop_rate: dropout after the embedding, in the blocks and before the head. Defaults to 0.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.
        drop_path_rate: stochastic depth, rising linearly over all blocks. Defaults to 0.
        features_only: return the stage maps instead of logits. Defaults to False.
        out_indices: stages returned when `features_only`; None means all. Defaults to None.
        name: model name. Defaults to `"swin_transformer"`.

    Input: `(B, H, W, in_chans)` float32, normalised.
    Output: `(B, num_classes)` logits; `(B, C_last)` features when `num_classes=0`;
    with `features_only`, a list of `(B, H / s, W / s, C_i)` maps, strides
    `s = 4, 8, 16, 32` and `C_i = embed_dim * 2**i` (rounded up for odd sizes).
    `model.feature_info` lists each map's channels and stride.

    Example:
    >>> model = SwinTransformer(image_size=64, embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10)
    >>> model(np.zeros((1, 64, 64, 3), "float32")).shape
    TensorShape([1, 10])
    """

    def __init__(
        self,
        image_size=224,
        patch_size=4,
        in_chans=3,
        num_classes=1000,
        global_pool="avg",
        embed_dim=96,
        depths=(2, 2, 6, 2),
        num_heads=(3, 6, 12, 24),
        window_size=7,
        mlp_ratio=4.0,
        qkv_bias=True,
        shifted=True,
        pos_embed="relative",
        patch_norm=True,
        pad_before_shift=True,
        drop_rate=0.0,
        attn_drop_rate=0.0,
        drop_path_rate=0.0,
        features_only=False,
        out_indices=None,
        name="swin_transformer",
        **kwargs,
    ):
        depths, num_heads = tuple(depths), tuple(num_heads)
        validate_head_and_input(num_classes, in_chans)
        out_indices = validate_stages(len(depths), out_indices, num_heads=num_heads)
        if pos_embed not in SWIN_POS_EMBEDS:
            raise ValueError(f"pos_embed must be one of {SWIN_POS_EMBEDS}, got {pos_embed!r}.")
        if global_pool != "avg":
            raise ValueError(f"global_pool must be 'avg' for Swin, got {global_pool!r}.")
        window_size = to_2tuple(window_size, "window_size")
        patch = to_2tuple(patch_size, "patch_size")
        config = constructor_arguments(type(self), locals())
        # --- functional graph
        height, width = to_2tuple(image_size, "image_size")
        images = keras.Input((height, width, in_chans), name="images")
        x = images
        pad = window_padding((height, width), patch)
        if pad[0] or pad[1]:
            x = keras.layers.ZeroPadding2D(((0, pad[0]), (0, pad[1])), name="patch_embed_pad")(x)
        x = keras.layers.Conv2D(embed_dim, patch, strides=patch, name="patch_embed_proj")(x)
        if patch_norm:
            x = LayerNorm(epsilon=1e-5, name="patch_embed_norm")(x)
        if pos_embed in ("absolute", "absolute+relative"):
            grid = tuple(x.shape[1:3])
            x = keras.layers.Reshape((grid[0] * grid[1], embed_dim), name="absolute_pos_embed_flatten")(x)
            x = PositionEmbedding(grid, num_prefix_tokens=0, name="absolute_pos_embed")(x)
            x = keras.layers.Reshape((*grid, embed_dim), name="absolute_pos_embed_unflatten")(x)
        if drop_rate:
            x = keras.layers.Dropout(drop_rate, name="pos_drop")(x)
        relative = pos_embed in ("relative", "absolute+relative")
        rates = iter(np.linspace(0.0, drop_path_rate, sum(depths)))
        features, feature_info = [], []
        for stage, (depth, heads) in enumerate(zip(depths, num_heads)):
            if stage > 0:
                x = patch_merging(x, name=f"layers_{stage}_downsample")
            feature_size = tuple(x.shape[1:3])
            for index in range(depth):
                target_shift = tuple(w // 2 for w in window_size) if shifted and index % 2 else (0, 0)
                window, shift = stage_window_and_shift(feature_size, window_size, target_shift)
                x = swin_block(
                    x, heads, window, shift, mlp_ratio, qkv_bias, relative,
                    drop_rate, attn_drop_rate, float(next(rates)), pad_before_shift,
                    name=f"layers_{stage}_blocks_{index}",
                )  # fmt: skip
            features.append(x)
            feature_info.append(dict(num_chs=int(x.shape[-1]), reduction=patch[0] * 2**stage, module=f"layers_{stage}"))
        if features_only:
            outputs = [features[i] for i in out_indices]
        else:
            x = LayerNorm(epsilon=1e-5, name="norm")(x)
            x = keras.layers.GlobalAveragePooling2D(name="head_global_pool")(x)
            if num_classes and drop_rate:
                x = keras.layers.Dropout(drop_rate, name="head_drop")(x)
            outputs = x
            if num_classes:
                outputs = keras.layers.Dense(
                    num_classes, kernel_initializer=dense_initializer(), dtype="float32", name="head_fc"
                )(x)
        super().__init__(inputs=images, outputs=outputs, config=config, name=name, **kwargs)
        self.feature_info = [feature_info[i] for i in out_indices] if features_only else feature_info


# ----------------------------------------------------------------------------- weights


def resample_relative_position_bias_table(value, layer):
    """Resizes a `((2w-1)^2, heads)` table to `layer`'s window, as timm's checkpoint filter does.

    timm's `resize_rel_pos_bias_table` (from BEiT): source offsets lie on a
    geometric progression stretched to cover the new table, and values are
    interpolated linearly, clamped at the edges.
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


def resample_absolute_pos_embed(value, layer):
    """Resizes a learned `(1, h*w, C)` (or `(1, h, w, C)`) absolute embedding to `layer`'s grid."""
    value = value.reshape(1, -1, value.shape[-1])
    if value.shape[1] == layer.grid_size[0] * layer.grid_size[1]:
        return value
    return resample_abs_pos_embed(value, layer.grid_size, num_prefix_tokens=0)


SWIN_WEIGHT_MAP = WeightMap(
    family="swin",
    # Buffers timm stores that this model recomputes from its arguments.
    ignore=(r"relative_position_index$", r"attn_mask$"),
    resamplers={
        r"relative_position_bias_table$": resample_relative_position_bias_table,
        r"^absolute_pos_embed$": resample_absolute_pos_embed,
    },
    head_modules=("head.fc",),
    unused_by_features=(r"^norm\.", r"^head\."),
)
SwinTransformer.weight_map = SWIN_WEIGHT_MAP

# ----------------------------------------------------------------------------- variants

_IMAGENET_MEAN, _IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)

_SWIN_SIZES = {
    "tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}

# name: size, window, image size, timm's default pretrained tag.
_SWIN_TABLE = {
    "swin_tiny_patch4_window7_224": ("tiny", 7, 224, "ms_in1k"),
    "swin_small_patch4_window7_224": ("small", 7, 224, "ms_in22k_ft_in1k"),
    "swin_base_patch4_window7_224": ("base", 7, 224, "ms_in22k_ft_in1k"),
    "swin_large_patch4_window7_224": ("large", 7, 224, "ms_in22k_ft_in1k"),
    "swin_base_patch4_window12_384": ("base", 12, 384, "ms_in22k_ft_in1k"),
    "swin_large_patch4_window12_384": ("large", 12, 384, "ms_in22k_ft_in1k"),
}

VARIANTS = {
    name: Variant(
        SwinTransformer,
        dict(image_size=image, patch_size=4, window_size=window, **_SWIN_SIZES[size]),
        SWIN_WEIGHT_MAP,
        dict(
            hf_hub_id=f"timm/{name}.{tag}",
            mean=_IMAGENET_MEAN,
            std=_IMAGENET_STD,
            crop_pct=1.0 if image == 384 else 0.9,
            num_classes=1000,
        ),
    )
    for name, (size, window, image, tag) in _SWIN_TABLE.items()
}
