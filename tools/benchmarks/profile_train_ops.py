"""Per-op-type share of one forward and backward pass in training (TensorFlow's step stats), against timm's.

    python tools/benchmarks/profile_train_ops.py [--recipe fmnist_deit_hard] [--teacher] [--runs 5]
    python tools/benchmarks/profile_train_ops.py --model deit_small_patch16_224 --batch-size 16 \
        --reference-python /tmp/ref/bin/python

The loss and its gradients are a function of the weights (`stateless_call`), so the graph
has no variables and runs in a TF1 session with full tracing, which records every kernel's
start and end, one op at a time (one inter-op thread, so that kernel times add up to the
step, as torch's do). As tools/benchmarks/profile_ops.py does for inference: ops are grouped by type, and
shares are of summed kernel time. The optimizer
update is not included (it is 2% of a step; docs/PERFORMANCE.md).

`--model` takes a registry name or a benchmark case (`fmnist_student`) with random labels, as
`keras-vits benchmark --modes train` does. With `--reference-python` (a Python with torch and
timm), timm's forward and backward of the same model is profiled too (torch.profiler, self CPU
time per aten op), and both sides are summed into the same kinds of work: dense matrix
multiplies and convolutions, attention (batched matmuls, softmax, and torch's fused
scaled-dot-product kernels), and everything else.
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

import argparse
import collections
import statistics

import numpy as np
import tensorflow as tf
from profile_ops import traced_kernel_micros  # tools/benchmarks/, next to this script

from keras_vits.backend import keras
from keras_vits.benchmark import CUSTOM_CASES, ReferenceWorker, benchmark_case
from keras_vits.registry import create_model
from keras_vits.training import loop, recipes, teachers

#: Substrings of op names (TensorFlow op types, torch aten ops) and the kind of work each is, first match wins.
#: The attention kinds come first: "BatchMatMul" also contains "MatMul".
WORK_KINDS = (
    ("BatchMatMul", "attention"),
    ("Einsum", "attention"),
    ("Softmax", "attention"),
    ("scaled_dot_product", "attention"),
    ("aten::bmm", "attention"),
    ("softmax", "attention"),
    ("MatMul", "dense matmul + conv"),
    ("Conv", "dense matmul + conv"),
    ("aten::mm", "dense matmul + conv"),
    ("aten::addmm", "dense matmul + conv"),
    ("convolution", "dense matmul + conv"),
)


def work_kind(op):
    """The kind of work (`WORK_KINDS`) an op type or aten op is; "other" when none matches."""
    return next((kind for pattern, kind in WORK_KINDS if pattern in op), "other")


def kind_milliseconds(op_milliseconds):
    """{kind of work: milliseconds} summed from {op: milliseconds}."""
    kinds = collections.Counter()
    for op, milliseconds in op_milliseconds.items():
        kinds[work_kind(op)] += milliseconds
    return dict(kinds)


def tensorflow_op_milliseconds(model, images_shape, runs):
    """`({op type: median kernel ms per pass}, {op type: kernels per pass}, [wall seconds per traced pass])`.

    One forward and backward pass of mean cross-entropy (the two heads averaged for a distilled model)
    at `images_shape` (batch, height, width, channels), with labels 0.
    """
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

    batch = images_shape[0]
    specs = [tf.TensorSpec(images_shape), tf.TensorSpec([batch], tf.int32)]
    specs += [tf.TensorSpec(v.shape, v.dtype) for v in trainable]
    concrete = tf.function(loss_and_gradients).get_concrete_function(*specs)
    graph = tf.Graph()
    with graph.as_default():
        tf.compat.v1.import_graph_def(concrete.graph.as_graph_def(), name="")
    rng = np.random.default_rng(0)
    values = [rng.normal(size=images_shape).astype(np.float32), np.zeros(batch, np.int32)]
    values += [np.asarray(v) for v in trainable]
    feed = dict(zip([t.name for t in concrete.inputs[: len(specs)]], values))
    # Tensors the function closes over (the non-trainable weights, Swin's relative position index)
    # became placeholders of the imported graph: feed them their values.
    for value, placeholder in zip(concrete.captured_inputs, concrete.graph.internal_captures):
        feed[placeholder.name] = value.numpy()
    outputs = [t.name for t in concrete.outputs]
    # One op at a time, each on all intra-op threads, as torch runs: with two inter-op threads the
    # kernels that overlap stretch each other, and their summed times exceed the step.
    config = tf.compat.v1.ConfigProto(inter_op_parallelism_threads=1)
    with tf.compat.v1.Session(graph=graph, config=config) as session:
        for _ in range(3):
            session.run(outputs, feed)
        per_run, counts, walls = traced_kernel_micros(session, outputs, feed, runs)
    milliseconds = {op: statistics.median(run.get(op, 0) for run in per_run) / 1000 for op in counts}
    return milliseconds, dict(counts), walls


def print_top_ops(title, milliseconds, counts, top):
    total = sum(milliseconds.values())
    print(title)
    print("| op | count | ms | share | kind |")
    print("|---|---|---|---|---|")
    for op, ms in sorted(milliseconds.items(), key=lambda item: -item[1])[:top]:
        print(f"| {op} | {counts.get(op, '')} | {ms:.1f} | {100 * ms / total:.1f}% | {work_kind(op)} |")


def print_kind_table(sides):
    """`sides`: {side name: {op: ms}}; one row per kind of work, ms and share of each side's summed time."""
    kinds = {side: kind_milliseconds(ops) for side, ops in sides.items()}
    names = list(sides)
    print("| kind of work | " + " | ".join(f"{name} ms | share" for name in names) + " |")
    print("|---|" + "---|---|" * len(names))
    for kind in ("dense matmul + conv", "attention", "other"):
        cells = []
        for name in names:
            total = sum(kinds[name].values())
            ms = kinds[name].get(kind, 0.0)
            cells.append(f"{ms:.1f} | {100 * ms / total:.0f}%")
        print(f"| {kind} | " + " | ".join(cells) + " |")
    print("| summed | " + " | ".join(f"{sum(kinds[name].values()):.1f} | 100%" for name in names) + " |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="fmnist_deit_hard")
    parser.add_argument("--teacher", action="store_true", help="profile the recipe's convnet teacher instead")
    parser.add_argument("--model", help=f"a registry name or {sorted(CUSTOM_CASES)}, instead of the recipe's model")
    parser.add_argument("--batch-size", type=int, default=16, help="with --model. Default: 16.")
    parser.add_argument("--image-size", type=int, default=224, help="with --model. Default: 224.")
    parser.add_argument("--reference-python", help="a Python with torch and timm: profile timm's model too")
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--top", type=int, default=20)
    args = parser.parse_args(argv)
    if args.model:
        name, size, channels, classes, arguments = benchmark_case(args.model, args.image_size)
        model = create_model(name, image_size=size, in_chans=channels, num_classes=classes, **arguments)
        batch, what = args.batch_size, args.model
    else:
        if args.reference_python:
            parser.error("--reference-python needs --model (timm has no recipe models)")
        recipe = recipes.get_recipe(args.recipe)
        batch, size, channels, classes = recipe.batch_size, recipe.image_size, len(recipe.mean), 10
        if args.teacher:
            model = teachers.convnet_small(size, channels, classes)
        else:
            model = loop.build_model(recipe, classes, channels)
        what = f"{args.recipe} {'teacher' if args.teacher else 'student'}"
    ours, counts, walls = tensorflow_op_milliseconds(model, (batch, size, size, channels), args.runs)
    print_top_ops(
        f"keras_vits {what}, batch {batch}: wall {1000 * statistics.median(walls):.0f} ms (traced), "
        f"summed kernel time {sum(ours.values()):.0f} ms, {sum(counts.values())} kernels",
        ours,
        counts,
        args.top,
    )
    sides = {"keras_vits": ours}
    if args.reference_python:
        worker = ReferenceWorker(args.reference_python, "timm")
        try:
            case = CUSTOM_CASES.get(args.model)
            if not worker.prepare("profile", name, batch, size, train=True, case=case):
                raise SystemExit(f"timm has no {args.model}")
            profiled = worker.ask(op="profile", key="profile", calls=args.runs)
            theirs = profiled["milliseconds"]
            wall = worker.ask(op="time", key="profile", calls=args.runs)["seconds"]  # the whole step, unprofiled
        finally:
            worker.close()
        print()
        print_top_ops(
            f"timm {what} (torch {worker.info.get('torch')}, {worker.info.get('threads')} threads), batch {batch}: "
            f"step (with AdamW, not profiled) {1000 * wall:.0f} ms, summed self time {sum(theirs.values()):.0f} ms",
            theirs,
            profiled["counts"],
            args.top,
        )
        sides["timm"] = theirs
    print()
    print_kind_table(sides)


if __name__ == "__main__":
    main()
