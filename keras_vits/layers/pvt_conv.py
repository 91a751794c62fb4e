"""PVT v2's depth-wise convolution (in its MLP), kept fast when XLA compiles it on CPU."""

from keras_vits import ops
from keras_vits.backend import depthwise_kernel, keras, register_serializable


@register_serializable
class XlaFriendlyDepthwiseConv2D(keras.layers.DepthwiseConv2D):
    """`keras.layers.DepthwiseConv2D`, computed as shifted multiply-adds under XLA.

    XLA's CPU backend lowers depth-wise convolutions to a naive loop: a 3x3 one on
    a `(16, 56, 56, 512)` map took 1.39 s against 73 ms for TensorFlow's own kernel
    (docs/PERFORMANCE.md), which made PVT v2 four times slower under XLA. Written
    as `sum_ij shift_ij(x) * w_ij`, the same convolution is one fused elementwise loop
    for XLA (103 ms there). Outside XLA (graphs, TFLite, tfmot) it is the stock layer,
    with the same weights and config.

    Shapes: `(B, H, W, C)` -> `(B, H, W, C * depth_multiplier)`.
    """

    def _shift_sum_applies(self):
        return (
            ops.in_xla_context()
            and self.padding == "same"
            and self.data_format == "channels_last"
            and self.depth_multiplier == 1
            and tuple(self.strides) == (1, 1)
            and tuple(self.dilation_rate) == (1, 1)
            and all(size % 2 for size in self.kernel_size)
        )

    def call(self, inputs):
        if not self._shift_sum_applies():
            return super().call(inputs)
        kernel = ops.cast(depthwise_kernel(self), inputs.dtype)  # (kh, kw, C, 1)
        kernel_h, kernel_w = self.kernel_size
        batch, height, width, channels = ops.shape(inputs)
        padded = ops.pad(inputs, [[0, 0], [kernel_h // 2] * 2, [kernel_w // 2] * 2, [0, 0]])
        # Rows of (W + kw - 1) * C values: a shift along W is then a contiguous slice of
        # the last axis, which XLA vectorises better. Sliced from (B, H, W, C) instead, the
        # conv alone ran 1.2-1.5x slower at batch 1, pvt_v2_b1 ~2% slower at batch 1 and
        # 6-14% at batch 16 (docs/PERFORMANCE.md, PVT v2 section).
        rows = ops.reshape(padded, [batch, height + kernel_h - 1, (width + kernel_w - 1) * channels])
        outputs = None
        for row in range(kernel_h):
            for col in range(kernel_w):
                weights = ops.tile(kernel[row, col, :, 0], [width])  # (W * C,), channel fastest
                term = rows[:, row : row + height, col * channels : (col + width) * channels] * weights
                outputs = term if outputs is None else outputs + term
        outputs = ops.reshape(outputs, [batch, height, width, channels])
        if self.use_bias:
            outputs = outputs + ops.cast(self.bias, inputs.dtype)
        return outputs if self.activation is None else self.activation(outputs)
