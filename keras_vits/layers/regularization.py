"""Stochastic depth and layer scale."""

from keras_vits import ops
from keras_vits.backend import keras, register_serializable


@register_serializable
class DropPath(keras.layers.Layer):
    """Stochastic depth: drops the whole residual branch for a random subset of samples.

    Kept samples are scaled by `1 / (1 - rate)`, so inference needs no rescaling.

    Args:
        rate: probability of dropping a sample's branch, in `[0, 1)`. Defaults to 0.
        seed: seed of the layer's random generator (Keras 3). Defaults to None.

    Shapes: `(B, ...)` -> same.
    """

    def __init__(self, rate=0.0, seed=None, **kwargs):
        super().__init__(**kwargs)
        if not 0.0 <= rate < 1.0:
            raise ValueError(f"DropPath rate must be in [0, 1), got {rate}.")
        self.rate = float(rate)
        self.seed = seed
        self.seed_generator = ops.new_seed_generator(seed)

    def call(self, inputs, training=None):
        if not training or self.rate == 0.0:
            return inputs
        keep_prob = 1.0 - self.rate
        mask_shape = (ops.shape(inputs)[0],) + (1,) * (len(inputs.shape) - 1)
        keep = ops.floor(keep_prob + ops.random_uniform(mask_shape, self.seed_generator))
        return inputs * ops.cast(keep / keep_prob, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(rate=self.rate, seed=self.seed)
        return config


@register_serializable
class LayerScale(keras.layers.Layer):
    """Multiplies each channel by a learned scale (CaiT's layer scale).

    Args:
        init_value: initial value of every scale. Defaults to 1e-5.

    Shapes: `(B, ..., C)` -> same. The weight `gamma` has shape `(C,)`.
    """

    def __init__(self, init_value=1e-5, **kwargs):
        super().__init__(**kwargs)
        self.init_value = float(init_value)

    def build(self, input_shape):
        self.gamma = self.add_weight(
            name="gamma",
            shape=(int(input_shape[-1]),),
            initializer=keras.initializers.Constant(self.init_value),
        )
        super().build(input_shape)

    def call(self, inputs):
        return inputs * ops.cast(self.gamma, inputs.dtype)

    def get_config(self):
        config = super().get_config()
        config.update(init_value=self.init_value)
        return config
