"""Why PVT v2 has its own depth-wise conv layer: a 3x3 depth-wise conv in TF's graph and under XLA.

    python tools/depthwise_xla.py --shapes 1x56x56x512 16x56x56x512 16x28x28x1024

Times, per shape (medians over alternating repetitions, milliseconds per call):
- graph: `keras.layers.DepthwiseConv2D` in a plain `tf.function` (TensorFlow's kernel);
- xla_stock: the same layer under `jit_compile=True` (XLA's own depth-wise convolution);
- xla_shift_sum_bhwc: the same nine shifted multiply-adds sliced from the (B, H, W, C) map,
  the layer's first formulation, kept here as the yardstick for the next one;
- xla_shift_sum: `XlaFriendlyDepthwiseConv2D` under `jit_compile=True` (shifted multiply-adds
  sliced from (B, H, W * C) rows).
"""

import argparse

import numpy as np
import tensorflow as tf

from keras_vits.backend import keras
from keras_vits.inference import alternating_medians
from keras_vits.layers import XlaFriendlyDepthwiseConv2D


def shift_sum_bhwc(images, kernel):
    """3x3 'same' depth-wise conv as nine products of (B, H, W, C) slices; kernel (3, 3, C, 1)."""
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [1, 1], [1, 1], [0, 0]])
    terms = [
        padded[:, row : row + height, col : col + width, :] * kernel[row, col, :, 0]
        for row in range(3)
        for col in range(3)
    ]
    return tf.add_n(terms)


def time_shape(shape, repeats):
    images = tf.random.stateless_normal(shape, seed=(0, 0))
    stock = keras.layers.DepthwiseConv2D(3, padding="same")
    friendly = XlaFriendlyDepthwiseConv2D(3, padding="same")
    stock.build(shape)
    friendly.build(shape)
    friendly.set_weights(stock.get_weights())
    functions = {
        "graph": tf.function(lambda: stock(images)),
        "xla_stock": tf.function(lambda: stock(images), jit_compile=True),
        "xla_shift_sum_bhwc": tf.function(lambda: shift_sum_bhwc(images, stock.kernel) + stock.bias, jit_compile=True),
        "xla_shift_sum": tf.function(lambda: friendly(images), jit_compile=True),
    }
    expected = functions["graph"]().numpy()
    for function in functions.values():
        np.testing.assert_allclose(function().numpy(), expected, atol=1e-4)
    return alternating_medians(functions, repeats, calls=3)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shapes", nargs="+", default=["1x56x56x512", "16x56x56x512", "16x28x28x1024"])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(
        "| input (B, H, W, C) | graph ms | XLA stock ms | XLA shift-sum (B, H, W, C) ms | XLA shift-sum ms "
        "| shift-sum vs stock under XLA |"
    )
    print("|---|---|---|---|---|---|")
    for text in args.shapes:
        shape = [int(size) for size in text.split("x")]
        ms = {name: 1e3 * value for name, value in time_shape(shape, args.repeats).items()}
        print(
            f"| {tuple(shape)} | {ms['graph']:.2f} | {ms['xla_stock']:.1f} | {ms['xla_shift_sum_bhwc']:.2f} "
            f"| {ms['xla_shift_sum']:.2f} "
            f"| {ms['xla_stock'] / ms['xla_shift_sum']:.1f}x faster |"
        )


if __name__ == "__main__":
    main()
