"""DistillationModel's training step in two source trees, alternating: did a change slow it on TensorFlow?

Each round runs each tree in a fresh process (`PYTHONPATH=TREE`): a DeiT student (the Fashion-MNIST
student's shape: 28x28x1, patch 7, 96 wide, 4 deep) with a small convnet teacher, hard distillation,
AdamW, batch 128, `train_step` under `tf.function` in graph mode and with XLA; the median of
`--steps` timed steps after two warm-up steps.

    git worktree add /tmp/before 37897d1
    python tools/benchmarks/distillation_step_ab.py --trees /tmp/before . --rounds 3 \\
        --output docs/benchmarks/distillation_step_ab_zen4.json
"""

import argparse
import json
import os
import pathlib
import subprocess
import sys

TIMING = """
import json, time
import numpy as np
import keras_vits
import tensorflow as tf
from keras_vits.backend import keras
from keras_vits.distillation import DistillationModel

keras.utils.set_random_seed(0)
student = keras_vits.DeiT(image_size=28, patch_size=7, in_chans=1, num_classes=10, embed_dim=96, depth=4, num_heads=3)
inputs = keras.Input((28, 28, 1))
x = keras.layers.Conv2D(32, 3, strides=2, activation="relu")(inputs)
x = keras.layers.Conv2D(64, 3, strides=2, activation="relu")(x)
teacher = keras.Model(inputs, keras.layers.Dense(10)(keras.layers.GlobalAveragePooling2D()(x)))
rng = np.random.default_rng(0)
batch = (tf.constant(rng.normal(size=(128, 28, 28, 1)).astype("float32")), tf.constant(np.arange(128) % 10))
result = {}
for mode, jit in (("graph", False), ("xla", True)):
    model = DistillationModel(student, teacher, mode="hard")
    model.compile(optimizer=keras.optimizers.AdamW(1e-3), jit_compile=jit)
    step = tf.function(model.train_step, jit_compile=jit)
    for _ in range(2):
        float(step(batch)["loss"])
    times = []
    for _ in range(STEPS):
        start = time.perf_counter()
        float(step(batch)["loss"])
        times.append(time.perf_counter() - start)
    result[f"{mode}_ms"] = 1000 * float(np.median(times))
print(json.dumps(result))
"""


def run_tree(tree, steps):
    environ = {**os.environ, "PYTHONPATH": str(tree), "TF_CPP_MIN_LOG_LEVEL": "3"}
    code = f"STEPS = {steps}\n{TIMING}"
    done = subprocess.run(
        [sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True, cwd=str(tree)
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--trees", nargs=2, required=True, metavar=("BEFORE", "AFTER"), help="Two source trees.")
    parser.add_argument("--rounds", type=int, default=3, help="Rounds of both trees, alternating. Default: 3.")
    parser.add_argument("--steps", type=int, default=30, help="Timed steps per mode. Default: 30.")
    parser.add_argument("--output", default=None, help="Write the JSON here as well as printing it.")
    args = parser.parse_args()
    trees = [pathlib.Path(tree).resolve() for tree in args.trees]
    runs = {"before": [], "after": []}
    for round_index in range(args.rounds):
        for label, tree in zip(runs, trees):
            runs[label].append(run_tree(tree, args.steps))
            print(f"round {round_index + 1} {label}: {json.dumps(runs[label][-1])}", flush=True)
    speed = {
        key: [before[key] / after[key] for before, after in zip(runs["before"], runs["after"])]
        for key in runs["after"][0]
    }
    report = {
        "command": "python tools/benchmarks/distillation_step_ab.py " + " ".join(sys.argv[1:]),
        "trees": {label: str(tree) for label, tree in zip(runs, trees)},
        "note": "speed of after against before per round: before time / after time (above 1: after is faster)",
        "runs": runs,
        "speed_after_vs_before": speed,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        pathlib.Path(args.output).write_text(text + "\n")


if __name__ == "__main__":
    main()
