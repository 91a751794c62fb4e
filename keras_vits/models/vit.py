"""Vision Transformer (ViT) and the data-efficient, distilled DeiT.

Papers:
    An Image is Worth 16x16 Words: Transformers for Image Recognition at Scale
    (Dosovitskiy et al., 2020), https://arxiv.org/abs/2010.11929
    Training data-efficient image transformers & distillation through attention
    (Touvron et al., 2020), https://arxiv.org/abs/2012.12877

Layer names follow timm's module paths (`blocks.3.attn.qkv` -> `blocks_3_attn_qkv`),
so timm checkpoints load through a short declarative map at the end of this file.
"""

import dataclasses
import re
import textwrap
from collections.abc import Sequence

import numpy as np

from keras_vits.backend import keras, register_serializable
from keras_vits.layers import (
    DynamicPositionEmbedding,
    LayerNorm,
    PositionEmbedding,
    PrependToken,
    SliceTokens,
    TokensToMap,
    classifier_head,
    patch_embed,
    patch_grid,
    to_2tuple,
    transformer_block,
)
from keras_vits.layers.tokens import POSITION_EMBEDDING_KINDS
from keras_vits.models.base import (
    VitsModel,
    check_images,
    constructor_arguments,
    validate_head_and_input,
)
from keras_vits.weights.resample import resample_abs_pos_embed, resample_pos_embed
from keras_vits.weights.weight_map import WeightMap

GLOBAL_POOLS = ("token", "avg")
DEIT_HEADS = ("avg", "cls", "dist")

# ----------------------------------------------------------------------------- graph


def _validate_pooling(global_pool, class_token):
    if global_pool not in GLOBAL_POOLS:
        raise ValueError(f"global_pool must be one of {GLOBAL_POOLS}, got {global_pool!r}.")
    if global_pool == "token" and not class_token:
        raise ValueError("global_pool='token' needs class_token=True; use global_pool='avg' without a class token.")


def _validate_dynamic(dynamic_img_size, pos_embed):
    if not isinstance(dynamic_img_size, bool):
        raise TypeError(f"dynamic_img_size must be True or False, got {dynamic_img_size!r}.")
    if dynamic_img_size and pos_embed not in ("learned", "none"):
        raise ValueError(
            f"dynamic_img_size=True resamples a learned position embedding: pos_embed must be 'learned' or 'none', "
            f"got {pos_embed!r}."
        )


def resolve_out_indices(out_indices, depth):
    """Block indices as a tuple of non-negative ints: None is the last block, negatives count from the end (timm).

    Raises `TypeError` for anything but a sequence of ints, and `ValueError` for an
    index outside `[-depth, depth)`, a block named twice or indices out of block order.
    """
    if out_indices is None:
        return (depth - 1,)
    if isinstance(out_indices, (int, np.integer)) or not isinstance(out_indices, Sequence):
        raise TypeError(
            f"out_indices must be a sequence of block indices such as (-1,) or (2, 5, 8, 11), got {out_indices!r} "
            f"(timm reads an int n as the last n blocks: pass tuple(range(-n, 0)) for that)."
        )
    if not out_indices or any(not isinstance(i, (int, np.integer)) or isinstance(i, bool) for i in out_indices):
        raise TypeError(f"out_indices must hold one or more int block indices, got {tuple(out_indices)!r}.")
    bad = [int(i) for i in out_indices if not -depth <= i < depth]
    if bad:
        raise ValueError(
            f"out_indices {tuple(out_indices)} has {bad} outside the {depth} blocks: expected indices in "
            f"[{-depth}, {depth}) (negative ones count from the end)."
        )
    resolved = tuple(int(i) % depth for i in out_indices)
    if len(set(resolved)) != len(resolved):
        raise ValueError(
            f"out_indices {tuple(out_indices)} names a block twice (as blocks {resolved} of {depth}): "
            f"expected each block at most once."
        )
    if list(resolved) != sorted(resolved):
        raise ValueError(
            f"out_indices {tuple(out_indices)} are blocks {resolved}: expected them in increasing block order, "
            f"the order the maps are returned in (as timm's forward_intermediates)."
        )
    return resolved


def _validate_features(
    *, features_only, out_indices, features_norm, return_prefix_tokens, num_classes, depth, num_prefix_tokens
):
    """`out_indices` resolved (see `resolve_out_indices`) once the feature arguments agree with each other."""
    if not features_only:
        given = {
            name: value
            for name, value in (
                ("out_indices", out_indices),
                ("features_norm", features_norm),
                ("return_prefix_tokens", return_prefix_tokens),
            )
            if value not in (None, False)
        }
        if given:
            raise ValueError(f"{', '.join(f'{k}={v!r}' for k, v in given.items())} apply only with features_only=True.")
        return None
    if num_classes:
        raise ValueError(
            f"features_only=True returns block maps and builds no head, got num_classes={num_classes!r}: "
            f"pass num_classes=0 (create_model does when num_classes is not given)."
        )
    if return_prefix_tokens and not num_prefix_tokens:
        raise ValueError("return_prefix_tokens=True needs prefix tokens; this model has no class token.")
    return resolve_out_indices(out_indices, depth)


def _encoder(
    images,
    *,
    num_prefix_tokens,
    image_size,
    patch_size,
    embed_dim,
    num_blocks,
    depth,
    num_heads,
    mlp_ratio,
    qkv_bias,
    pos_embed,
    init_values,
    drop_rate,
    attn_drop_rate,
    drop_path_rate,
    dynamic_img_size=False,
):
    """Patch embedding, prefix tokens, position embedding and the first `num_blocks` of `depth` blocks.

    Returns: each built block's `(B, P + h * w, C)` tokens, before the final norm;
    `P` is 0, 1 (class token) or 2 (class and distillation tokens, in that order).
    With `dynamic_img_size`, `(h, w)` is each call's grid and the position
    embedding, stored at `image_size`'s grid, is resized to it.
    """
    grid = patch_grid(image_size, patch_size)
    x = patch_embed(images, patch_size=patch_size, embed_dim=embed_dim, name="patch_embed")
    if num_prefix_tokens == 2:
        x = PrependToken(initializer_stddev=0.02, name="dist_token")(x)
    if num_prefix_tokens >= 1:
        x = PrependToken(initializer_stddev=1e-6, name="cls_token")(x)
    if pos_embed != "none" and dynamic_img_size:
        x = DynamicPositionEmbedding(grid, patch_size, num_prefix_tokens=num_prefix_tokens, name="pos_embed")(
            [x, images]
        )
    elif pos_embed != "none":
        x = PositionEmbedding(grid, num_prefix_tokens=num_prefix_tokens, kind=pos_embed, name="pos_embed")(x)
    if drop_rate:
        x = keras.layers.Dropout(drop_rate, name="pos_drop")(x)
    blocks = []
    for index, rate in enumerate(np.linspace(0.0, drop_path_rate, depth)[:num_blocks]):
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
        blocks.append(x)
    return blocks


def _block_features(blocks, images, *, out_indices, patch_size, num_prefix_tokens, features_norm, return_prefix_tokens):
    """The chosen blocks' patch tokens as `(B, h, w, C)` maps, as timm's `forward_intermediates`.

    Returns: the maps in block order, each followed by its `(B, P, C)` prefix tokens
    when `return_prefix_tokens`; with `features_norm`, the final norm (`norm`) is
    applied to every chosen block's tokens first.
    """
    norm = LayerNorm(epsilon=1e-6, name="norm") if features_norm else None
    outputs = []
    for index in out_indices:
        x = norm(blocks[index]) if norm is not None else blocks[index]
        outputs.append(TokensToMap(patch_size, num_prefix_tokens, name=f"blocks_{index}_map")([x, images]))
        if return_prefix_tokens:
            outputs.append(SliceTokens(0, num_prefix_tokens, name=f"blocks_{index}_prefix")(x))
    return outputs


def _block_feature_info(depth, embed_dim, patch_size):
    """`feature_info` of every block, in the Swin and PVT schema (timm's `feature_info` for ViT)."""
    reduction = max(to_2tuple(patch_size, "patch_size"))
    return [dict(num_chs=int(embed_dim), reduction=reduction, module=f"blocks_{i}") for i in range(depth)]


def _features_weight_map(out_indices, depth, features_norm):
    """The ViT map, with the checkpoint keys a features model has no place for marked unused."""
    unused = [r"^head(_dist)?\.", r"^fc_norm\."]
    if not features_norm:
        unused.append(r"^norm\.")
    pruned = range(out_indices[-1] + 1, depth)
    if pruned:
        unused.append(rf"^blocks\.({'|'.join(str(i) for i in pruned)})\.")
    return dataclasses.replace(VIT_WEIGHT_MAP, unused_by_features=tuple(unused))


def _take_token(tokens, index, name):
    """`tokens[:, index]` from standard layers (`SliceTokens` when the length is dynamic): `(B, N, C)` -> `(B, C)`."""
    length, dim = tokens.shape[1], tokens.shape[2]
    if length is None:
        x = SliceTokens(index, index + 1, name=f"{name}_crop")(tokens)
    else:
        x = keras.layers.Cropping1D((index, length - index - 1), name=f"{name}_crop")(tokens)
    return keras.layers.Reshape((dim,), name=name)(x)


def _drop_prefix(tokens, num_prefix_tokens, name):
    """`tokens[:, P:]`: `(B, P + N, C)` -> `(B, N, C)`."""
    if tokens.shape[1] is None:
        return SliceTokens(num_prefix_tokens, name=name)(tokens)
    return keras.layers.Cropping1D((num_prefix_tokens, 0), name=name)(tokens)


def _image_input(image_size, in_chans, dynamic_img_size=False):
    height, width = (None, None) if dynamic_img_size else to_2tuple(image_size, "image_size")
    return keras.Input((height, width, in_chans), name="images")


#: The Args entries ViT and DeiT share, written once into both docstrings.
_PLAIN_VIT_ARGS_DOC = """\
drop_rate: dropout after the position embedding, in the blocks and before the head(s). Defaults to 0.
attn_drop_rate: dropout on attention probabilities. Defaults to 0.
drop_path_rate: stochastic depth, rising linearly to this rate over the blocks. Defaults to 0.
dynamic_img_size: take images of any size (multiples of the patch): the input is
    `(None, None, in_chans)` and the learned position embedding, stored at
    `image_size`'s grid, is resized in the graph to each call's grid (timm's
    name and behaviour). Defaults to False.
features_only: return block maps instead of logits; needs `num_classes=0`. Defaults to False.
out_indices: blocks returned when `features_only`; negative indices count from
    the end, as in timm; None is the last block. Defaults to None.
features_norm: apply the final norm to each returned block (timm's
    `forward_intermediates(norm=True)`); False returns them before it. A model
    that normalises after pooling (`fc_norm`, as `global_pool="avg"` does by
    default) has no final token norm, so this changes nothing there, as in timm.
    Defaults to False.
return_prefix_tokens: follow each map with its block's prefix tokens
    `(B, P, embed_dim)`. Defaults to False.
"""

#: `_encoder`'s arguments that come straight from the config of both plain ViTs.
_ENCODER_ARGS = (
    "image_size",
    "patch_size",
    "embed_dim",
    "depth",
    "num_heads",
    "mlp_ratio",
    "qkv_bias",
    "pos_embed",
    "init_values",
    "drop_rate",
    "attn_drop_rate",
    "drop_path_rate",
    "dynamic_img_size",
)


def _check_plain_vit_args(args, num_prefix_tokens):
    """The checks ViT and DeiT share, on their `__init__` arguments; returns `out_indices` resolved."""
    validate_head_and_input(args["num_classes"], args["in_chans"])
    if not isinstance(args["depth"], int) or args["depth"] < 1:
        raise ValueError(f"depth must be a positive int, got {args['depth']!r}.")
    if args["pos_embed"] not in POSITION_EMBEDDING_KINDS:
        raise ValueError(f"pos_embed must be one of {POSITION_EMBEDDING_KINDS}, got {args['pos_embed']!r}.")
    _validate_dynamic(args["dynamic_img_size"], args["pos_embed"])
    return _validate_features(
        features_only=args["features_only"],
        out_indices=args["out_indices"],
        features_norm=args["features_norm"],
        return_prefix_tokens=args["return_prefix_tokens"],
        num_classes=args["num_classes"],
        depth=args["depth"],
        num_prefix_tokens=num_prefix_tokens,
    )


def _plain_vit_graph(config, num_prefix_tokens, build_head, features_norm):
    """The graph of a plain ViT from its config: input, encoder, then block maps or `build_head`'s outputs.

    Args:
        config: the model's constructor arguments (`out_indices` resolved).
        num_prefix_tokens: 1 (class token), 2 (class and distillation tokens) or 0.
        build_head: function of the last block's `(B, P + N, C)` tokens returning the model's outputs.
        features_norm: whether block maps go through the final norm (`features_only`).

    Returns: `(images, outputs)`, the functional model's input and outputs.
    """
    images = _image_input(config["image_size"], config["in_chans"], config["dynamic_img_size"])
    features_only, out_indices = config["features_only"], config["out_indices"]
    blocks = _encoder(
        images,
        num_prefix_tokens=num_prefix_tokens,
        num_blocks=out_indices[-1] + 1 if features_only else config["depth"],
        **{key: config[key] for key in _ENCODER_ARGS},
    )
    if not features_only:
        return images, build_head(blocks[-1])
    maps = _block_features(
        blocks,
        images,
        out_indices=out_indices,
        patch_size=config["patch_size"],
        num_prefix_tokens=num_prefix_tokens,
        features_norm=features_norm,
        return_prefix_tokens=config["return_prefix_tokens"],
    )
    return images, maps


class PlainViT(VitsModel):
    """What ViT and DeiT share: `feature_info`, the input check and the fixed-size copy of a `dynamic_img_size` model.

    Attributes:
        feature_info: per block (per chosen block with `features_only`): `num_chs`,
            `reduction` (the patch size) and `module` (`blocks_<i>`), the Swin and PVT schema.
    """

    def _layer_position(self, layer_name):
        """timm's grouping: embeddings and tokens, then one depth per block; `fc_norm` goes with the head."""
        block = re.match(r"blocks_(\d+)_", layer_name)
        if block:
            return self.block_position(int(block.group(1)), 0)
        if layer_name in ("patch_embed_proj", "cls_token", "dist_token", "pos_embed"):
            return self.STEM
        if layer_name == "norm":
            return self.AFTER_BLOCKS
        return self.HEAD

    def _finish(self, config, num_prefix_tokens, features_norm):
        """Sets what the built model answers for: `feature_info`, its weight map, prefix tokens and grid."""
        depth, patch_size, out_indices = config["depth"], config["patch_size"], config["out_indices"]
        info = _block_feature_info(depth, config["embed_dim"], patch_size)
        self.feature_info = [info[i] for i in out_indices] if config["features_only"] else info
        if config["features_only"]:  # the instance's own map: pruned blocks, final norm and head are unused
            self.weight_map = _features_weight_map(out_indices, depth, features_norm)
        self.num_prefix_tokens = num_prefix_tokens
        self.grid_size = patch_grid(config["image_size"], patch_size)

    def __call__(self, *args, **kwargs):
        images = args[0] if args else kwargs.get("inputs")
        if self._vits_config.get("dynamic_img_size"):
            # Rank, layout and channels first: an NCHW batch is told so, not sent to the nearest size.
            check_images(images, self.expected_image_shape, type(self).__name__)
            check_dynamic_image_size(images, self._vits_config["patch_size"], type(self).__name__)
        return super().__call__(*args, **kwargs)

    def fixed_size_copy(self, image_size=None):
        """This model built for one input size, with its weights (the position embedding resampled).

        For what needs a static size, such as TFLite (`convert_tflite`) or a fixed serving shape.

        Args:
            image_size: int or `(H, W)`, multiples of the patch. Defaults to the model's `image_size`.

        Returns: a model of the same class and config with `dynamic_img_size=False`.
        """
        config = dict(self.get_config(), dynamic_img_size=False)
        if image_size is not None:
            config["image_size"] = image_size
        copy = type(self).from_config(config)
        weights = {layer.name: layer.get_weights() for layer in self.layers if layer.weights}
        for layer in copy.layers:
            values = weights.get(layer.name)
            if values is None:
                continue
            if isinstance(layer, PositionEmbedding) and layer.grid_size != self.grid_size:
                values = [
                    resample_abs_pos_embed(values[0], layer.grid_size, self.num_prefix_tokens, old_grid=self.grid_size)
                ]
            layer.set_weights(values)
        return copy


def check_dynamic_image_size(images, patch_size, model_name):
    """Raises a `ValueError` unless the images' height and width (where known) are multiples of the patch."""
    shape = tuple(getattr(images, "shape", ()))
    if len(shape) != 4:
        return  # VitsModel's own check explains
    patch = to_2tuple(patch_size, "patch_size")
    size = tuple(shape[1:3])
    if any(s is not None and s % p for s, p in zip(size, patch)):
        nearest = tuple(max(p, round(s / p) * p) for s, p in zip(size, patch))
        raise ValueError(
            f"{model_name} (dynamic_img_size=True) takes images whose height and width are multiples of "
            f"patch_size {patch}, got images of shape {shape}; the nearest valid size is {nearest}."
        )


# ----------------------------------------------------------------------------- models


@register_serializable
class VisionTransformer(PlainViT):
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
        {plain_vit_args}
    name: model name. Defaults to `"vision_transformer"`.

    Input: `(B, H, W, in_chans)` float32, normalised as the weights expect.
    Output: `(B, num_classes)` logits, or `(B, embed_dim)` features when `num_classes=0`;
    with `features_only`, a list of `(B, H / p, W / p, embed_dim)` maps (see `feature_info`).

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
        dynamic_img_size: bool = False,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        features_norm: bool = False,
        return_prefix_tokens: bool = False,
        name: str = "vision_transformer",
        **kwargs,
    ):
        _validate_pooling(global_pool, class_token)
        num_prefix_tokens = int(bool(class_token))
        out_indices = _check_plain_vit_args(locals(), num_prefix_tokens)
        config = constructor_arguments(type(self), locals())
        use_fc_norm = global_pool == "avg" if fc_norm is None else fc_norm

        def pool_and_classify(tokens):
            if not use_fc_norm:
                tokens = LayerNorm(epsilon=1e-6, name="norm")(tokens)
            if global_pool == "token":
                pooled = _take_token(tokens, index=0, name="pool")
            else:
                tokens = _drop_prefix(tokens, num_prefix_tokens, name="pool_crop")
                pooled = keras.layers.GlobalAveragePooling1D(name="pool")(tokens)
            if use_fc_norm:
                pooled = LayerNorm(epsilon=1e-6, name="fc_norm")(pooled)
            return classifier_head(pooled, num_classes, drop_rate=drop_rate, name="head")

        features_norm = features_norm and not use_fc_norm  # a model that normalises after pooling has no token norm
        images, outputs = _plain_vit_graph(config, num_prefix_tokens, pool_and_classify, features_norm)
        super().__init__(inputs=images, outputs=outputs, config=config, name=name, **kwargs)
        self._finish(config, num_prefix_tokens, features_norm)


@register_serializable
class DeiT(PlainViT):
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
        {plain_vit_args}
    name: model name. Defaults to `"deit"`.

    Input: `(B, H, W, in_chans)` float32, normalised.
    Output: inference `(B, num_classes)`; training a pair of `(B, num_classes)`; with
    `features_only`, a list of `(B, H / p, W / p, embed_dim)` maps (prefix: class, then distillation token).

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
        dynamic_img_size: bool = False,
        features_only: bool = False,
        out_indices: Sequence[int] | None = None,
        features_norm: bool = False,
        return_prefix_tokens: bool = False,
        name: str = "deit",
        **kwargs,
    ):
        if head not in DEIT_HEADS:
            raise ValueError(f"head must be one of {DEIT_HEADS}, got {head!r}.")
        out_indices = _check_plain_vit_args(locals(), num_prefix_tokens=2)
        config = constructor_arguments(type(self), locals())

        def both_heads(tokens):  # `call` picks what to return from the two
            tokens = LayerNorm(epsilon=1e-6, name="norm")(tokens)
            cls_out = classifier_head(_take_token(tokens, 0, name="pool_cls"), num_classes, drop_rate, name="head")
            dist_token = _take_token(tokens, 1, name="pool_dist")
            return [cls_out, classifier_head(dist_token, num_classes, drop_rate, name="head_dist")]

        images, outputs = _plain_vit_graph(config, 2, both_heads, features_norm)
        super().__init__(inputs=images, outputs=outputs, config=config, name=name, **kwargs)
        self.head = head
        self._finish(config, 2, features_norm)

    def call(self, inputs, training=None, mask=None):
        if self._vits_config["features_only"]:
            return super().call(inputs, training=training, mask=mask)
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
        if self._vits_config["features_only"]:
            return specs
        return tuple(specs) if training else specs[0]


# ----------------------------------------------------------------------------- weights

VIT_WEIGHT_MAP = WeightMap(
    family="vit",
    resamplers={r"^pos_embed$": resample_pos_embed},
    head_modules=("head", "head_dist"),
)
VisionTransformer.weight_map = DeiT.weight_map = VIT_WEIGHT_MAP
for _model_cls in (VisionTransformer, DeiT):
    _model_cls.__doc__ = _model_cls.__doc__.replace(
        "{plain_vit_args}\n", textwrap.indent(_PLAIN_VIT_ARGS_DOC, " " * 8).lstrip()
    )
