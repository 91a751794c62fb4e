"""PVT v2-li's adaptive average pooling, as PyTorch's `AdaptiveAvgPool2d`, from builtin TFLite ops."""

import numpy as np

from keras_vits import ops
from keras_vits.backend import keras, register_serializable
from keras_vits.layers.helpers import to_2tuple


def adaptive_pool_matrix(in_size, out_size):
    """`(out_size, in_size)` averaging weights: output `i` averages inputs `[floor(i*n/m), ceil((i+1)*n/m))`."""
    matrix = np.zeros((out_size, in_size), np.float32)
    for i in range(out_size):
        start = (i * in_size) // out_size
        stop = -((-(i + 1) * in_size) // out_size)
        matrix[i, start:stop] = 1.0 / (stop - start)
    return matrix


@register_serializable
class AdaptiveAveragePooling2D(keras.layers.Layer):
    """Average-pools a map to a fixed size, with PyTorch's `AdaptiveAvgPool2d` bins.

    Written here because tf-keras has no such layer, and as two constant
    matrix products it converts to builtin TFLite ops (BATCH_MATMUL) for any
    input size, upsampling included.

    Args:
        output_size: int or `(h, w)`.

    Shapes: `(B, H, W, C)` -> `(B, h, w, C)`.
    """

    def __init__(self, output_size, **kwargs):
        super().__init__(**kwargs)
        self.output_size = to_2tuple(output_size, "output_size")

    def call(self, x):
        height, width, channels = x.shape[1], x.shape[2], x.shape[3]
        out_h, out_w = self.output_size
        rows = ops.convert_to_tensor(adaptive_pool_matrix(height, out_h)[None], dtype=x.dtype)
        cols = ops.convert_to_tensor(adaptive_pool_matrix(width, out_w)[None], dtype=x.dtype)
        x = ops.matmul(rows, ops.reshape(x, [-1, height, width * channels]))  # (B, h, W * C)
        x = ops.transpose(ops.reshape(x, [-1, out_h, width, channels]), [0, 2, 1, 3])
        x = ops.matmul(cols, ops.reshape(x, [-1, width, out_h * channels]))  # (B, w, h * C)
        return ops.transpose(ops.reshape(x, [-1, out_w, out_h, channels]), [0, 2, 1, 3])

    def compute_output_shape(self, input_shape):
        return (input_shape[0], *self.output_size, input_shape[3])

    def get_config(self):
        config = super().get_config()
        config.update(output_size=self.output_size)
        return config
