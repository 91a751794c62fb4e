"""Swin Transformer: a hierarchical backbone with shifted-window attention.

Paper:
    Swin Transformer: Hierarchical Vision Transformer using Shifted Windows
    (Liu et al., 2021), https://arxiv.org/abs/2103.14030

Layer names follow timm's module paths (`layers.1.blocks.0.attn.qkv` ->
`layers_1_blocks_0_attn_qkv`; patch merging opens a stage, as in timm), so timm
checkpoints load through the short map at the end of this file. Window
partition, cyclic shift and reverse are builtin-only TFLite ops
(`keras_vits/layers/swin_window.py`).
"""

import re
from collections.abc import Sequence

import numpy as np

from keras_vits.backend import keras, register_serializable
from keras_vits.layers import (
    LayerNorm,
    PatchMerging2x2,
    PositionEmbedding,
    WindowAttentionCore,
    WindowPartition,
    WindowReverse,
    classifier_head,
    dense_initializer,
    mlp_block,
    to_2tuple,
)
from keras_vits.layers.swin_window import stage_window_and_shift, window_padding
from keras_vits.layers.transformer import residual_branch
from keras_vits.models.base import (
    VitsModel,
    constructor_arguments,
    transformer_stage_size,
    validate_head_and_input,
    validate_stages,
)
from keras_vits.weights.resample import resample_pos_embed, resample_relative_position_bias_table
from keras_vits.weights.weight_map import WeightMap

SWIN_POS_EMBEDS = ("relative", "absolute", "absolute+relative", "none")

# ----------------------------------------------------------------------------- graph


def swin_block(
    x,
    *,
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
        num_heads: attention heads.
        window_size: `(wh, ww)`, already adapted to the map (`stage_window_and_shift`).
        shift_size: `(sh, sw)`; `(0, 0)` for W-MSA, else SW-MSA.
        mlp_ratio: MLP hidden width over `C`.
        qkv_bias: bias in the qkv projection.
        relative_position_bias: learn a relative position bias in attention.
        drop_rate, attn_drop_rate, drop_path_rate: as in `SwinTransformer`.
        pad_before_shift: padding order for maps that are not whole windows (see `WindowPartition`).
        name: timm's module path with `_` (`layers_0_blocks_1`).

    Returns: `(B, H, W, C)` tensor.
    """
    height, width, dim = x.shape[1], x.shape[2], x.shape[3]
    pad = window_padding((height, width), window_size)
    y = LayerNorm(epsilon=1e-5, name=f"{name}_norm1")(x)
    y = WindowPartition(
        window_size, shift_size=shift_size, pad_before_shift=pad_before_shift, name=f"{name}_window_partition"
    )(y)
    y = keras.layers.Dense(3 * dim, use_bias=qkv_bias, kernel_initializer=dense_initializer(), name=f"{name}_attn_qkv")(
        y
    )
    y = WindowAttentionCore(
        num_heads=num_heads,
        window_size=window_size,
        padded_size=(height + pad[0], width + pad[1]),
        shift_size=shift_size,
        relative_position_bias=relative_position_bias,
        attn_drop_rate=attn_drop_rate,
        name=f"{name}_attn",
    )(y)
    y = keras.layers.Dense(dim, kernel_initializer=dense_initializer(), name=f"{name}_attn_proj")(y)
    if drop_rate:
        y = keras.layers.Dropout(drop_rate, name=f"{name}_attn_proj_drop")(y)
    y = WindowReverse(
        window_size,
        feature_size=(height, width),
        shift_size=shift_size,
        pad_before_shift=pad_before_shift,
        name=f"{name}_window_reverse",
    )(y)
    x = residual_branch(x, y, drop_path_rate=drop_path_rate, name=name, index=1)
    y = LayerNorm(epsilon=1e-5, name=f"{name}_norm2")(x)
    y = mlp_block(y, int(dim * mlp_ratio), drop_rate=drop_rate, name=f"{name}_mlp")
    return residual_branch(x, y, drop_path_rate=drop_path_rate, name=name, index=2)


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
    >>> model = SwinTransformer(
    ...     image_size=64, embed_dim=16, depths=(2, 2), num_heads=(1, 2), window_size=4, num_classes=10
    ... )
    >>> model(np.zeros((1, 64, 64, 3), "float32")).shape
    TensorShape([1, 10])
    """

    def __init__(
        self,
        image_size: int | tuple[int, int] = 224,
        patch_size: int = 4,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        embed_dim: int = 96,
        depths: Sequence[int] = (2, 2, 6, 2),
        num_heads: Sequence[int] = (3, 6, 12, 24),
        window_size: int | tuple[int, int] = 7,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        shifted: bool = True,
        pos_embed: str = "relative",
        patch_norm: bool = True,
        pad_before_shift: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        name: str = "swin_transformer",
        **kwargs,
    ):
        depths, num_heads = tuple(depths), tuple(num_heads)
        validate_head_and_input(num_classes, in_chans)
        out_indices = validate_stages(len(depths), out_indices, num_heads=num_heads)
        if pos_embed not in SWIN_POS_EMBEDS:
            raise ValueError(f"pos_embed must be one of {SWIN_POS_EMBEDS}, got {pos_embed!r}.")
        if global_pool != "avg":
            raise ValueError(f"global_pool must be 'avg' for Swin, got {global_pool!r}.")
        for stage, heads in enumerate(num_heads):
            if (embed_dim * 2**stage) % heads:
                raise ValueError(
                    f"num_heads {num_heads} must divide each stage's width (embed_dim * 2**stage = "
                    f"{[embed_dim * 2**i for i in range(len(num_heads))]}); stage {stage} has {heads} heads."
                )
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
                    x,
                    num_heads=heads,
                    window_size=window,
                    shift_size=shift,
                    mlp_ratio=mlp_ratio,
                    qkv_bias=qkv_bias,
                    relative_position_bias=relative,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rate=float(next(rates)),
                    pad_before_shift=pad_before_shift,
                    name=f"layers_{stage}_blocks_{index}",
                )
            features.append(x)
            feature_info.append(dict(num_chs=int(x.shape[-1]), reduction=patch[0] * 2**stage, module=f"layers_{stage}"))
        if features_only:
            outputs = [features[i] for i in out_indices]
        else:
            x = LayerNorm(epsilon=1e-5, name="norm")(x)
            x = keras.layers.GlobalAveragePooling2D(name="head_global_pool")(x)
            outputs = classifier_head(x, num_classes, drop_rate=drop_rate, name="head_fc", drop_name="head_drop")
        super().__init__(inputs=images, outputs=outputs, config=config, name=name, **kwargs)
        self.feature_info = [feature_info[i] for i in out_indices] if features_only else feature_info

    def _layer_position(self, layer_name):
        """timm's grouping: the stem, then one depth per block; a stage's patch merging shares its first block's."""
        block = re.match(r"layers_(\d+)_(?:blocks_(\d+)|downsample)_", layer_name)
        if block:
            return self.block_position(int(block.group(1)), int(block.group(2) or 0))
        if layer_name.startswith(("patch_embed_", "absolute_pos_embed")):
            return self.STEM
        if layer_name == "norm":
            return self.AFTER_BLOCKS
        return self.HEAD

    @classmethod
    def estimate_size(cls, arguments):
        """`(parameters, activations for one image)` from the arguments (see `VitsModel.estimate_size`)."""
        patch = to_2tuple(arguments["patch_size"], "patch_size")
        window = to_2tuple(arguments["window_size"], "window_size")
        dim, in_chans = arguments["embed_dim"], arguments["in_chans"]
        size = to_2tuple(arguments["image_size"], "image_size")
        grid = [-(-s // p) for s, p in zip(size, patch)]
        parameters = patch[0] * patch[1] * in_chans * dim + 3 * dim
        activations = size[0] * size[1] * in_chans
        if arguments["pos_embed"] in ("absolute", "absolute+relative"):
            parameters += grid[0] * grid[1] * dim
        for stage, (depth, heads) in enumerate(zip(arguments["depths"], arguments["num_heads"])):
            if stage:
                parameters += 8 * dim * dim + 8 * dim  # merge: norm of 4C, 4C -> 2C
                dim, grid = 2 * dim, [-(-g // 2) for g in grid]
            win = [min(w, g) for w, g in zip(window, grid)]
            tokens = int(np.prod([-(-g // w) * w for g, w in zip(grid, win)]))
            block_parameters, block_activations = transformer_stage_size(
                tokens=tokens, keys=win[0] * win[1], dim=dim, depth=depth, heads=heads, mlp_ratio=arguments["mlp_ratio"]
            )
            table = (2 * win[0] - 1) * (2 * win[1] - 1) * heads
            parameters += block_parameters + depth * table
            activations += block_activations + depth * tokens * win[0] * win[1]  # the shift masks
        parameters += 2 * dim + (dim + 1) * arguments["num_classes"]
        return parameters, activations


# ----------------------------------------------------------------------------- weights

SWIN_WEIGHT_MAP = WeightMap(
    family="swin",
    # Buffers timm stores that this model recomputes from its arguments.
    ignore=(r"relative_position_index$", r"attn_mask$"),
    resamplers={
        r"relative_position_bias_table$": resample_relative_position_bias_table,
        r"^absolute_pos_embed$": resample_pos_embed,
    },
    head_modules=("head.fc",),
    unused_by_features=(r"^norm\.", r"^head\."),
)
SwinTransformer.weight_map = SWIN_WEIGHT_MAP
