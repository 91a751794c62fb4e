"""Why PVT v2 has its own depth-wise conv layer: a 3x3 depth-wise conv in TF's graph and under XLA.

    python tools/depthwise_xla.py --shapes 1x56x56x512 16x56x56x512 16x28x28x1024
    python tools/depthwise_xla.py --models pvt_v2_b1 --batch-sizes 1 16 --repeats 9

Times, per shape (medians over alternating repetitions, milliseconds per call):
- graph: `keras.layers.DepthwiseConv2D` in a plain `tf.function` (TensorFlow's kernel);
- xla_stock: the same layer under `jit_compile=True` (XLA's own depth-wise convolution);
- xla_shift_sum_bhwc: the same nine shifted multiply-adds sliced from the (B, H, W, C) map,
  the layer's first formulation, kept here as the yardstick for the next one;
- xla_shift_sum: `XlaFriendlyDepthwiseConv2D` under `jit_compile=True` (shifted multiply-adds
  sliced from (B, H, W * C) rows).

With `--models`, each model runs under XLA twice in one process, alternating: with the
layer as it is and with its convolution swapped for `shift_sum_bhwc`, and prints images/s.
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

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


def _first_formulation_call(layer, inputs):
    """`XlaFriendlyDepthwiseConv2D.call` as it was with `shift_sum_bhwc` (3x3, bias, no activation)."""
    if tuple(layer.kernel_size) != (3, 3) or layer.activation is not keras.activations.linear:
        raise ValueError(f"{layer.name}: the A/B swap handles 3x3 convolutions without activation only.")
    outputs = shift_sum_bhwc(inputs, layer.kernel)
    return outputs + layer.bias if layer.use_bias else outputs


def time_model(name, batch_size, repeats):
    """Images/s of `name` under XLA with the current layer and with the first formulation."""
    model = keras_vits.create_model(name)
    images = tf.random.stateless_uniform([batch_size, 224, 224, 3], seed=(0, 0))
    current_call = XlaFriendlyDepthwiseConv2D.call
    XlaFriendlyDepthwiseConv2D.call = _first_formulation_call
    try:  # the swap only has to last while this function is traced
        first = tf.function(lambda: model(images, training=False), jit_compile=True)
        first_outputs = first().numpy()
    finally:
        XlaFriendlyDepthwiseConv2D.call = current_call
    current = tf.function(lambda: model(images, training=False), jit_compile=True)
    np.testing.assert_allclose(current().numpy(), first_outputs, atol=1e-4)
    seconds = alternating_medians({"first (B, H, W, C)": first, "current (rows)": current}, repeats, calls=3)
    return {case: batch_size / value for case, value in seconds.items()}


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
    parser.add_argument("--shapes", nargs="+", help="BxHxWxC maps; default three, or none when --models is given.")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--models", nargs="*", default=[], help="Registry names to A/B under XLA (see above).")
    parser.add_argument("--batch-sizes", nargs="+", type=int, default=[1, 16])
    args = parser.parse_args()
    if args.models:
        print("| model | batch | first formulation img/s | rows img/s | rows vs first |")
        print("|---|---|---|---|---|")
        for name in args.models:
            for batch_size in args.batch_sizes:
                rates = time_model(name, batch_size, args.repeats)
                first, rows = rates["first (B, H, W, C)"], rates["current (rows)"]
                print(f"| {name} | {batch_size} | {first:.2f} | {rows:.2f} | {rows / first:.3f}x |", flush=True)
    if args.shapes is None:
        if args.models:
            return
        args.shapes = ["1x56x56x512", "16x56x56x512", "16x28x28x1024"]
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
