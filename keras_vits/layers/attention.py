"""Multi-head self-attention: a fused qkv Dense, the attention core, an output Dense."""

import tensorflow as tf

from keras_vits.backend import keras, register_serializable


def dense_initializer():
    """timm's Linear initialisation: truncated normal, std 0.02."""
    return keras.initializers.TruncatedNormal(stddev=0.02)


@register_serializable
class AttentionCore(keras.layers.Layer):
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

    def __init__(self, num_heads, attn_drop_rate=0.0, **kwargs):
        super().__init__(**kwargs)
        self.num_heads = int(num_heads)
        self.attn_drop_rate = float(attn_drop_rate)
        self.attn_dropout = keras.layers.Dropout(self.attn_drop_rate) if self.attn_drop_rate else None

    def build(self, input_shape):
        fused = int(input_shape[-1])
        if fused % (3 * self.num_heads):
            raise ValueError(
                f"AttentionCore expects a last dimension of 3 * num_heads * head_dim "
                f"(num_heads={self.num_heads}), got input shape {tuple(input_shape)}."
            )
        super().build(input_shape)

    def call(self, qkv, training=None):
        length, fused = qkv.shape[1], qkv.shape[2]
        length = tf.shape(qkv)[1] if length is None else length
        dim = fused // 3
        head_dim = dim // self.num_heads
        qkv = tf.reshape(qkv, [-1, length, 3, self.num_heads, head_dim])
        qkv = tf.transpose(qkv, [2, 0, 3, 1, 4])  # (3, B, heads, N, head_dim)
        query, key, value = qkv[0], qkv[1], qkv[2]
        scores = tf.matmul(query * tf.cast(head_dim**-0.5, query.dtype), key, transpose_b=True)
        probs = tf.cast(tf.nn.softmax(tf.cast(scores, tf.float32), axis=-1), value.dtype)
        if self.attn_dropout is not None:
            probs = self.attn_dropout(probs, training=training)
        context = tf.matmul(probs, value)  # (B, heads, N, head_dim)
        context = tf.transpose(context, [0, 2, 1, 3])
        return tf.reshape(context, [-1, length, dim])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], input_shape[1], input_shape[2] // 3)

    def macs_per_image(self, input_shape):
        """Multiply-accumulates of `q @ k^T` and `probs @ v` for one image."""
        length, dim = input_shape[1], input_shape[2] // 3
        return 2 * length * length * dim

    def get_config(self):
        config = super().get_config()
        config.update(num_heads=self.num_heads, attn_drop_rate=self.attn_drop_rate)
        return config


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
    if dim % num_heads:
        raise ValueError(f"embed_dim ({dim}) must be divisible by num_heads ({num_heads}).")
    qkv = keras.layers.Dense(3 * dim, use_bias=qkv_bias, kernel_initializer=dense_initializer(), name=f"{name}_qkv")(tokens)
    context = AttentionCore(num_heads, attn_drop_rate, name=f"{name}_core")(qkv)
    out = keras.layers.Dense(dim, kernel_initializer=dense_initializer(), name=f"{name}_proj")(context)
    if proj_drop_rate:
        out = keras.layers.Dropout(proj_drop_rate, name=f"{name}_proj_drop")(out)
    return out
