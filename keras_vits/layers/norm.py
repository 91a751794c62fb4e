"""Layer normalization whose TFLite lowering quantizes to every mode, 16x8 included."""

import tensorflow as tf

from keras_vits.backend import keras, register_serializable


@register_serializable
class LayerNorm(keras.layers.LayerNormalization):
    """`LayerNormalization` over the last axis, computed as `(x - mean) * rsqrt(var + eps) * gamma + beta`.

    Same arguments, weights (`gamma`, `beta`) and results as Keras's layer, which
    it subclasses; only the lowering differs. Keras's goes through
    `tf.nn.moments` (SQUARED_DIFFERENCE and NEG in TFLite), for which LiteRT has
    no 16x8 kernels, so a 16x8 model would not run; SUB, MUL, MEAN and RSQRT
    have them. Statistics are computed in float32 under mixed precision.

    Args:
        epsilon: added to the variance. Defaults to 1e-6 (timm's ViT); pass 1e-5 for PyTorch's default.

    Shapes: `(B, ..., C)` -> same.
    """

    def __init__(self, epsilon=1e-6, **kwargs):
        kwargs.pop("axis", None)
        super().__init__(axis=-1, epsilon=epsilon, **kwargs)

    def get_config(self):
        config = super().get_config()
        config.pop("axis", None)  # always the last axis; Keras rewrites it to a positive index once built
        return config

    def call(self, inputs):
        x = tf.cast(inputs, tf.float32)
        mean = tf.reduce_mean(x, axis=-1, keepdims=True)
        centered = x - mean
        variance = tf.reduce_mean(centered * centered, axis=-1, keepdims=True)
        out = centered * tf.math.rsqrt(variance + self.epsilon)
        if self.scale:
            out = out * tf.cast(self.gamma, tf.float32)
        if self.center:
            out = out + tf.cast(self.beta, tf.float32)
        return tf.cast(out, self.compute_dtype)
