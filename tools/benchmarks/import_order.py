"""Whether importing TensorFlow before keras_vits costs speed: one process per import order, alternating.

Arms (each a fresh process):
    keras_vits_first: `import keras_vits` first (it turns TensorFlow's oneDNN kernels on where TensorFlow
                      would not, keras_vits/_onednn.py);
    tensorflow_first: `import tensorflow` first, as most scripts do;
    onednn_off:       TF_ENABLE_ONEDNN_OPTS=0, what tensorflow_first gives on an x86 CPU without AVX-512.
Each arm times vit_tiny_patch16_224's graph-mode forward pass (batch 1 and 16) and a DeiT-Ti training
step (batch 32, DistillationModel.train_step), median of `--repeats` calls, and reports oneDNN's state.

    python tools/benchmarks/import_order.py --rounds 2 --output docs/benchmarks/import_order.json
"""

import argparse
import json
import os
import platform
import subprocess
import sys

ARMS = {
    "keras_vits_first": ("import keras_vits\nimport tensorflow as tf", {}),
    "tensorflow_first": ("import tensorflow as tf\nimport keras_vits", {}),
    "onednn_off": ("import keras_vits\nimport tensorflow as tf", {"TF_ENABLE_ONEDNN_OPTS": "0"}),
}

TIMING = """
import json, time
import numpy as np
from keras_vits.backend import keras, onednn_enabled
from keras_vits.distillation import DistillationModel

def median_ms(fn, repeats):
    fn()
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return 1000 * float(np.median(times))

result = {"onednn": onednn_enabled()}
model = keras_vits.create_model("vit_tiny_patch16_224")
forward = tf.function(lambda x: model(x, training=False))
for batch in (1, 16):
    images = tf.constant(np.random.default_rng(0).normal(size=(batch, 224, 224, 3)).astype("float32"))
    result[f"vit_tiny_forward_b{batch}_ms"] = median_ms(lambda: forward(images).numpy(), REPEATS)
trainer = DistillationModel(keras_vits.create_model("deit_tiny_distilled_patch16_224", num_classes=10))
trainer.compile(optimizer=keras.optimizers.AdamW(1e-4), jit_compile=False)
step = tf.function(trainer.train_step)
batch = (tf.constant(np.random.default_rng(1).normal(size=(32, 224, 224, 3)).astype("float32")),
         tf.constant(np.arange(32) % 10))
result["deit_tiny_train_step_b32_ms"] = median_ms(lambda: float(step(batch)["loss"]), REPEATS // 4)
print(json.dumps(result))
"""


def run_arm(name, repeats):
    imports, extra_env = ARMS[name]
    environ = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3", **extra_env}
    code = f"REPEATS = {repeats}\n{imports}\n{TIMING}"
    done = subprocess.run([sys.executable, "-c", code], env=environ, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def cpu_flags():
    flags = set()
    with open("/proc/cpuinfo") as cpuinfo:
        for line in cpuinfo:
            if line.startswith("flags"):
                flags.update(line.split(":", 1)[1].split())
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    wanted = ("avx2", "avx512f", "avx512_vnni", "avx512_bf16", "avx_vnni", "amx_int8")
    return model, [flag for flag in wanted if flag in flags]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=2, help="Rounds of all arms, alternating. Default: 2.")
    parser.add_argument("--repeats", type=int, default=40, help="Timed forward calls per measurement. Default: 40.")
    parser.add_argument("--output", default=None, help="Write the JSON here as well as printing it.")
    args = parser.parse_args()
    runs = {name: [] for name in ARMS}
    for round_index in range(args.rounds):
        for name in ARMS:
            runs[name].append(run_arm(name, args.repeats))
            print(f"round {round_index + 1} {name}: {json.dumps(runs[name][-1])}", flush=True)
    cpu, flags = cpu_flags()
    timings = [key for key in runs["keras_vits_first"][0] if key.endswith("_ms")]
    ratios = {
        arm: {
            key: [first[key] / other[key] for first, other in zip(runs["keras_vits_first"], runs[arm])]
            for key in timings
        }
        for arm in ("tensorflow_first", "onednn_off")
    }
    report = {
        "command": "python tools/benchmarks/import_order.py " + " ".join(sys.argv[1:]),
        "cpu": cpu,
        "cpu_flags": flags,
        "machine": platform.machine(),
        "note": "ratio = keras_vits_first time / arm time per round: below 1 means the arm is slower",
        "runs": runs,
        "speed_of_arm_vs_keras_vits_first": ratios,
    }
    text = json.dumps(report, indent=1)
    print(text)
    if args.output:
        with open(args.output, "w") as output:
            output.write(text + "\n")


if __name__ == "__main__":
    main()
