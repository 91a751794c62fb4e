"""Building blocks of the families, with no copy per family.

Shared by every family: patch embedding, tokens and position embeddings, the
attention cores, the MLP, the transformer block, stochastic depth, layer scale,
the classifier head, a LayerNormalization whose TFLite lowering quantizes to
16x8, and small helpers (`to_2tuple`, `dense_initializer`, ImageNet constants).
Used by one family only, and named for it: `swin_window` (window partition,
shift and attention) and `pvt_conv`, `pvt_pooling` (PVT v2's depth-wise conv
and adaptive pooling), `vit_dynamic` (plain-ViT position embeddings resized to
each call's grid, token slicing, patch tokens as maps). `feature_pyramid` holds
ViTDet's simple feature pyramid, a neck for any backbone with one stride-16 map.

Custom layers hold only what Keras lacks. Blocks are functions that wire
standard Keras layers with timm-like names, so weights stay addressable by name.
"""

from keras_vits.layers.attention import (
    AttentionCore,
    AttentionCoreBase,
    SpatialReductionAttentionCore,
    attention_block,
)
from keras_vits.layers.feature_pyramid import simple_feature_pyramid, with_simple_feature_pyramid
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
from keras_vits.layers.vit_dynamic import DynamicPositionEmbedding, SliceTokens, TokensToMap
from keras_vits.variants import (  # timm's names for the pretrained weights' normalisation
    IMAGENET_DEFAULT_MEAN,
    IMAGENET_DEFAULT_STD,
    IMAGENET_INCEPTION_MEAN,
    IMAGENET_INCEPTION_STD,
)

#: Every custom layer class, for tests and for `custom_objects`.
CUSTOM_LAYERS = (
    AdaptiveAveragePooling2D,
    AttentionCore,
    DropPath,
    DynamicPositionEmbedding,
    LayerNorm,
    LayerScale,
    PatchMerging2x2,
    PositionEmbedding,
    PrependToken,
    SliceTokens,
    SpatialReductionAttentionCore,
    TokensToMap,
    WindowAttentionCore,
    WindowPartition,
    WindowReverse,
    XlaFriendlyDepthwiseConv2D,
)
