"""The pre-norm transformer encoder block shared by the plain-ViT families."""

from keras_vits.backend import keras
from keras_vits.layers.attention import attention_block
from keras_vits.layers.mlp import mlp_block
from keras_vits.layers.norm import LayerNorm
from keras_vits.layers.regularization import DropPath, LayerScale


def residual_branch(shortcut, branch, *, name, index, init_values=None, drop_path_rate=0.0):
    """`shortcut + drop_path(layer_scale(branch))`, skipping the parts that are off.

    Layers are named as timm's: `{name}_ls{index}` holds `blocks.i.ls{index}.gamma`.

    Args:
        shortcut, branch: tensors of one shape.
        name: the block's prefix (`blocks_3`).
        index: which branch of the block (1: attention, 2: MLP).
        init_values: layer-scale initial value; None disables layer scale. Defaults to None.
        drop_path_rate: stochastic depth of the branch. Defaults to 0.

    Returns: a tensor of `shortcut`'s shape.
    """
    if init_values is not None:
        branch = LayerScale(init_values, name=f"{name}_ls{index}")(branch)
    if drop_path_rate:
        branch = DropPath(drop_path_rate, name=f"{name}_drop_path{index}")(branch)
    return keras.layers.Add(name=f"{name}_add{index}")([shortcut, branch])


def transformer_block(
    tokens,
    num_heads,
    mlp_ratio=4.0,
    qkv_bias=True,
    drop_rate=0.0,
    attn_drop_rate=0.0,
    drop_path_rate=0.0,
    init_values=None,
    norm_epsilon=1e-6,
    name="blocks_0",
):
    """`x + attn(norm1(x))`, then `x + mlp(norm2(x))`: timm's ViT `Block`.

    Args:
        tokens: `(B, N, C)` tensor.
        num_heads: attention heads.
        mlp_ratio: MLP hidden width over `C`. Defaults to 4.
        qkv_bias: bias in the qkv projection. Defaults to True.
        drop_rate: dropout after the projections and in the MLP. Defaults to 0.
        attn_drop_rate: dropout on attention probabilities. Defaults to 0.
        drop_path_rate: stochastic depth rate of both branches. Defaults to 0.
        init_values: layer-scale initial value, or None for no layer scale. Defaults to None.
        norm_epsilon: LayerNorm epsilon. Defaults to 1e-6.
        name: prefix of the layer names, timm's module path with `_` (`blocks_3`).

    Returns: `(B, N, C)` tensor.
    """
    dim = tokens.shape[-1]
    x = LayerNorm(epsilon=norm_epsilon, name=f"{name}_norm1")(tokens)
    x = attention_block(
        x,
        num_heads,
        qkv_bias=qkv_bias,
        attn_drop_rate=attn_drop_rate,
        proj_drop_rate=drop_rate,
        name=f"{name}_attn",
    )
    tokens = residual_branch(tokens, x, init_values=init_values, drop_path_rate=drop_path_rate, name=name, index=1)
    x = LayerNorm(epsilon=norm_epsilon, name=f"{name}_norm2")(tokens)
    x = mlp_block(x, int(dim * mlp_ratio), drop_rate=drop_rate, name=f"{name}_mlp")
    return residual_branch(tokens, x, init_values=init_values, drop_path_rate=drop_path_rate, name=name, index=2)
