"""Where a training step's time goes: forward, forward and backward, the full AdamW step, the update alone.

    python tools/train_step_split.py [--model vit_tiny_patch16_224] [--batch-size 16] [--repeats 5] [--jit-compile]

Each part is its own `tf.function` over the same model, images and labels; the
parts alternate in every repetition and the medians are printed (ms per call).
The full step is `keras_vits.benchmark.train_step_function`, the one the benchmark times.
With `--jit-compile` every part is compiled by XLA.
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

import argparse

import tensorflow as tf

from keras_vits.backend import keras
from keras_vits.benchmark import train_step_function
from keras_vits.inference import alternating_medians


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--jit-compile", action="store_true", help="compile every part with XLA")
    args = parser.parse_args(argv)
    model = keras_vits.create_model(args.model)
    size = model.inputs[0].shape[1]
    images = tf.random.stateless_normal([args.batch_size, size, size, 3], seed=(0, 1))
    labels = tf.random.stateless_uniform([args.batch_size], seed=(3, 4), maxval=1000, dtype=tf.int32)
    variables = model.trainable_variables

    def loss():
        logits = model(images, training=True)
        return tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))

    @tf.function(jit_compile=args.jit_compile)
    def forward_backward():
        with tf.GradientTape() as tape:
            value = loss()
        return tf.add_n([tf.reduce_sum(g) for g in tape.gradient(value, variables)])

    full_step = train_step_function(model, args.batch_size, jit_compile=args.jit_compile)
    optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.05)
    optimizer.build(variables)
    zeros = [tf.zeros_like(v) for v in variables]

    @tf.function(jit_compile=args.jit_compile)
    def update_only():
        optimizer.apply_gradients(zip(zeros, variables))
        return optimizer.iterations

    parts = {
        "forward with training=True": tf.function(loss, jit_compile=args.jit_compile),
        "forward and backward": forward_backward,
        "full step with AdamW": lambda: full_step(images),
        f"the AdamW update alone ({len(variables)} variables)": update_only,
    }
    seconds = alternating_medians(parts, args.repeats, calls=1)
    mode = "XLA" if args.jit_compile else "graph"
    print(f"{args.model}, batch {args.batch_size}, {mode}, median of {args.repeats}")
    print("| part | ms |\n|---|---|")
    for name, value in seconds.items():
        print(f"| {name} | {1000 * value:.0f} |")


if __name__ == "__main__":
    main()
