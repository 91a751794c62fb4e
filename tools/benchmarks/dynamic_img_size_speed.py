"""What `dynamic_img_size=True` costs: images/s of a dynamic ViT against fixed-size models, in one run.

For each size, a fixed-size model built for it and one `dynamic_img_size` model (stored
at 224, its position embedding resampled in the graph) run the same batch, alternately,
as `tf.function` graphs (plain and XLA). Prints images/s and the dynamic/fixed ratio.
Random weights; run with nothing else heavy on the machine::

    python tools/benchmarks/dynamic_img_size_speed.py [--model vit_tiny_patch16_224] [--sizes 224 384] [--batch 8]
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

import argparse
import time

import numpy as np
import tensorflow as tf


def images_per_second(function, images, repeats):
    function(images)  # trace and warm up
    function(images)
    start = time.perf_counter()
    for _ in range(repeats):
        function(images).numpy()
    return repeats * images.shape[0] / (time.perf_counter() - start)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="vit_tiny_patch16_224")
    parser.add_argument("--sizes", type=int, nargs="+", default=[224, 384])
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3, help="alternations of fixed and dynamic; the best is kept")
    args = parser.parse_args(argv)
    dynamic = keras_vits.create_model(args.model, dynamic_img_size=True)
    print(f"{args.model}, batch {args.batch}, float32, best of {args.rounds} rounds of {args.repeats} batches")
    print(f"{'size':>6} {'mode':>6} {'fixed img/s':>12} {'dynamic img/s':>14} {'dynamic/fixed':>14}")
    for size in args.sizes:
        fixed = keras_vits.create_model(args.model, image_size=size)
        images = tf.constant(np.random.default_rng(0).normal(size=(args.batch, size, size, 3)).astype("float32"))
        for mode, jit in (("graph", False), ("xla", True)):
            runs = {
                "fixed": tf.function(lambda x, m=fixed: m(x, training=False), jit_compile=jit),
                "dynamic": tf.function(lambda x, m=dynamic: m(x, training=False), jit_compile=jit),
            }
            best = dict.fromkeys(runs, 0.0)
            for _ in range(args.rounds):
                for name, function in runs.items():
                    best[name] = max(best[name], images_per_second(function, images, args.repeats))
            print(
                f"{size:>6} {mode:>6} {best['fixed']:>12.1f} {best['dynamic']:>14.1f} "
                f"{best['dynamic'] / best['fixed']:>14.3f}"
            )


if __name__ == "__main__":
    main()
