"""The transformer MLP: Dense, GELU, Dense, wired from standard layers."""

from keras_vits.backend import keras
from keras_vits.layers.helpers import dense_initializer


def mlp_block(tokens, hidden_dim, out_dim=None, activation="gelu", drop_rate=0.0, name="mlp"):
    """Two Dense layers with an activation between them (timm's `Mlp`).

    Args:
        tokens: `(B, N, C)` tensor.
        hidden_dim: width of the hidden layer.
        out_dim: output width. Defaults to `C`.
        activation: Keras activation name; `"gelu"` is the exact (erf) GELU,
            as in PyTorch's `nn.GELU`. Defaults to `"gelu"`.
        drop_rate: dropout after the activation and after the output. Defaults to 0.
        name: prefix of the layer names (`{name}_fc1`, `{name}_fc2`).

    Returns: `(B, N, out_dim)` tensor.
    """
    out_dim = out_dim or tokens.shape[-1]
    x = keras.layers.Dense(hidden_dim, kernel_initializer=dense_initializer(), name=f"{name}_fc1")(tokens)
    x = keras.layers.Activation(activation, name=f"{name}_act")(x)
    if drop_rate:
        x = keras.layers.Dropout(drop_rate, name=f"{name}_drop1")(x)
    x = keras.layers.Dense(out_dim, kernel_initializer=dense_initializer(), name=f"{name}_fc2")(x)
    if drop_rate:
        x = keras.layers.Dropout(drop_rate, name=f"{name}_drop2")(x)
    return x
