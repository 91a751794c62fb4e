"""Convnet teachers trained by this package (any other Keras classifier can teach too).

Both are VGG-style: three stages of two 3x3 convolutions with batch norm, max pooling
between stages, global average pooling and a linear head. They return logits.

- `convnet_small`: 32, 64, 128 channels; about 0.29 M parameters and 29 M
  multiply-accumulates at 28x28 (the 5-epoch table's teacher, 93.6% on Fashion-MNIST).
- `convnet_medium`: 48, 96, 192 channels; about 0.65 M parameters and 65 M
  multiply-accumulates at 28x28 (the DeiT tables' teacher since 2026-12-02: the small one stopped
  at 93.5% whatever its schedule).
"""

from keras_vits.backend import keras


def vgg_convnet(image_size, channels, num_classes, widths, name):
    """`(B, S, S, channels)` images -> `(B, num_classes)` logits; one stage per entry of `widths`."""
    layers = keras.layers
    inputs = keras.Input((image_size, image_size, channels), name="images")
    x = inputs
    for stage, width in enumerate(widths):
        for block in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"stage{stage}_conv{block}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"stage{stage}_bn{block}")(x)
            x = layers.ReLU(name=f"stage{stage}_relu{block}")(x)
        if stage < len(widths) - 1:
            x = layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


def convnet_small(image_size, channels, num_classes, name="convnet_small"):
    """32/64/128 channels: `(B, S, S, channels)` -> `(B, num_classes)` logits."""
    return vgg_convnet(image_size, channels, num_classes, (32, 64, 128), name)


def convnet_medium(image_size, channels, num_classes, name="convnet_medium"):
    """48/96/192 channels: `(B, S, S, channels)` -> `(B, num_classes)` logits."""
    return vgg_convnet(image_size, channels, num_classes, (48, 96, 192), name)


TEACHERS = {"convnet_small": convnet_small, "convnet_medium": convnet_medium}
