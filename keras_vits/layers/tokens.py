"""Learned tokens and position embeddings: what Keras has no layer for."""

import numpy as np

from keras_vits import ops
from keras_vits.backend import keras, register_serializable

POSITION_EMBEDDING_KINDS = ("learned", "sincos1d", "sincos2d", "none")


@register_serializable
class PrependToken(keras.layers.Layer):
    """Prepends one learned token (class or distillation) to a token sequence.

    Args:
        initializer_stddev: standard deviation of the normal initialiser. Defaults to 0.02.

    Shapes: `(B, N, C)` -> `(B, 1 + N, C)`. The weight `token` has shape `(1, 1, C)`.
    """

    #: Tokens take no weight decay (timm's `no_weight_decay`); the model collects this.
    exclude_from_weight_decay = True

    def __init__(self, initializer_stddev=0.02, **kwargs):
        super().__init__(**kwargs)
        self.initializer_stddev = initializer_stddev

    def build(self, input_shape):
        self.token = self.add_weight(
            name="token",
            shape=(1, 1, int(input_shape[-1])),
            initializer=keras.initializers.TruncatedNormal(stddev=self.initializer_stddev),
        )
        super().build(input_shape)

    def call(self, tokens):
        token = ops.cast(self.token, tokens.dtype)
        token = ops.broadcast_to(token, (ops.shape(tokens)[0], 1, token.shape[-1]))
        return ops.concatenate([token, tokens], axis=1)

    def compute_output_shape(self, input_shape):
        length = None if input_shape[1] is None else input_shape[1] + 1
        return (input_shape[0], length, input_shape[2])

    def get_config(self):
        config = super().get_config()
        config.update(initializer_stddev=self.initializer_stddev)
        return config


def sincos_1d_table(num_positions, dim, temperature=10000.0):
    """The Transformer paper's fixed 1-D table, `(num_positions, dim)` float32.

    Sine on the first half of the channels, cosine on the second (as timm and MAE lay them out).
    """
    if dim % 2:
        raise ValueError(f"A 1-D sin-cos position embedding needs an even embed_dim, got {dim}.")
    frequencies = 1.0 / temperature ** (np.arange(dim // 2, dtype=np.float64) / (dim // 2))
    angles = np.arange(num_positions, dtype=np.float64)[:, None] * frequencies[None, :]
    return np.concatenate([np.sin(angles), np.cos(angles)], axis=1).astype(np.float32)


def sincos_2d_table(grid_size, dim, temperature=10000.0):
    """A fixed 2-D table, `(h * w, dim)` float32, row-major over the patch grid.

    Half the channels encode the row, half the column, each as a 1-D sin-cos table.
    """
    if dim % 4:
        raise ValueError(f"A 2-D sin-cos position embedding needs embed_dim divisible by 4, got {dim}.")
    height, width = grid_size
    rows = sincos_1d_table(height, dim // 2, temperature)
    cols = sincos_1d_table(width, dim // 2, temperature)
    rows = np.repeat(rows, width, axis=0)
    cols = np.tile(cols, (height, 1))
    return np.concatenate([rows, cols], axis=1)


@register_serializable
class PositionEmbedding(keras.layers.Layer):
    """Adds a learned or fixed sin-cos position embedding to a token sequence.

    Args:
        grid_size: `(h, w)` of the patch grid.
        num_prefix_tokens: tokens before the patches (class, distillation). They get
            their own learned embedding, position 0.. in the 1-D table, and zeros in the
            2-D table. Defaults to 1.
        kind: `"learned"`, `"sincos1d"` or `"sincos2d"`. Defaults to `"learned"`.
        temperature: sin-cos frequency base. Defaults to 10000.

    Shapes: `(B, P + h * w, C)` -> same. The learned weight `embedding` has shape
    `(1, P + h * w, C)`, the layout of timm's `pos_embed`.
    """

    #: The learned embedding takes no weight decay (timm's `no_weight_decay`).
    exclude_from_weight_decay = True

    def __init__(self, grid_size, num_prefix_tokens=1, kind="learned", temperature=10000.0, **kwargs):
        super().__init__(**kwargs)
        if kind not in POSITION_EMBEDDING_KINDS[:-1]:
            raise ValueError(f"PositionEmbedding kind must be one of {POSITION_EMBEDDING_KINDS[:-1]}, got {kind!r}.")
        self.grid_size = tuple(int(g) for g in grid_size)
        self.num_prefix_tokens = int(num_prefix_tokens)
        self.kind = kind
        self.temperature = float(temperature)

    def build(self, input_shape):
        length = self.num_prefix_tokens + self.grid_size[0] * self.grid_size[1]
        if input_shape[1] is not None and input_shape[1] != length:
            raise ValueError(
                f"PositionEmbedding expects {length} tokens ({self.num_prefix_tokens} prefix + "
                f"{self.grid_size[0]}x{self.grid_size[1]} patches), got input shape {tuple(input_shape)}."
            )
        dim = int(input_shape[-1])
        if self.kind == "learned":
            self.embedding = self.add_weight(
                name="embedding",
                shape=(1, length, dim),
                initializer=keras.initializers.TruncatedNormal(stddev=0.02),
            )
        else:
            if self.kind == "sincos1d":
                table = sincos_1d_table(length, dim, self.temperature)
            else:
                patches = sincos_2d_table(self.grid_size, dim, self.temperature)
                table = np.concatenate([np.zeros((self.num_prefix_tokens, dim), np.float32), patches])
            # A constant, not a weight: it is fixed, so checkpoints neither hold nor need it.
            self.embedding = ops.convert_to_tensor(table[None])
        super().build(input_shape)

    def call(self, tokens):
        return tokens + ops.cast(self.embedding, tokens.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(
            grid_size=self.grid_size,
            num_prefix_tokens=self.num_prefix_tokens,
            kind=self.kind,
            temperature=self.temperature,
        )
        return config
