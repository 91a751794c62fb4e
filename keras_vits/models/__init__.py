"""Model families, one module each: `vit` (ViT and DeiT), `swin`, `pvt` (v1 and v2)."""

from keras_vits.models.pvt import PyramidVisionTransformer, PyramidVisionTransformerV2
from keras_vits.models.swin import SwinTransformer
from keras_vits.models.vit import DeiT, VisionTransformer
