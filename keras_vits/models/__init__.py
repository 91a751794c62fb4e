"""Model families, one module each: `vit` (ViT and DeiT), `swin`."""

from keras_vits.models.swin import SwinTransformer
from keras_vits.models.vit import DeiT, VisionTransformer
