"""Per-op-type share of one forward and backward pass of a recipe's model (TensorFlow's step stats).

    python tools/profile_train_ops.py [--recipe fmnist_deit_hard] [--teacher] [--runs 5]

The loss and its gradients are a function of the weights (`stateless_call`), so the graph
has no variables and runs in a TF1 session with full tracing, which records every kernel's
start and end. As tools/profile_ops.py does for inference: ops are grouped by type, and
shares are of summed kernel time (the two inter-op threads may overlap). The optimizer
update is not included (it is 2% of a step; docs/PERFORMANCE.md).
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

from keras_vits.backend import keras
from keras_vits.training import loop, recipes, teachers


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="fmnist_deit_hard")
    parser.add_argument("--teacher", action="store_true", help="profile the convnet teacher instead")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    recipe = recipes.get_recipe(args.recipe)
    batch, size, channels = recipe.batch_size, recipe.image_size, len(recipe.mean)
    if args.teacher:
        model = teachers.convnet_small(size, channels, 10)
    else:
        model = loop.build_model(recipe, 10, channels)
    trainable = [v.value for v in model.trainable_variables]
    non_trainable = [v.value for v in model.non_trainable_variables]

    def loss_and_gradients(images, labels, *weights):
        weights = list(weights)
        with tf.GradientTape() as tape:
            tape.watch(weights)
            logits, _ = model.stateless_call(weights, non_trainable, images, training=True)
            if isinstance(logits, (tuple, list)):
                logits = (logits[0] + logits[1]) / 2
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        return [loss, *tape.gradient(loss, weights)]

    specs = [tf.TensorSpec([batch, size, size, channels]), tf.TensorSpec([batch], tf.int32)]
    specs += [tf.TensorSpec(v.shape, v.dtype) for v in trainable]
    concrete = tf.function(loss_and_gradients).get_concrete_function(*specs)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(concrete.graph.as_graph_def(), name="")
    rng = np.random.default_rng(0)
    values = [rng.normal(size=specs[0].shape).astype(np.float32), np.zeros(batch, np.int32)]
    values += [np.asarray(v) for v in trainable]
    feed = dict(zip([t.name for t in concrete.inputs[: len(specs)]], values))
    outputs = [t.name for t in concrete.outputs]
    per_run, walls, counts = [], [], collections.Counter()
    with tf.compat.v1.Session(graph=graph) as session:
        for _ in range(3):
            session.run(outputs, feed)
        options = tf.compat.v1.RunOptions(trace_level=tf.compat.v1.RunOptions.FULL_TRACE)
        for _ in range(args.runs):
            metadata = tf.compat.v1.RunMetadata()
            started = time.perf_counter()
            session.run(outputs, feed, options=options, run_metadata=metadata)
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
    ops = {op: statistics.median(run.get(op, 0) for run in per_run) for op in counts}
    total = sum(ops.values())
    what = "teacher" if args.teacher else "student"
    print(
        f"{args.recipe} {what}, batch {batch}: wall {1000 * statistics.median(walls):.0f} ms (traced), "
        f"summed kernel time {total / 1000:.0f} ms, {sum(counts.values())} kernels"
    )
    print("| op type | count | ms | share |")
    print("|---|---|---|---|")
    for op, us in sorted(ops.items(), key=lambda item: -item[1])[: args.top]:
        print(f"| {op} | {counts[op]} | {us / 1000:.1f} | {100 * us / total:.1f}% |")


if __name__ == "__main__":
    main()
