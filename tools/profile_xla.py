"""Where an XLA-compiled step spends its time, by HLO op kind (TensorFlow profiler trace).

    python tools/profile_xla.py vit_tiny_patch16_224 [--batch-size 16] [--train] [--steps 2]

Compiles the inference function (`keras_vits.inference`, mode "xla") or, with
`--train`, the benchmark's AdamW training step with `jit_compile=True`, traces
`--steps` calls with `tf.profiler`, and sums the XLA CPU runtime's per-instruction
events by kind (`MatMul.392` and `MatMul.418` are both "MatMul"; fusions keep
XLA's names, e.g. `negate_exponential_fusion`). Times are per step, summed over
threads. "GFLOP/s" for the matrix multiplies is 2 x MACs / their time, with MACs
# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

from `keras_vits.macs` (a training step counted as 3 forward passes), against a
2048^3 float32 matmul timed in the same process.
"""

import argparse
import collections
import glob
import re
import tempfile

import numpy as np
import tensorflow as tf
from tensorflow.tsl.profiler.protobuf import xplane_pb2

import keras_vits
from keras_vits.benchmark import matmul_flops, train_step_function
from keras_vits.inference import inference_function
from keras_vits.macs import count_macs

# Executor bookkeeping that encloses the instruction events; counting it would double the total.
ENCLOSING_EVENTS = ("ThunkExecutor::Execute", "SlinkyThreadPool::Await")
MATMUL_KINDS = ("MatMul", "MatMul_1", "dot", "convolution", "BatchMatMulV2", "Einsum", "Conv2D")


def op_kind_milliseconds(trace_dir, steps):
    """{HLO op kind: milliseconds per step summed over worker threads} from a profiler trace."""
    path = sorted(glob.glob(f"{trace_dir}/**/*.xplane.pb", recursive=True))[-1]
    space = xplane_pb2.XSpace()
    with open(path, "rb") as file:
        space.ParseFromString(file.read())
    totals = collections.Counter()
    for plane in space.planes:
        for line in plane.lines:
            if line.name == "python":  # the caller's thread: the whole step as one event
                continue
            for event in line.events:
                name = plane.event_metadata[event.metadata_id].name
                if name in ENCLOSING_EVENTS or name.startswith("end: "):
                    continue
                totals[re.sub(r"[._]\d+$", "", name)] += event.duration_ps / 1e9 / steps
    return totals


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("model")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--train", action="store_true", help="profile the AdamW training step instead of inference")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args(argv)
    model = keras_vits.create_model(args.model)
    size = model.inputs[0].shape[1]
    images = tf.random.stateless_normal([args.batch_size, size, size, 3], seed=(0, 1))
    if args.train:
        step = train_step_function(model, args.batch_size, jit_compile=True)
    else:
        step = inference_function(model, "xla")
    for _ in range(2):
        np.asarray(step(images))
    with tempfile.TemporaryDirectory() as trace_dir:
        tf.profiler.experimental.start(trace_dir)
        for _ in range(args.steps):
            np.asarray(step(images))
        tf.profiler.experimental.stop()
        totals = op_kind_milliseconds(trace_dir, args.steps)
    flops = matmul_flops()
    total = sum(totals.values())
    matmul_ms = sum(ms for kind, ms in totals.items() if kind in MATMUL_KINDS)
    passes = 3 if args.train else 1
    matmul_gflops = 2 * passes * count_macs(model) * args.batch_size / (matmul_ms / 1e3) / 1e9
    what = "training step" if args.train else "inference"
    print(f"{args.model}, batch {args.batch_size}, XLA {what}: {total:.0f} thread-ms per step")
    print(
        f"matrix multiplies: {matmul_ms:.0f} ms ({100 * matmul_ms / total:.0f}%), {matmul_gflops:.0f} GFLOP/s "
        f"against {flops / 1e9:.0f} GFLOP/s for the 2048^3 matmul"
    )
    print("| HLO op kind | ms per step | share |\n|---|---|---|")
    for kind, ms in totals.most_common(args.top):
        print(f"| {kind} | {ms:.1f} | {100 * ms / total:.1f}% |")


if __name__ == "__main__":
    main()
