"""Convnet teachers trained by this package (any other Keras classifier can teach too).

`convnet_small`: three stages of 3x3 convolutions with batch norm (32, 64, 128
channels), global average pooling and a linear head; about 0.29 M parameters and
20 M multiply-accumulates at 28x28. It returns logits.
"""

from keras_vits.backend import keras


def convnet_small(image_size, channels, num_classes, name="convnet_small"):
    """A small VGG-style convnet: `(B, S, S, channels)` images -> `(B, num_classes)` logits."""
    layers = keras.layers
    inputs = keras.Input((image_size, image_size, channels), name="images")
    x = inputs
    for stage, width in enumerate((32, 64, 128)):
        for block in range(2):
            x = layers.Conv2D(width, 3, padding="same", use_bias=False, name=f"stage{stage}_conv{block}")(x)
            x = layers.BatchNormalization(momentum=0.9, name=f"stage{stage}_bn{block}")(x)
            x = layers.ReLU(name=f"stage{stage}_relu{block}")(x)
        if stage < 2:
            x = layers.MaxPooling2D(name=f"stage{stage}_pool")(x)
    x = layers.GlobalAveragePooling2D(name="pool")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    outputs = layers.Dense(num_classes, name="head")(x)
    return keras.Model(inputs, outputs, name=name)


TEACHERS = {"convnet_small": convnet_small}
