"""Model families, one module each: `vit` (ViT and DeiT)."""

from keras_vits.models.vit import DeiT, VisionTransformer
