"""Layer normalization whose TFLite lowering quantizes to every mode, 16x8 included."""

from keras_vits import ops
from keras_vits.backend import keras, register_serializable


def _normalized_and_inverse_std(x, epsilon):
    """`((x - mean) * rsqrt(var + epsilon), rsqrt(var + epsilon))` over the last axis: `(..., C)`, `(..., 1)`."""
    mean = ops.mean(x, axis=-1, keepdims=True)
    centered = x - mean
    variance = ops.mean(centered * centered, axis=-1, keepdims=True)
    inverse_std = ops.rsqrt(variance + epsilon)
    return centered * inverse_std, inverse_std


def _normalize_last_axis(x, epsilon):
    """`(x - mean) * rsqrt(var + epsilon)` over the last axis, with autodiff's gradient. `(..., C)` -> same."""
    return _normalized_and_inverse_std(x, epsilon)[0]


def _normalize_last_axis_with_fused_gradient(x, epsilon):
    """The same normalization with its gradient written out: `(..., C)` -> same.

    Autodiff differentiates the mean, the centring and the variance one op at a
    time (about twice the kernels of the forward pass); the closed form
    `dx = rstd * (g - mean(g) - x_hat * mean(g * x_hat))` needs seven. That made the
    graph-mode training step 2.6-5.5% faster for all four families on an Intel Xeon
    (docs/PERFORMANCE.md). Used only in training, so
    exported graphs hold no `IdentityN` of a custom gradient. TensorFlow backend and tf-keras only
    (`ops.FUSED_NORM_GRADIENT`).
    """

    @ops.custom_gradient
    def normalize(inputs):
        normalized, inverse_std = _normalized_and_inverse_std(inputs, epsilon)

        def gradient(upstream):
            mean_upstream = ops.mean(upstream, axis=-1, keepdims=True)
            mean_projection = ops.mean(upstream * normalized, axis=-1, keepdims=True)
            return inverse_std * (upstream - mean_upstream - normalized * mean_projection)

        return normalized, gradient

    return normalize(x)


@register_serializable
class LayerNorm(keras.layers.LayerNormalization):
    """`LayerNormalization` over the last axis, computed as `(x - mean) * rsqrt(var + eps) * gamma + beta`.

    Same arguments, weights (`gamma`, `beta`) and results as Keras's layer, which
    it subclasses; only the lowering differs. Keras's goes through
    TensorFlow's `moments` (SQUARED_DIFFERENCE and NEG in TFLite), for which LiteRT has
    no 16x8 kernels, so a 16x8 model would not run; SUB, MUL, MEAN and RSQRT
    have them. Statistics are computed in float32 under mixed precision. With
    `training=True` the normalization's gradient is the closed form rather than
    autodiff's (same values, fewer kernels).

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

    def call(self, inputs, training=None):
        x = ops.cast(inputs, "float32")
        # A symbolic `training` (tf-keras) takes autodiff's path: slower, same values.
        if training is True and ops.FUSED_NORM_GRADIENT:
            out = _normalize_last_axis_with_fused_gradient(x, self.epsilon)
        else:
            out = _normalize_last_axis(x, self.epsilon)
        if self.scale:
            out = out * ops.cast(self.gamma, "float32")
        if self.center:
            out = out + ops.cast(self.beta, "float32")
        return ops.cast(out, self.compute_dtype)
