"""Multi-head self-attention: a fused qkv Dense, the attention core, an output Dense."""

import numpy as np

from keras_vits import ops
from keras_vits.backend import keras, register_serializable
from keras_vits.layers.helpers import dense_initializer


def attend(query, key, value, dropout=None, training=None, add_to_scores=None):
    """`softmax(q k^T / sqrt(d) [+ extra]) v` over heads; the softmax runs in float32.

    Args:
        query: `(..., heads, N, d)`.
        key, value: `(..., heads, M, d)`.
        dropout: a Dropout layer for the probabilities, or None.
        training: passed to `dropout`.
        add_to_scores: optional function of the float32 `(..., heads, N, M)`
            scores returning them with a bias or mask added.

    Returns: `(..., heads, N, d)` in `value`'s dtype.
    """
    head_dim = query.shape[-1]
    rank = len(key.shape)
    key_t = ops.transpose(key, [*range(rank - 2), rank - 1, rank - 2])
    scores = ops.matmul(query * ops.cast(head_dim**-0.5, query.dtype), key_t)
    scores = ops.cast(scores, "float32")
    if add_to_scores is not None:
        scores = add_to_scores(scores)
    probs = ops.cast(ops.softmax(scores, axis=-1), value.dtype)
    if dropout is not None:
        probs = dropout(probs, training=training)
    return ops.matmul(probs, value)


def split_heads(tokens, num_heads):
    """`(B, N, C)` -> `(B, heads, N, C / heads)`."""
    length, dim = ops.shape(tokens)[1], tokens.shape[2]
    tokens = ops.reshape(tokens, [-1, length, num_heads, dim // num_heads])
    return ops.transpose(tokens, [0, 2, 1, 3])


def merge_heads(tokens):
    """`(B, heads, N, d)` -> `(B, N, heads * d)`."""
    heads, length, head_dim = tokens.shape[1], ops.shape(tokens)[2], tokens.shape[3]
    return ops.reshape(ops.transpose(tokens, [0, 2, 1, 3]), [-1, length, heads * head_dim])


def split_fused_qkv(qkv, num_heads):
    """`(B, N, 3C)` laid out `[q | k | v]` -> three `(B, heads, N, C / heads)` tensors.

    A SPLIT then per-tensor reshapes, rather than slicing one 5-D tensor: XNNPACK
    runs SPLIT but not the 5-D STRIDED_SLICE, which left TFLite graphs partly undelegated.
    """
    return [split_heads(t, num_heads) for t in ops.split(qkv, 3, axis=-1)]


class AttentionCoreBase(keras.layers.Layer):
    """What every attention core shares: its heads, the dropout on probabilities, and their config.

    Not registered and not used alone; subclasses add `build`, `call` and their own arguments.

    Args:
        num_heads: attention heads.
        attn_drop_rate: dropout on the attention probabilities. Defaults to 0.
    """

    def __init__(self, num_heads, attn_drop_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)) or num_heads < 1:
            raise ValueError(f"{type(self).__name__}: num_heads must be a positive int, got {num_heads!r}.")
        if isinstance(attn_drop_rate, bool) or not 0 <= attn_drop_rate < 1:
            raise ValueError(f"{type(self).__name__}: attn_drop_rate must be in [0, 1), got {attn_drop_rate!r}.")
        self.num_heads = int(num_heads)
        self.attn_drop_rate = float(attn_drop_rate)
        self.attn_dropout = keras.layers.Dropout(self.attn_drop_rate) if self.attn_drop_rate else None

    def check_fused_qkv_width(self, input_shape):
        """Raises unless the last axis of `input_shape` is `3 * num_heads * head_dim`."""
        if int(input_shape[-1]) % (3 * self.num_heads):
            raise ValueError(
                f"{type(self).__name__} expects a last dimension of 3 * num_heads * head_dim "
                f"(num_heads={self.num_heads}), got input shape {tuple(input_shape)}."
            )

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, attn_drop_rate=self.attn_drop_rate)
        return config


@register_serializable
class AttentionCore(AttentionCoreBase):
    """Scaled dot-product attention over heads, from a fused qkv projection.

    Holds no weights: the projections around it are plain `Dense` layers, so
    they stay visible to weight maps, tfmot and TFLite. The softmax runs in
    float32 under mixed precision.

    Args:
        num_heads: number of attention heads; must divide `C`.
        attn_drop_rate: dropout on the attention probabilities. Defaults to 0.

    Shapes: `(B, N, 3 * C)` laid out as `[q | k | v]`, each head-major as in
    timm's `qkv` Linear -> `(B, N, C)`.
    """

    def build(self, input_shape):
        self.check_fused_qkv_width(input_shape)
        super().build(input_shape)

    def call(self, qkv, training=None):
        query, key, value = split_fused_qkv(qkv, self.num_heads)
        return merge_heads(attend(query, key, value, dropout=self.attn_dropout, training=training))

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[2] // 3)

    def macs_per_image(self, input_shape):
        """Multiply-accumulates of `q @ k^T` and `probs @ v` for one image."""
        length, dim = input_shape[1], input_shape[2] // 3
        return 2 * length * length * dim


@register_serializable
class SpatialReductionAttentionCore(AttentionCoreBase):
    """Attention of every query token over a shorter key/value sequence (PVT's spatial reduction).

    Holds no weights: the query, key/value, reduction and output projections
    around it are standard layers. Inputs may be token sequences or maps.

    Args:
        num_heads: attention heads; must divide `C`.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.

    Shapes: `[query (B, N, C), key_value (B, M, 2C)]` with `key_value` laid out
    `[k | v]` (timm's `kv`), or `[query, key, value]` with `key`, `value` of
    `(B, M, C)`; sequences may be given as maps `(B, H, W, C)`. Output: `query`'s shape.
    """

    def build(self, input_shape):
        dim = input_shape[0][-1]
        if dim % self.num_heads:
            raise ValueError(f"Query width {dim} must be divisible by num_heads={self.num_heads}.")
        widths = [shape[-1] for shape in input_shape[1:]]
        if widths not in ([2 * dim], [dim, dim]):
            raise ValueError(
                f"SpatialReductionAttentionCore expects [query (..., {dim}), key_value (..., {2 * dim})] or "
                f"[query, key, value] of width {dim}; got shapes {[tuple(s) for s in input_shape]}."
            )
        super().build(input_shape)

    def call(self, inputs, training=None):
        query = inputs[0]
        dim = query.shape[-1]
        if len(inputs) == 2:
            key, value = inputs[1][..., :dim], inputs[1][..., dim:]
        else:
            key, value = inputs[1], inputs[2]
        flat = [ops.reshape(t, [-1, int(np.prod(t.shape[1:-1])), t.shape[-1]]) for t in (query, key, value)]
        heads = [split_heads(t, self.num_heads) for t in flat]
        context = merge_heads(attend(*heads, dropout=self.attn_dropout, training=training))
        return ops.reshape(context, [-1, *query.shape[1:]])

    def compute_output_shape(self, input_shape):
        return tuple(input_shape[0])

    def macs_per_image(self, input_shape):
        """`q @ k^T` and `probs @ v`: `2 * N * M * C`."""
        queries = int(np.prod(input_shape[0][1:-1]))
        keys = int(np.prod(input_shape[1][1:-1]))
        return 2 * queries * keys * input_shape[0][-1]


def attention_block(tokens, num_heads, qkv_bias=True, attn_drop_rate=0.0, proj_drop_rate=0.0, name="attn"):
    """Multi-head self-attention with fused qkv, wired from standard layers.

    Args:
        tokens: `(B, N, C)` tensor.
        num_heads: number of heads; must divide `C`.
        qkv_bias: bias in the qkv projection. Defaults to True.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.
        proj_drop_rate: dropout after the output projection. Defaults to 0.
        name: prefix of the layer names (`{name}_qkv`, `{name}_proj`).

    Returns: `(B, N, C)` tensor.
    """
    dim = tokens.shape[-1]
    if isinstance(num_heads, bool) or not isinstance(num_heads, (int, np.integer)) or num_heads < 1:
        raise ValueError(f"num_heads must be a positive int, got {num_heads!r}.")
    if dim % num_heads:
        raise ValueError(f"embed_dim ({dim}) must be divisible by num_heads ({num_heads}).")
    qkv_proj = keras.layers.Dense(
        3 * dim, use_bias=qkv_bias, kernel_initializer=dense_initializer(), name=f"{name}_qkv"
    )
    context = AttentionCore(num_heads=num_heads, attn_drop_rate=attn_drop_rate, name=f"{name}_core")(qkv_proj(tokens))
    out = keras.layers.Dense(dim, kernel_initializer=dense_initializer(), name=f"{name}_proj")(context)
    if proj_drop_rate:
        out = keras.layers.Dropout(proj_drop_rate, name=f"{name}_proj_drop")(out)
    return out
