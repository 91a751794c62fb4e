"""Training step with LayerNorm's closed-form gradient against autodiff's, alternating, in one process.

    python tools/layer_norm_gradient_ab.py fmnist_student deit_small_patch16_224 [--batch-size 16] [--rounds 7]

For each model, two copies of `keras-vits benchmark`'s training step (forward, cross-entropy,
backward, AdamW; graph mode, float32) are traced: one with `keras_vits.layers.LayerNorm`'s
training path as shipped (the hand-written gradient), one with that path replaced by the plain
normalization, whose gradient autodiff builds. Steps alternate, one call each per round, and the
script prints both medians and their ratio. `fmnist_student` runs at its benchmark batch of 128.
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

import argparse
import statistics
import time
from unittest import mock

import tensorflow as tf

from keras_vits.benchmark import CUSTOM_CASES, benchmark_case, train_step_function
from keras_vits.layers import norm
from keras_vits.registry import create_model


def traced_steps(name, batch_size):
    """`({"closed form": step, "autodiff": step}, images, model)`: both steps traced, on one model."""
    registry_name, size, channels, classes, arguments = benchmark_case(name, 224)
    model = create_model(registry_name, image_size=size, in_chans=channels, num_classes=classes, **arguments)
    images = tf.random.stateless_normal([batch_size, size, size, channels], seed=(0, 1))
    steps = {"closed form": train_step_function(model, batch_size, num_classes=classes)}
    steps["closed form"](images)  # traced here, with the shipped gradient
    with mock.patch.object(norm, "_normalize_last_axis_with_fused_gradient", norm._normalize_last_axis):
        steps["autodiff"] = train_step_function(model, batch_size, num_classes=classes)
        steps["autodiff"](images)  # traced inside the patch: its graph keeps autodiff's gradient
    return steps, images, model


def step_milliseconds(name, batch_size, rounds):
    """`{"closed form": [ms per step], "autodiff": [ms per step]}` of `name`'s training step."""
    steps, images, _ = traced_steps(name, batch_size)
    times = {variant: [] for variant in steps}
    for _ in range(rounds):
        for variant, step in steps.items():
            started = time.perf_counter()
            step(images).numpy()
            times[variant].append(1000 * (time.perf_counter() - started))
    return times


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch-size", type=int, default=16, help="Default: 16 (fmnist_student: 128).")
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args(argv)
    print("| model | batch | closed form ms | autodiff ms | autodiff / closed form |")
    print("|---|---|---|---|---|")
    for name in args.models:
        batch = 128 if name in CUSTOM_CASES else args.batch_size
        times = step_milliseconds(name, batch, args.rounds)
        closed, autodiff = statistics.median(times["closed form"]), statistics.median(times["autodiff"])
        print(f"| {name} | {batch} | {closed:.1f} | {autodiff:.1f} | {autodiff / closed:.3f}x |", flush=True)


if __name__ == "__main__":
    main()
