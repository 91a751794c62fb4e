"""Building blocks shared by every family.

Custom layers hold only what Keras lacks (tokens, position embedding, the
attention cores, stochastic depth, layer scale, window ops, adaptive pooling,
and a LayerNormalization whose TFLite lowering quantizes to 16x8). Blocks are functions that wire
standard Keras layers with timm-like names, so weights stay addressable by name.
"""

from keras_vits.layers.attention import (
    AttentionCore,
    SpatialReductionAttentionCore,
    attention_block,
)
from keras_vits.layers.conv import XlaFriendlyDepthwiseConv2D
from keras_vits.layers.mlp import mlp_block
from keras_vits.layers.norm import LayerNorm
from keras_vits.layers.patch_embed import patch_embed, patch_grid, to_2tuple
from keras_vits.layers.pooling import AdaptiveAveragePooling2D
from keras_vits.layers.regularization import DropPath, LayerScale
from keras_vits.layers.tokens import (
    PositionEmbedding,
    PrependToken,
    sincos_1d_table,
    sincos_2d_table,
)
from keras_vits.layers.transformer import transformer_block
from keras_vits.layers.window import (
    PatchMerging2x2,
    WindowAttentionCore,
    WindowPartition,
    WindowReverse,
)

#: Every custom layer class, for tests and for `custom_objects`.
CUSTOM_LAYERS = (
    AdaptiveAveragePooling2D,
    AttentionCore,
    DropPath,
    LayerNorm,
    LayerScale,
    PatchMerging2x2,
    PositionEmbedding,
    PrependToken,
    SpatialReductionAttentionCore,
    WindowAttentionCore,
    WindowPartition,
    WindowReverse,
    XlaFriendlyDepthwiseConv2D,
)
