"""Where the time goes: per-op-type share of one float32 forward pass (TensorFlow's step stats).

    python tools/benchmarks/profile_ops.py deit_small_patch16_224 vit_tiny_patch16_224 [--batch-size 16] [--runs 5]

The model's inference `tf.function` is frozen (variables to constants) and run in
a TF1 session with full tracing, which records every kernel's start and end.
Ops are grouped by type, and the table gives each type's share of the summed
kernel time (medians over `--runs`), its count, and for the matrix multiplies the
GFLOP/s they reached against a 2048^3 float32 matmul timed in the same process.
Kernels on the 2 inter-op threads may overlap, so shares are of summed kernel
time, not of wall time (which is printed too).
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

import argparse
import collections
import statistics
import time

import numpy as np
import tensorflow as tf
from tensorflow.python.framework.convert_to_constants import convert_variables_to_constants_v2

from keras_vits.benchmark import matmul_flops
from keras_vits.macs import count_macs

MATMUL_OPS = (
    "MatMul",
    "BatchMatMulV2",
    "BatchMatMulV3",
    "_MklMatMul",
    "_FusedMatMul",
    "_MklFusedMatMul",
    "_MklBatchMatMulV2",
    "Conv2D",
    "_FusedConv2D",
    "_MklConv2D",
    "_MklFusedConv2D",
    "Einsum",
)


def traced_kernel_micros(session, fetches, feed, runs):
    """Runs `fetches` `runs` times with full tracing.

    Returns `([{op type: summed kernel microseconds} per run], {op type: kernels per run}, [wall seconds per run])`.
    """
    options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
    per_run, counts, walls = [], collections.Counter(), []
    for _ in range(runs):
        metadata = tf.compat.v1.RunMetadata()
        started = time.perf_counter()
        session.run(fetches, feed, options=options, run_metadata=metadata)
        walls.append(time.perf_counter() - started)
        micros, counts = collections.Counter(), collections.Counter()
        for device in metadata.step_stats.dev_stats:
            for node in device.node_stats:
                if node.node_name in ("_SOURCE", "_SINK") or not node.timeline_label:
                    continue
                op = node.timeline_label.split("(")[0].split("= ")[-1].strip() or node.node_name
                micros[op] += node.op_end_rel_micros - node.op_start_rel_micros
                counts[op] += 1
        per_run.append(micros)
    return per_run, dict(counts), walls


def profile(name, batch_size, runs):
    """(per op type: median summed microseconds, count), median wall seconds, MACs of one image."""
    model = keras_vits.create_model(name)
    size = model.inputs[0].shape[1]
    spec = tf.TensorSpec([batch_size, size, size, 3], tf.float32)
    concrete = tf.function(lambda x: model(x, training=False)).get_concrete_function(spec)
    frozen = convert_variables_to_constants_v2(concrete)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(frozen.graph.as_graph_def(), name="")
    input_name = frozen.inputs[0].name
    output_names = [t.name for t in frozen.outputs]
    images = np.random.default_rng(0).normal(size=spec.shape).astype(np.float32)
    with tf.compat.v1.Session(graph=graph) as session:
        for _ in range(2):
            session.run(output_names, {input_name: images})
        per_run, counts, walls = traced_kernel_micros(session, output_names, {input_name: images}, runs)
    ops = {op: (statistics.median(run.get(op, 0) for run in per_run), counts[op]) for op in counts}
    return ops, statistics.median(walls), count_macs(model)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=12, help="Op types listed. Default: 12.")
    args = parser.parse_args(argv)
    limit = matmul_flops("float32")
    print(f"float32 2048^3 matmul: {limit / 1e9:.0f} GFLOP/s in this process")
    for name in args.models:
        ops, wall, macs = profile(name, args.batch_size, args.runs)
        total = sum(us for us, _ in ops.values())
        matmul_us = sum(us for op, (us, _) in ops.items() if op in MATMUL_OPS)
        flops = 2 * macs * args.batch_size
        print(
            f"\n{name}, batch {args.batch_size}: wall {1000 * wall:.0f} ms, summed kernel time {total / 1000:.0f} ms; "
            f"matrix multiplies {100 * matmul_us / total:.0f}% of kernel time at "
            f"{flops / (matmul_us * 1e-6) / 1e9:.0f} GFLOP/s ({100 * flops / (matmul_us * 1e-6) / limit:.0f}% of "
            f"the matmul); whole model {flops / wall / 1e9:.0f} GFLOP/s"
        )
        print("| op type | count | ms | share |")
        print("|---|---|---|---|")
        for op, (us, count) in sorted(ops.items(), key=lambda item: -item[1][0])[: args.top]:
            print(f"| {op} | {count} | {us / 1000:.1f} | {100 * us / total:.1f}% |")


if __name__ == "__main__":
    main()
