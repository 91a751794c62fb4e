"""Vision Transformer (ViT) and the data-efficient, distilled DeiT.

Papers:
    An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale
    (Dosovitskiy et al., 2020), https://arxiv.org/abs/2010.11929
    Training data-efficient image transformers & distillation through attention
    (Touvron et al., 2020), https://arxiv.org/abs/2012.12877

Layer names follow timm's module paths (`blocks.3.attn.qkv` -> `blocks_3_attn_qkv`),
so timm checkpoints load through a short declarative map at the end of this file.
"""

import numpy as np

from keras_vits.backend import keras, register_serializable
from keras_vits.layers import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
    LayerNorm,
    PositionEmbedding,
    PrependToken,
    classifier_head,
    patch_embed,
    patch_grid,
    to_2tuple,
    transformer_block,
)
from keras_vits.layers.tokens import POSITION_EMBEDDING_KINDS
from keras_vits.models.base import Variant, VitsModel, constructor_arguments, validate_head_and_input
from keras_vits.weights.resample import resample_pos_embed
from keras_vits.weights.weight_map import WeightMap

GLOBAL_POOLS = ("token", "avg")
DEIT_HEADS = ("avg", "cls", "dist")

# ----------------------------------------------------------------------------- graph


def _validate_vit_args(*, in_chans, depth, num_classes, pos_embed, global_pool, class_token):
    validate_head_and_input(num_classes, in_chans)
    if not isinstance(depth, int) or depth < 1:
        raise ValueError(f"depth must be a positive int, got {depth!r}.")
    if pos_embed not in POSITION_EMBEDDING_KINDS:
        raise ValueError(f"pos_embed must be one of {POSITION_EMBEDDING_KINDS}, got {pos_embed!r}.")
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}.")
    if global_pool == "token" and not class_token:
        raise ValueError("global_pool='token' needs class_token=True; use global_pool='avg' without a class token.")


def _encoder(
    images,
    *,
    num_prefix_tokens,
    patch_size,
    embed_dim,
    depth,
    num_heads,
    mlp_ratio,
    qkv_bias,
    pos_embed,
    init_values,
    drop_rate,
    attn_drop_rate,
    drop_path_rate,
):
    """Patch embedding, prefix tokens, position embedding and the blocks.

    Returns: `(B, P + h * w, C)` tokens before the final norm; `P` is 0, 1
    (class token) or 2 (class and distillation tokens, in that order).
    """
    grid = patch_grid(tuple(images.shape[1:3]), patch_size)
    x = patch_embed(images, patch_size=patch_size, embed_dim=embed_dim, name="patch_embed")
    if num_prefix_tokens == 2:
        x = PrependToken(initializer_stddev=0.02, name="dist_token")(x)
    if num_prefix_tokens >= 1:
        x = PrependToken(initializer_stddev=1e-6, name="cls_token")(x)
    if pos_embed != "none":
        x = PositionEmbedding(grid, num_prefix_tokens=num_prefix_tokens, kind=pos_embed, name="pos_embed")(x)
    if drop_rate:
        x = keras.layers.Dropout(drop_rate, name="pos_drop")(x)
    for index, rate in enumerate(np.linspace(0.0, drop_path_rate, depth)):
        x = transformer_block(
            x,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=float(rate),
            init_values=init_values,
            name=f"blocks_{index}",
        )
    return x


def _take_token(tokens, index, name):
    """`tokens[:, index]` from standard layers: `(B, N, C)` -> `(B, C)`."""
    length, dim = tokens.shape[1], tokens.shape[2]
    x = keras.layers.Cropping1D((index, length - index - 1), name=f"{name}_crop")(tokens)
    return keras.layers.Reshape((dim,), name=name)(x)


def _image_input(image_size, in_chans):
    height, width = to_2tuple(image_size, "image_size")
    return keras.Input((height, width, in_chans), name="images")


# ----------------------------------------------------------------------------- models


@register_serializable
class VisionTransformer(VitsModel):
    """Vision Transformer: patches, a class token, pre-norm transformer blocks, a linear head.

    Args:
        image_size: int or `(height, width)`, divisible by `patch_size`. Defaults to 224.
        patch_size: int or `(ph, pw)`. Defaults to 16.
        in_chans: input channels (1, 3 or more). Defaults to 3.
        num_classes: classes of the head; 0 returns pooled features. Defaults to 1000.
        global_pool: `"token"` (class token) or `"avg"` (mean of patch tokens). Defaults to `"token"`.
        embed_dim: token width. Defaults to 768.
        depth: number of blocks. Defaults to 12.
        num_heads: attention heads. Defaults to 12.
        mlp_ratio: MLP hidden width over `embed_dim`. Defaults to 4.
        qkv_bias: bias in the qkv projection. Defaults to True.
        class_token: prepend a class token. Defaults to True.
        pos_embed: `"learned"`, `"sincos1d"`, `"sincos2d"` or `"none"`. Defaults to `"learned"`.
        init_values: layer-scale initial value; None disables layer scale. Defaults to None.
        fc_norm: normalise after pooling instead of before; None means "when
            `global_pool='avg'`", as in timm. Defaults to None.
        drop_rate: dropout after the position embedding, in the blocks and before the head. Defaults to 0.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.
        drop_path_rate: stochastic depth, rising linearly to this rate over the blocks. Defaults to 0.
        name: model name. Defaults to `"vision_transformer"`.

    Input: `(B, H, W, in_chans)` float32, normalised as the weights expect.
    Output: `(B, num_classes)` logits, or `(B, embed_dim)` features when `num_classes=0`.

    Example:
    >>> model = VisionTransformer(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)
    >>> model(np.zeros((2, 32, 32, 3), "float32")).shape
    TensorShape([2, 10])
    """

    def __init__(
        self,
        image_size: int | tuple[int, int] = 224,
        patch_size: int | tuple[int, int] = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        global_pool: str = "token",
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        class_token: bool = True,
        pos_embed: str = "learned",
        init_values: float | None = None,
        fc_norm: bool | None = None,
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        name: str = "vision_transformer",
        **kwargs,
    ):
        _validate_vit_args(
            in_chans=in_chans,
            depth=depth,
            num_classes=num_classes,
            pos_embed=pos_embed,
            global_pool=global_pool,
            class_token=class_token,
        )
        config = constructor_arguments(type(self), locals())
        # --- functional graph
        images = _image_input(image_size, in_chans)
        num_prefix_tokens = int(bool(class_token))
        x = _encoder(
            images,
            num_prefix_tokens=num_prefix_tokens,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            pos_embed=pos_embed,
            init_values=init_values,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
        )
        use_fc_norm = global_pool == "avg" if fc_norm is None else fc_norm
        if not use_fc_norm:
            x = LayerNorm(epsilon=1e-6, name="norm")(x)
        if global_pool == "token":
            pooled = _take_token(x, index=0, name="pool")
        else:
            x = keras.layers.Cropping1D((num_prefix_tokens, 0), name="pool_crop")(x)
            pooled = keras.layers.GlobalAveragePooling1D(name="pool")(x)
        if use_fc_norm:
            pooled = LayerNorm(epsilon=1e-6, name="fc_norm")(pooled)
        outputs = classifier_head(pooled, num_classes, drop_rate=drop_rate, name="head")
        super().__init__(inputs=images, outputs=outputs, config=config, name=name, **kwargs)
        self.num_prefix_tokens = num_prefix_tokens
        self.grid_size = patch_grid(image_size, patch_size)


@register_serializable
class DeiT(VitsModel):
    """DeiT with distillation: class and distillation tokens, each with its own head.

    In training (`training=True`) it returns both heads' logits, `(cls, dist)`,
    so the class head learns from labels and the distillation head from the
    teacher. In inference it returns the head chosen by `head`: `"avg"`, the
    mean of both (the DeiT paper's default), or `"cls"` / `"dist"` alone.

    Args:
        image_size: int or `(height, width)`, divisible by `patch_size`. Defaults to 224.
        patch_size: int or `(ph, pw)`. Defaults to 16.
        in_chans: input channels. Defaults to 3.
        num_classes: classes of both heads; 0 returns token features. Defaults to 1000.
        embed_dim: token width. Defaults to 768.
        depth: number of blocks. Defaults to 12.
        num_heads: attention heads. Defaults to 12.
        mlp_ratio: MLP hidden width over `embed_dim`. Defaults to 4.
        qkv_bias: bias in the qkv projection. Defaults to True.
        pos_embed: `"learned"`, `"sincos1d"`, `"sincos2d"` or `"none"`. Defaults to `"learned"`.
        init_values: layer-scale initial value; None disables it. Defaults to None.
        head: inference output, `"avg"`, `"cls"` or `"dist"`. Defaults to `"avg"`.
        drop_rate: dropout after the position embedding, in the blocks and before the heads. Defaults to 0.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.
        drop_path_rate: stochastic depth, rising linearly to this rate. Defaults to 0.
        name: model name. Defaults to `"deit"`.

    Input: `(B, H, W, in_chans)` float32, normalised.
    Output: inference `(B, num_classes)`; training a pair of `(B, num_classes)`.

    Example:
    >>> model = DeiT(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)
    >>> cls_logits, dist_logits = model(np.zeros((1, 32, 32, 3), "float32"), training=True)
    >>> model(np.zeros((1, 32, 32, 3), "float32")).shape
    TensorShape([1, 10])
    """

    def __init__(
        self,
        image_size: int | tuple[int, int] = 224,
        patch_size: int | tuple[int, int] = 16,
        in_chans: int = 3,
        num_classes: int = 1000,
        embed_dim: int = 768,
        depth: int = 12,
        num_heads: int = 12,
        mlp_ratio: float = 4.0,
        qkv_bias: bool = True,
        pos_embed: str = "learned",
        init_values: float | None = None,
        head: str = "avg",
        drop_rate: float = 0.0,
        attn_drop_rate: float = 0.0,
        drop_path_rate: float = 0.0,
        name: str = "deit",
        **kwargs,
    ):
        _validate_vit_args(
            in_chans=in_chans,
            depth=depth,
            num_classes=num_classes,
            pos_embed=pos_embed,
            global_pool="token",
            class_token=True,
        )
        if head not in DEIT_HEADS:
            raise ValueError(f"head must be one of {DEIT_HEADS}, got {head!r}.")
        config = constructor_arguments(type(self), locals())
        # --- functional graph: outputs both heads; `call` picks what to return
        images = _image_input(image_size, in_chans)
        x = _encoder(
            images,
            num_prefix_tokens=2,
            patch_size=patch_size,
            embed_dim=embed_dim,
            depth=depth,
            num_heads=num_heads,
            mlp_ratio=mlp_ratio,
            qkv_bias=qkv_bias,
            pos_embed=pos_embed,
            init_values=init_values,
            drop_rate=drop_rate,
            attn_drop_rate=attn_drop_rate,
            drop_path_rate=drop_path_rate,
        )
        x = LayerNorm(epsilon=1e-6, name="norm")(x)
        cls_out = classifier_head(
            _take_token(x, index=0, name="pool_cls"), num_classes, drop_rate=drop_rate, name="head"
        )
        dist_out = classifier_head(
            _take_token(x, index=1, name="pool_dist"), num_classes, drop_rate=drop_rate, name="head_dist"
        )
        super().__init__(inputs=images, outputs=[cls_out, dist_out], config=config, name=name, **kwargs)
        self.head = head
        self.num_prefix_tokens = 2
        self.grid_size = patch_grid(image_size, patch_size)

    def call(self, inputs, training=None, mask=None):
        cls_out, dist_out = super().call(inputs, training=training, mask=mask)
        if training:
            return cls_out, dist_out
        return self.select_head(cls_out, dist_out)

    def both_heads(self, inputs, training=False):
        """Both heads' logits `((B, num_classes), (B, num_classes))`, in inference mode by default."""
        return tuple(super().call(inputs, training=training))

    def select_head(self, cls_out, dist_out):
        """The inference output chosen by `self.head` from both heads' outputs."""
        if self.head == "cls":
            return cls_out
        if self.head == "dist":
            return dist_out
        return (cls_out + dist_out) / 2

    def compute_output_spec(self, inputs, training=None, mask=None):
        specs = super().compute_output_spec(inputs, training=training, mask=mask)
        return tuple(specs) if training else specs[0]


# ----------------------------------------------------------------------------- weights

VIT_WEIGHT_MAP = WeightMap(
    family="vit",
    resamplers={r"^pos_embed$": resample_pos_embed},
    head_modules=("head", "head_dist"),
)
VisionTransformer.weight_map = DeiT.weight_map = VIT_WEIGHT_MAP

# ----------------------------------------------------------------------------- variants

_NORMALISATION = {
    "inception": (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD),
    "imagenet": (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
}

# width, depth, heads of each size, as in the ViT and DeiT papers and timm.
_VIT_SIZES = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16),
}


def _variant(model_cls, size, patch, image, hub_tag, norm, pretrained_classes=1000):
    mean, std = _NORMALISATION[norm]
    return Variant(
        model_cls,
        dict(image_size=image, patch_size=patch, **_VIT_SIZES[size]),
        dict(
            hf_hub_id=hub_tag and f"timm/{hub_tag}",
            mean=mean,
            std=std,
            crop_pct=1.0 if image == 384 else 0.9,
            num_classes=pretrained_classes,
        ),
    )


# name: model class, size, patch, image size, timm's default pretrained tag (None: no weights),
# normalisation of those weights, and their number of classes (0: a headless checkpoint).
# Read from timm 1.0.31 by tools/param_counts.py.
_VIT_TABLE = {
    "vit_tiny_patch16_224": (
        VisionTransformer,
        "tiny",
        16,
        224,
        "vit_tiny_patch16_224.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_tiny_patch16_384": (
        VisionTransformer,
        "tiny",
        16,
        384,
        "vit_tiny_patch16_384.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_small_patch32_224": (
        VisionTransformer,
        "small",
        32,
        224,
        "vit_small_patch32_224.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_small_patch32_384": (
        VisionTransformer,
        "small",
        32,
        384,
        "vit_small_patch32_384.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_small_patch16_224": (
        VisionTransformer,
        "small",
        16,
        224,
        "vit_small_patch16_224.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_small_patch16_384": (
        VisionTransformer,
        "small",
        16,
        384,
        "vit_small_patch16_384.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_small_patch8_224": (VisionTransformer, "small", 8, 224, "vit_small_patch8_224.dino", "imagenet", 0),
    "vit_base_patch32_224": (
        VisionTransformer,
        "base",
        32,
        224,
        "vit_base_patch32_224.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_base_patch32_384": (
        VisionTransformer,
        "base",
        32,
        384,
        "vit_base_patch32_384.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_base_patch16_224": (
        VisionTransformer,
        "base",
        16,
        224,
        "vit_base_patch16_224.augreg2_in21k_ft_in1k",
        "inception",
    ),
    "vit_base_patch16_384": (
        VisionTransformer,
        "base",
        16,
        384,
        "vit_base_patch16_384.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_base_patch8_224": (
        VisionTransformer,
        "base",
        8,
        224,
        "vit_base_patch8_224.augreg2_in21k_ft_in1k",
        "inception",
    ),
    "vit_large_patch32_224": (VisionTransformer, "large", 32, 224, "vit_large_patch32_224.orig_in21k", "inception", 0),
    "vit_large_patch32_384": (
        VisionTransformer,
        "large",
        32,
        384,
        "vit_large_patch32_384.orig_in21k_ft_in1k",
        "inception",
    ),
    "vit_large_patch16_224": (
        VisionTransformer,
        "large",
        16,
        224,
        "vit_large_patch16_224.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_large_patch16_384": (
        VisionTransformer,
        "large",
        16,
        384,
        "vit_large_patch16_384.augreg_in21k_ft_in1k",
        "inception",
    ),
    "vit_large_patch14_224": (VisionTransformer, "large", 14, 224, None, "inception"),
    "vit_huge_patch14_224": (VisionTransformer, "huge", 14, 224, "vit_huge_patch14_224.orig_in21k", "inception", 0),
    "deit_tiny_patch16_224": (VisionTransformer, "tiny", 16, 224, "deit_tiny_patch16_224.fb_in1k", "imagenet"),
    "deit_small_patch16_224": (VisionTransformer, "small", 16, 224, "deit_small_patch16_224.fb_in1k", "imagenet"),
    "deit_base_patch16_224": (VisionTransformer, "base", 16, 224, "deit_base_patch16_224.fb_in1k", "imagenet"),
    "deit_base_patch16_384": (VisionTransformer, "base", 16, 384, "deit_base_patch16_384.fb_in1k", "imagenet"),
    "deit_tiny_distilled_patch16_224": (DeiT, "tiny", 16, 224, "deit_tiny_distilled_patch16_224.fb_in1k", "imagenet"),
    "deit_small_distilled_patch16_224": (
        DeiT,
        "small",
        16,
        224,
        "deit_small_distilled_patch16_224.fb_in1k",
        "imagenet",
    ),
    "deit_base_distilled_patch16_224": (DeiT, "base", 16, 224, "deit_base_distilled_patch16_224.fb_in1k", "imagenet"),
    "deit_base_distilled_patch16_384": (DeiT, "base", 16, 384, "deit_base_distilled_patch16_384.fb_in1k", "imagenet"),
}

VARIANTS = {name: _variant(*row) for name, row in _VIT_TABLE.items()}
