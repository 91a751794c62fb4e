"""Input normalisation of the pretrained weights, per channel (RGB), as timm names it."""

#: torchvision's ImageNet statistics: DeiT, Swin, PVT and DINO weights.
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)

#: `[-1, 1]` scaling (Inception's): the AugReg and original ViT weights.
IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)
