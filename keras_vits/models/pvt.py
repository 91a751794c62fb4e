"""Pyramid Vision Transformer, v1 and v2: global attention made affordable by spatial reduction.

Papers:
    Pyramid Vision Transformer: A Versatile Backbone for Dense Prediction without
    Convolutions (Wang et al., 2021), https://arxiv.org/abs/2102.12122
    PVT v2: Improved Baselines with Pyramid Vision Transformer (Wang et al., 2022),
    https://arxiv.org/abs/2106.13797

v2 layer names follow timm's module paths (`stages.1.blocks.0.attn.kv` ->
`stages_1_blocks_0_attn_kv`). timm has no v1 and the official v1 files are
pickles, so v1 loads HuggingFace transformers' `PvtForImageClassification`
safetensors, through a rename table onto the same naming scheme.
"""

import re
from collections.abc import Sequence

import numpy as np

from keras_vits.backend import keras, register_serializable
from keras_vits.layers import (
    AdaptiveAveragePooling2D,
    LayerNorm,
    PositionEmbedding,
    PrependToken,
    SpatialReductionAttentionCore,
    XlaFriendlyDepthwiseConv2D,
    classifier_head,
    dense_initializer,
    mlp_block,
    patch_embed,
    to_2tuple,
)
from keras_vits.layers.transformer import residual_branch
from keras_vits.models.base import (
    VitsModel,
    constructor_arguments,
    transformer_stage_size,
    validate_head_and_input,
    validate_stages,
)
from keras_vits.weights.resample import resample_pos_embed_bilinear
from keras_vits.weights.weight_map import WeightMap

#: Linear SRA (PVT v2-li) pools keys and values to this size, whatever the input.
LINEAR_POOL_SIZE = 7

# ----------------------------------------------------------------------------- graph


def spatial_reduction_attention(
    x,
    *,
    grid,
    num_heads,
    sr_ratio,
    linear,
    qkv_bias,
    separate_kv,
    attn_drop_rate,
    proj_drop_rate,
    sr_epsilon,
    name,
):
    """Spatial-reduction attention (SRA): queries from every token, keys and values from a reduced map.

    Args:
        x: `(B, H, W, C)` map, or `(B, P + H * W, C)` tokens (P prefix tokens only where `sr_ratio == 1`).
        grid: `(H, W)`.
        num_heads: attention heads.
        sr_ratio: keys and values come from a `sr x sr`-strided conv of the map; 1 keeps every token.
        linear: PVT v2-li: average-pool to 7x7, 1x1 conv, norm, GELU (ignores `sr_ratio`).
        qkv_bias: bias in the q, k and v projections.
        separate_kv: separate `k` and `v` projections (PVT v1, as transformers stores it)
            rather than a fused `kv` (timm).
        attn_drop_rate: dropout on attention probabilities.
        proj_drop_rate: dropout after the output projection.
        sr_epsilon: LayerNorm epsilon after the reduction.
        name: prefix (`stages_0_blocks_1_attn`).

    Returns: a tensor of `x`'s shape.
    """
    dim = x.shape[-1]
    if not linear and sr_ratio > min(grid):
        raise ValueError(
            f"sr_ratios entry {sr_ratio} is larger than its stage's {grid[0]}x{grid[1]} map; use a larger "
            f"image_size or a smaller sr_ratio ({name})."
        )
    query = keras.layers.Dense(dim, use_bias=qkv_bias, kernel_initializer=dense_initializer(), name=f"{name}_q")(x)
    source = x
    if linear or sr_ratio > 1:
        if len(x.shape) == 3:
            if x.shape[1] != grid[0] * grid[1]:
                raise ValueError(f"Spatial reduction needs patch tokens only, got {x.shape[1]} tokens for grid {grid}.")
            source = keras.layers.Reshape((*grid, dim), name=f"{name}_to_map")(x)
        if linear:
            source = AdaptiveAveragePooling2D(LINEAR_POOL_SIZE, name=f"{name}_pool")(source)
            source = keras.layers.Conv2D(dim, 1, name=f"{name}_sr")(source)
        else:
            source = keras.layers.Conv2D(dim, sr_ratio, strides=sr_ratio, name=f"{name}_sr")(source)
        source = LayerNorm(epsilon=sr_epsilon, name=f"{name}_norm")(source)
        if linear:
            source = keras.layers.Activation("gelu", name=f"{name}_act")(source)

    def dense(width, suffix):
        return keras.layers.Dense(
            width, use_bias=qkv_bias, kernel_initializer=dense_initializer(), name=f"{name}_{suffix}"
        )

    if separate_kv:
        inputs = [query, dense(dim, "k")(source), dense(dim, "v")(source)]
    else:
        inputs = [query, dense(2 * dim, "kv")(source)]
    out = SpatialReductionAttentionCore(num_heads=num_heads, attn_drop_rate=attn_drop_rate, name=f"{name}_core")(inputs)
    out = keras.layers.Dense(dim, kernel_initializer=dense_initializer(), name=f"{name}_proj")(out)
    if proj_drop_rate:
        out = keras.layers.Dropout(proj_drop_rate, name=f"{name}_proj_drop")(out)
    return out


def pvt_v2_block(
    x, *, num_heads, mlp_ratio, sr_ratio, linear, qkv_bias, drop_rate, attn_drop_rate, drop_path_rate, name
):
    """PVT v2 block on a `(B, H, W, C)` map: SRA, then an MLP with a 3x3 depth-wise conv, both pre-norm."""
    dim = x.shape[-1]
    y = LayerNorm(epsilon=1e-6, name=f"{name}_norm1")(x)
    y = spatial_reduction_attention(
        y,
        grid=tuple(x.shape[1:3]),
        num_heads=num_heads,
        sr_ratio=sr_ratio,
        linear=linear,
        qkv_bias=qkv_bias,
        separate_kv=False,
        attn_drop_rate=attn_drop_rate,
        proj_drop_rate=drop_rate,
        sr_epsilon=1e-5,
        name=f"{name}_attn",
    )
    x = residual_branch(x, y, drop_path_rate=drop_path_rate, name=name, index=1)
    y = LayerNorm(epsilon=1e-6, name=f"{name}_norm2")(x)
    y = keras.layers.Dense(int(dim * mlp_ratio), kernel_initializer=dense_initializer(), name=f"{name}_mlp_fc1")(y)
    if linear:
        y = keras.layers.ReLU(name=f"{name}_mlp_relu")(y)
    y = XlaFriendlyDepthwiseConv2D(kernel_size=3, padding="same", name=f"{name}_mlp_dwconv")(y)
    y = keras.layers.Activation("gelu", name=f"{name}_mlp_act")(y)
    if drop_rate:
        y = keras.layers.Dropout(drop_rate, name=f"{name}_mlp_drop1")(y)
    y = keras.layers.Dense(dim, kernel_initializer=dense_initializer(), name=f"{name}_mlp_fc2")(y)
    if drop_rate:
        y = keras.layers.Dropout(drop_rate, name=f"{name}_mlp_drop2")(y)
    return residual_branch(x, y, drop_path_rate=drop_path_rate, name=name, index=2)


def pvt_v1_block(
    tokens, *, grid, num_heads, mlp_ratio, sr_ratio, qkv_bias, drop_rate, attn_drop_rate, drop_path_rate, name
):
    """PVT v1 block on `(B, P + H * W, C)` tokens: SRA and a plain MLP, both pre-norm."""
    dim = tokens.shape[-1]
    y = LayerNorm(epsilon=1e-6, name=f"{name}_norm1")(tokens)
    y = spatial_reduction_attention(
        y,
        grid=grid,
        num_heads=num_heads,
        sr_ratio=sr_ratio,
        linear=False,
        qkv_bias=qkv_bias,
        separate_kv=True,
        attn_drop_rate=attn_drop_rate,
        proj_drop_rate=drop_rate,
        sr_epsilon=1e-6,
        name=f"{name}_attn",
    )
    tokens = residual_branch(tokens, y, drop_path_rate=drop_path_rate, name=name, index=1)
    y = LayerNorm(epsilon=1e-6, name=f"{name}_norm2")(tokens)
    y = mlp_block(y, int(dim * mlp_ratio), drop_rate=drop_rate, name=f"{name}_mlp")
    return residual_branch(tokens, y, drop_path_rate=drop_path_rate, name=name, index=2)


def overlapping_patch_embed(x, *, embed_dim, kernel_size, stride, name):
    """Conv with `kernel // 2` zero padding on every side (PyTorch's, not TF's "same"), then LayerNorm."""
    pad = kernel_size // 2
    x = keras.layers.ZeroPadding2D(pad, name=f"{name}_pad")(x)
    x = keras.layers.Conv2D(embed_dim, kernel_size, strides=stride, name=f"{name}_proj")(x)
    return LayerNorm(epsilon=1e-5, name=f"{name}_norm")(x)


def _pyramid_graph(config, build_stage, build_head):
    """Input, stages, then stage maps or the head: the graph PVT v1 and v2 share.

    Args:
        config: the model's constructor arguments (`out_indices` resolved).
        build_stage: `(x, stage, drop_path_rates) -> (x, stage_map, reduction)`: one stage
            from the previous stage's output, with its blocks' stochastic-depth rates.
        build_head: the last stage's output -> logits (or pooled features).

    Returns: `(images, outputs, feature_info)`.
    """
    images = keras.Input((*to_2tuple(config["image_size"], "image_size"), config["in_chans"]), name="images")
    rates = iter(np.linspace(0.0, config["drop_path_rate"], sum(config["depths"])))
    x, maps, feature_info = images, [], []
    for stage, depth in enumerate(config["depths"]):
        x, stage_map, reduction = build_stage(x, stage, [float(next(rates)) for _ in range(depth)])
        maps.append(stage_map)
        feature_info.append(dict(num_chs=config["embed_dims"][stage], reduction=reduction, module=f"stages_{stage}"))
    if not config["features_only"]:
        return images, build_head(x), feature_info
    chosen = config["out_indices"]
    return images, [maps[i] for i in chosen], [feature_info[i] for i in chosen]


class _PyramidBase(VitsModel):
    """Arguments and checks PVT v1 and v2 share."""

    def _check(self, args):
        """The checks both versions share, on their `__init__` arguments; returns `out_indices` resolved."""
        in_chans, num_classes, global_pool, depths = (
            args["in_chans"],
            args["num_classes"],
            args["global_pool"],
            args["depths"],
        )
        embed_dims, num_heads, mlp_ratios, sr_ratios = (
            args[k] for k in ("embed_dims", "num_heads", "mlp_ratios", "sr_ratios")
        )
        out_indices = args["out_indices"]
        validate_head_and_input(num_classes, in_chans)
        if global_pool not in self.GLOBAL_POOLS:
            raise ValueError(f"global_pool must be one of {self.GLOBAL_POOLS}, got {global_pool!r}.")
        out_indices = validate_stages(
            len(depths),
            out_indices,
            embed_dims=embed_dims,
            num_heads=num_heads,
            mlp_ratios=mlp_ratios,
            sr_ratios=sr_ratios,
        )
        for dim, heads in zip(embed_dims, num_heads):
            if dim % heads:
                raise ValueError(f"embed_dims {tuple(embed_dims)} must be divisible by num_heads {tuple(num_heads)}.")
        for dim, ratio in zip(embed_dims, mlp_ratios):
            if int(dim * ratio) < 1:
                raise ValueError(f"mlp_ratios {mlp_ratios} give an MLP of width 0 for embed_dims {embed_dims}.")
        return out_indices

    def _layer_position(self, layer_name):
        """timm's grouping for PVT v2: the first patch embedding, then one depth per stage (blocks, norm and
        downsampling together). v1 the same way: its first stage's patch and position embeddings are the stem,
        the class token enters with the last stage, and its final norm goes with the last stage."""
        if layer_name.startswith(("patch_embed_", "stages_0_patch_embed_", "stages_0_pos_embed")):
            return self.STEM
        stage = re.match(r"stages_(\d+)_", layer_name)
        if stage:
            return self.block_position(int(stage.group(1)), 0)
        if layer_name == "norm":
            return self.AFTER_BLOCKS
        return self.HEAD

    @classmethod
    def estimate_size(cls, arguments):
        """`(parameters, activations for one image)` from the arguments (see `VitsModel.estimate_size`)."""
        size = to_2tuple(arguments["image_size"], "image_size")
        channels, linear = arguments["in_chans"], arguments.get("linear", False)
        v1 = "patch_sizes" in arguments
        patches = arguments["patch_sizes"] if v1 else (4,) + (2,) * (len(arguments["depths"]) - 1)
        grid, parameters, activations = list(size), 0, size[0] * size[1] * channels
        stages = zip(arguments["embed_dims"], arguments["depths"], arguments["num_heads"])
        for stage, (dim, depth, heads) in enumerate(stages):
            patch, ratio = patches[stage], arguments["mlp_ratios"][stage]
            sr = arguments["sr_ratios"][stage]
            kernel = patch if v1 else (7 if stage == 0 else 3)
            grid = [g // patch for g in grid] if v1 else [-(-g // patch) for g in grid]
            tokens = grid[0] * grid[1] + int(v1 and stage == len(arguments["depths"]) - 1)
            keys = (
                LINEAR_POOL_SIZE**2 if linear else (max(1, grid[0] // sr) * max(1, grid[1] // sr) if sr > 1 else tokens)
            )
            block_parameters, block_activations = transformer_stage_size(
                tokens=tokens, keys=keys, dim=dim, depth=depth, heads=heads, mlp_ratio=ratio
            )
            reduction = (dim * dim + 3 * dim) if linear else ((sr * sr * dim * dim + 3 * dim) if sr > 1 else 0)
            hidden = int(dim * ratio)
            extra = 0 if v1 else 10 * hidden  # the depth-wise conv of the MLP
            parameters += block_parameters + depth * (reduction + extra)
            parameters += (
                kernel * kernel * channels * dim
                + 3 * dim
                + (tokens * dim + dim * (tokens > grid[0] * grid[1]) if v1 else 2 * dim)
            )
            activations += block_activations + depth * (0 if v1 else 2 * tokens * hidden)
            channels = dim
        parameters += (channels + 1) * arguments["num_classes"] + 2 * channels * v1
        return parameters, activations


# ----------------------------------------------------------------------------- models


@register_serializable
class PyramidVisionTransformerV2(_PyramidBase):
    """PVT v2: overlapping patch embeddings, spatial-reduction attention, a conv in the MLP, no position embedding.

    Args:
        image_size: int or `(height, width)`; any size (there is no position embedding). Defaults to 224.
        in_chans: input channels. Defaults to 3.
        num_classes: classes of the head; 0 returns pooled features. Defaults to 1000.
        global_pool: `"avg"`, the mean over the last map. Defaults to `"avg"`.
        embed_dims: channels per stage. Defaults to `(64, 128, 320, 512)`.
        depths: blocks per stage. Defaults to `(3, 4, 6, 3)` (b2).
        num_heads: attention heads per stage. Defaults to `(1, 2, 5, 8)`.
        mlp_ratios: MLP hidden width over the stage width. Defaults to `(8, 8, 4, 4)`.
        sr_ratios: spatial reduction of keys and values per stage. Defaults to `(8, 4, 2, 1)`.
        qkv_bias: bias in the q and kv projections. Defaults to True.
        linear: linear SRA (v2-li): keys and values pooled to 7x7, ReLU in the MLP. Defaults to False.
        drop_rate: dropout in the blocks and before the head. Defaults to 0.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.
        drop_path_rate: stochastic depth, rising linearly over all blocks. Defaults to 0.
        features_only: return the stage maps instead of logits. Defaults to False.
        out_indices: stages returned when `features_only`; None means all. Defaults to None.
        name: model name. Defaults to `"pvt_v2"`.

    Input: `(B, H, W, in_chans)` float32, normalised.
    Output: `(B, num_classes)` logits, `(B, embed_dims[-1])` when `num_classes=0`, or with
    `features_only` the normalised stage maps `(B, H / s, W / s, embed_dims[i])`, `s = 4, 8, 16, 32`.

    Example:
    >>> model = PyramidVisionTransformerV2(
    ...     image_size=64, embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 2), num_classes=10
    ... )
    >>> model(np.zeros((1, 64, 64, 3), "float32")).shape
    TensorShape([1, 10])
    """

    GLOBAL_POOLS = ("avg",)

    def __init__(
        self,
        image_size: int | tuple[int, int] = 224,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "avg",
        embed_dims: Sequence[int] = (64, 128, 320, 512),
        depths: Sequence[int] = (3, 4, 6, 3),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        mlp_ratios: Sequence[float] = (8.0, 8.0, 4.0, 4.0),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        qkv_bias: bool = True,
        linear: bool = False,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        name: str = "pvt_v2",
        **kwargs,
    ):
        embed_dims, depths, num_heads = tuple(embed_dims), tuple(depths), tuple(num_heads)
        mlp_ratios, sr_ratios = tuple(mlp_ratios), tuple(sr_ratios)
        out_indices = self._check(locals())
        config = constructor_arguments(type(self), locals())

        def build_stage(x, stage, rates):
            if stage == 0:
                x = overlapping_patch_embed(x, embed_dim=embed_dims[0], kernel_size=7, stride=4, name="patch_embed")
            else:
                embed_name = f"stages_{stage}_downsample"
                x = overlapping_patch_embed(x, embed_dim=embed_dims[stage], kernel_size=3, stride=2, name=embed_name)
            for index, rate in enumerate(rates):
                x = pvt_v2_block(
                    x,
                    num_heads=num_heads[stage],
                    mlp_ratio=mlp_ratios[stage],
                    sr_ratio=sr_ratios[stage],
                    linear=linear,
                    qkv_bias=qkv_bias,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rate=rate,
                    name=f"stages_{stage}_blocks_{index}",
                )
            x = LayerNorm(epsilon=1e-6, name=f"stages_{stage}_norm")(x)
            return x, x, 4 * 2**stage

        def build_head(x):
            x = keras.layers.GlobalAveragePooling2D(name="head_global_pool")(x)
            return classifier_head(x, num_classes, drop_rate=drop_rate, name="head")

        images, outputs, feature_info = _pyramid_graph(config, build_stage, build_head)
        super().__init__(inputs=images, outputs=outputs, config=config, name=name, **kwargs)
        self.feature_info = feature_info


@register_serializable
class PyramidVisionTransformer(_PyramidBase):
    """PVT v1: non-overlapping patch embeddings, learned position embeddings, spatial-reduction attention.

    Args:
        image_size: int or `(height, width)`; position embeddings are built for it
            (and resampled bilinearly from checkpoints of another size, as the official code does). Defaults to 224.
        in_chans: input channels. Defaults to 3.
        num_classes: classes of the head; 0 returns the class-token features. Defaults to 1000.
        global_pool: `"token"`, the class token of the last stage. Defaults to `"token"`.
        patch_sizes: patch size of each stage's embedding. Defaults to `(4, 2, 2, 2)`.
        embed_dims: channels per stage. Defaults to `(64, 128, 320, 512)`.
        depths: blocks per stage. Defaults to `(2, 2, 2, 2)` (tiny).
        num_heads: attention heads per stage. Defaults to `(1, 2, 5, 8)`.
        mlp_ratios: MLP hidden width over the stage width. Defaults to `(8, 8, 4, 4)`.
        sr_ratios: spatial reduction per stage; the last stage (with the class token) must be 1.
            Defaults to `(8, 4, 2, 1)`.
        qkv_bias: bias in the q, k and v projections. Defaults to True.
        drop_rate: dropout in the blocks and before the head. Defaults to 0.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.
        drop_path_rate: stochastic depth, rising linearly over all blocks. Defaults to 0.
        features_only: return the stage maps (before the final norm, class token removed). Defaults to False.
        out_indices: stages returned when `features_only`; None means all. Defaults to None.
        name: model name. Defaults to `"pvt"`.

    Input: `(B, H, W, in_chans)` float32, normalised.
    Output: `(B, num_classes)` logits, `(B, embed_dims[-1])` when `num_classes=0`, or with
    `features_only` the stage maps `(B, H / s, W / s, embed_dims[i])`, `s = 4, 8, 16, 32`.

    Example:
    >>> model = PyramidVisionTransformer(
    ...     image_size=64, embed_dims=(8, 16, 24, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 1, 2), num_classes=10
    ... )
    >>> model(np.zeros((1, 64, 64, 3), "float32")).shape
    TensorShape([1, 10])
    """

    GLOBAL_POOLS = ("token",)

    def __init__(
        self,
        image_size: int | tuple[int, int] = 224,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "token",
        patch_sizes: Sequence[int] = (4, 2, 2, 2),
        embed_dims: Sequence[int] = (64, 128, 320, 512),
        depths: Sequence[int] = (2, 2, 2, 2),
        num_heads: Sequence[int] = (1, 2, 5, 8),
        mlp_ratios: Sequence[float] = (8.0, 8.0, 4.0, 4.0),
        sr_ratios: Sequence[int] = (8, 4, 2, 1),
        qkv_bias: bool = True,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        name: str = "pvt",
        **kwargs,
    ):
        embed_dims, depths, num_heads, patch_sizes = (
            tuple(embed_dims),
            tuple(depths),
            tuple(num_heads),
            tuple(patch_sizes),
        )
        mlp_ratios, sr_ratios = tuple(mlp_ratios), tuple(sr_ratios)
        out_indices = self._check(locals())
        validate_stages(len(depths), out_indices=None, patch_sizes=patch_sizes)
        if sr_ratios[-1] != 1:
            raise ValueError(f"The last stage holds the class token and needs sr_ratio 1, got sr_ratios {sr_ratios}.")
        config = constructor_arguments(type(self), locals())

        last = len(depths) - 1

        def build_stage(x, stage, rates):
            """The stage's map `(B, h, w, C)`; the last stage (class token first) hands its tokens to the head."""
            name_, patch, dim = f"stages_{stage}", patch_sizes[stage], embed_dims[stage]
            grid = (x.shape[1] // patch, x.shape[2] // patch)
            x = patch_embed(x, patch_size=patch, embed_dim=dim, strict=False, name=f"{name_}_patch_embed")
            x = LayerNorm(epsilon=1e-6, name=f"{name_}_patch_embed_norm")(x)
            prefix = int(stage == last)
            if prefix:
                x = PrependToken(initializer_stddev=0.02, name=f"{name_}_cls_token")(x)
            x = PositionEmbedding(grid, num_prefix_tokens=prefix, name=f"{name_}_pos_embed")(x)
            if drop_rate:
                x = keras.layers.Dropout(drop_rate, name=f"{name_}_pos_drop")(x)
            for index, rate in enumerate(rates):
                x = pvt_v1_block(
                    x,
                    grid=grid,
                    num_heads=num_heads[stage],
                    mlp_ratio=mlp_ratios[stage],
                    sr_ratio=sr_ratios[stage],
                    qkv_bias=qkv_bias,
                    drop_rate=drop_rate,
                    attn_drop_rate=attn_drop_rate,
                    drop_path_rate=rate,
                    name=f"{name_}_blocks_{index}",
                )
            tokens = x
            if prefix:
                x = keras.layers.Cropping1D((prefix, 0), name=f"{name_}_drop_cls")(x)
            stage_map = keras.layers.Reshape((*grid, dim), name=f"{name_}_to_map")(x)
            return (tokens if prefix else stage_map), stage_map, int(np.prod(patch_sizes[: stage + 1]))

        def build_head(tokens):
            x = LayerNorm(epsilon=1e-6, name="norm")(tokens)
            x = keras.layers.Cropping1D((0, x.shape[1] - 1), name="pool_crop")(x)
            x = keras.layers.Reshape((embed_dims[-1],), name="pool")(x)
            return classifier_head(x, num_classes, drop_rate=drop_rate, name="head")

        images, outputs, feature_info = _pyramid_graph(config, build_stage, build_head)
        super().__init__(inputs=images, outputs=outputs, config=config, name=name, **kwargs)
        self.feature_info = feature_info


# ----------------------------------------------------------------------------- weights


PVT_V2_WEIGHT_MAP = WeightMap(family="pvt_v2", head_modules=("head",), unused_by_features=(r"^head\.",))

# transformers' PvtForImageClassification keys, renamed onto this module's layer names.
PVT_V1_WEIGHT_MAP = WeightMap(
    family="pvt_v1",
    renames=(
        (r"^pvt\.encoder\.patch_embeddings\.(\d+)\.projection\.", r"stages.\1.patch_embed.proj."),
        (r"^pvt\.encoder\.patch_embeddings\.(\d+)\.layer_norm\.", r"stages.\1.patch_embed.norm."),
        (r"^pvt\.encoder\.patch_embeddings\.(\d+)\.position_embeddings$", r"stages.\1.pos_embed.embedding"),
        (r"^pvt\.encoder\.patch_embeddings\.(\d+)\.cls_token$", r"stages.\1.cls_token.token"),
        (r"^pvt\.encoder\.block\.(\d+)\.(\d+)\.", r"stages.\1.blocks.\2."),
        (r"\.layer_norm_1\.", ".norm1."),
        (r"\.layer_norm_2\.", ".norm2."),
        (r"\.attention\.self\.query\.", ".attn.q."),
        (r"\.attention\.self\.key\.", ".attn.k."),
        (r"\.attention\.self\.value\.", ".attn.v."),
        (r"\.attention\.self\.sequence_reduction\.", ".attn.sr."),
        (r"\.attention\.self\.layer_norm\.", ".attn.norm."),
        (r"\.attention\.output\.dense\.", ".attn.proj."),
        (r"\.mlp\.dense1\.", ".mlp.fc1."),
        (r"\.mlp\.dense2\.", ".mlp.fc2."),
        (r"^pvt\.encoder\.layer_norm\.", "norm."),
        (r"^classifier\.", "head."),
    ),
    resamplers={r"position_embeddings$": resample_pos_embed_bilinear},
    head_modules=("classifier",),
    unused_by_features=(r"^pvt\.encoder\.layer_norm\.", r"^classifier\."),
)
PyramidVisionTransformerV2.weight_map = PVT_V2_WEIGHT_MAP
PyramidVisionTransformer.weight_map = PVT_V1_WEIGHT_MAP
