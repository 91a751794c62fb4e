"""Building blocks of the families, with no copy per family.

Shared by every family: patch embedding, tokens and position embeddings, the
attention cores, the MLP, the transformer block, stochastic depth, layer scale,
the classifier head, a LayerNormalization whose TFLite lowering quantizes to
16x8, and small helpers (`to_2tuple`, `dense_initializer`, ImageNet constants).
Used by one family only, and named for it: `swin_window` (window partition,
shift and attention) and `pvt_conv`, `pvt_pooling` (PVT v2's depth-wise conv
and adaptive pooling).

Custom layers hold only what Keras lacks. Blocks are functions that wire
standard Keras layers with timm-like names, so weights stay addressable by name.
"""

from keras_vits.layers.attention import (
    AttentionCore,
    AttentionCoreBase,
    SpatialReductionAttentionCore,
    attention_block,
)
from keras_vits.layers.constants import (
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
)
from keras_vits.layers.head import classifier_head
from keras_vits.layers.helpers import dense_initializer, to_2tuple
from keras_vits.layers.mlp import mlp_block
from keras_vits.layers.norm import LayerNorm
from keras_vits.layers.patch_embed import patch_embed, patch_grid
from keras_vits.layers.pvt_conv import XlaFriendlyDepthwiseConv2D
from keras_vits.layers.pvt_pooling import AdaptiveAveragePooling2D
from keras_vits.layers.regularization import DropPath, LayerScale
from keras_vits.layers.swin_window import (
    PatchMerging2x2,
    WindowAttentionCore,
    WindowPartition,
    WindowReverse,
)
from keras_vits.layers.tokens import (
    PositionEmbedding,
    PrependToken,
    sincos_1d_table,
    sincos_2d_table,
)
from keras_vits.layers.transformer import transformer_block

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
