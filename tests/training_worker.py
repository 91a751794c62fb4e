"""Runs `keras_vits.training.train` on tfds mock data in its own process, for the strategy and resume tests.

    python tests/training_worker.py OUTPUT_DIR [--strategy S] [--devices N] [--max-steps N] [--slow]
                                              [--compare-mirrored] [--set key=value ...]

Prints one line `RESULT <json>` with the final logs, the step and a checksum of the weights.
The training tests also import its `tiny_recipe` and `write_image_folder`.
"""

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

TINY_STUDENT = {"patch_size": 7, "embed_dim": 16, "depth": 1, "num_heads": 2}


def tiny_recipe(**overrides):
    from keras_vits.training.recipes import Recipe

    base = dict(
        name="tiny_mock",
        dataset="mnist",
        eval_split="test",
        image_size=28,
        model="deit_tiny_distilled_patch16_224",
        model_overrides=TINY_STUDENT,
        epochs=2,
        batch_size=8,
        base_lr=1e-3,
        warmup_epochs=0.5,
        label_smoothing=0.0,
        crop_padding=2,
        checkpoint_every=2,
        augment=False,
    )
    base.update(overrides)
    return Recipe(**base)


def write_image_folder(root, classes=("cat", "dog", "eel"), per_class=4, size=20):
    """A `folder:` data set under `root`: one folder of random RGB PNGs per class, image i (size + i) x size."""
    import numpy as np
    import tensorflow as tf  # here, not at the top: a worker sets its devices up before TensorFlow loads

    rng = np.random.default_rng(0)
    for name in classes:
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            image = rng.integers(0, 255, size=(size + i, size, 3), dtype=np.uint8)
            tf.io.write_file(str(root / name / f"{i}.png"), tf.io.encode_png(image))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("output")
    parser.add_argument("--strategy", default="default")
    parser.add_argument("--devices", type=int, default=1)
    parser.add_argument("--max-steps", type=int, default=None)
    parser.add_argument("--examples", type=int, default=64)
    parser.add_argument("--slow", action="store_true", help="sleep after each step so a test can kill the run")
    parser.add_argument("--compare-mirrored", action="store_true")
    parser.add_argument("--set", nargs="*", default=[])
    args = parser.parse_args()

    import numpy as np
    import tensorflow as tf

    if args.devices > 1:
        cpu = tf.config.list_physical_devices("CPU")[0]
        tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * args.devices)
    import tensorflow_datasets as tfds

    from keras_vits.training import loop as train_module
    from keras_vits.training.recipes import parse_overrides

    overrides = parse_overrides(args.set)
    if args.slow:  # XLA cannot compile the py_function sleep below
        overrides.setdefault("compile_mode", "graph")
    recipe = tiny_recipe(**overrides)
    if args.slow:
        original = train_module.DistillationModel.train_step

        def slow_step(self, data):
            outputs = original(self, data)
            tf.py_function(lambda: __import__("time").sleep(0.3), [], [])
            return outputs

        train_module.DistillationModel.train_step = slow_step

    def run(output, strategy):
        with tfds.testing.mock_data(num_examples=args.examples):
            result = train_module.train(recipe, output, strategy=strategy, max_steps=args.max_steps, verbose=0)
        checksum = float(sum(np.abs(w).sum() for w in result["student"].get_weights()))
        losses = [h["train_loss"] for h in result["history"]]
        return {"final": result["final"], "steps": result["steps"], "checksum": checksum, "train_losses": losses}

    if args.compare_mirrored:
        one = run(os.path.join(args.output, "one_device"), "default")
        devices = [f"/cpu:{i}" for i in range(args.devices)]
        two = run(os.path.join(args.output, "mirrored"), tf.distribute.MirroredStrategy(devices))
        print("RESULT " + json.dumps({"one_device": one, "mirrored": two}))
    else:
        print("RESULT " + json.dumps(run(args.output, args.strategy)))


if __name__ == "__main__":
    main()
