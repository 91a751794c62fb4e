"""Where the Fashion-MNIST distillation step's time goes, part by part, in one run.

    python tools/benchmarks/profile_distillation_step.py [--recipe fmnist_deit_hard] [--teacher convnet_medium]
        [--precision float32 ...] [--repeats 5]

Parts (each a `tf.function` over one fixed batch unless it says otherwise; medians of
alternating repetitions, so machine noise falls on all alike):
  pipeline            make_dataset's augmented training batches, 100 iterated alone first (no model)
  teacher_forward     the convnet teacher's forward pass
  student_step        student forward, backward and AdamW (mode "none"), graph and XLA
  distill_step        DistillationModel.train_step with the teacher, graph and XLA
  distill_step_x8     8 such steps in one tf.function call (a tf.range loop over 8 batches)
  host_sync           one `float()` read of each training metric (what the loop did every step)

The teacher here has random weights (speed does not depend on them).
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

import argparse
import itertools
import json
import time

import tensorflow as tf

from keras_vits.distillation import DistillationModel
from keras_vits.inference import alternating_medians
from keras_vits.training import data, loop, pipeline, recipes, teachers

PIPELINE_BATCHES = 100


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--recipe", default="fmnist_deit_hard")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument(
        "--teacher", default="convnet_medium", choices=sorted(teachers.TEACHERS), help="the table's teacher by default"
    )
    parser.add_argument("--precision", nargs="+", default=["float32"], help="one row set per precision")
    parser.add_argument("--json", help="also write the medians here")
    args = parser.parse_args(argv)
    recipe = recipes.get_recipe(args.recipe)
    batch = recipe.batch_size
    source = data.load_source(recipe.dataset, recipe.train_split, channels=len(recipe.mean))
    dataset = pipeline.make_dataset(source, recipe, batch, training=True)
    images, targets = next(iter(dataset))

    def models(jit_compile, precision):
        with loop.dtype_policy(precision):
            student = loop.build_model(recipe, source.num_classes, source.channels)
            teacher = teachers.TEACHERS[args.teacher](recipe.image_size, source.channels, source.num_classes)
        model = DistillationModel(student, teacher, mode="hard")
        plain = DistillationModel(student, None, mode="none")
        for wrapper in (model, plain):
            optimizer = loop.make_optimizer(recipe, student, 468, batch)
            wrapper.compile(optimizer=optimizer, jit_compile=jit_compile)
            optimizer.build(student.trainable_variables)
        return model, plain, teacher

    # The pipeline alone, before any model runs: its background threads get the whole machine.
    iterator = iter(dataset.repeat())
    for _ in range(5):
        next(iterator)
    started = time.perf_counter()
    for _ in range(PIPELINE_BATCHES):
        next(iterator)[0].numpy()
    pipeline_ms = 1000 * (time.perf_counter() - started) / PIPELINE_BATCHES
    eight_batches = tf.nest.map_structure(lambda *parts: tf.stack(parts), *[next(iterator) for _ in range(8)])
    functions = {}
    for precision, jit in itertools.product(args.precision, (False, True)):
        suffix = ("_xla" if jit else "") + ("" if precision == "float32" else f"_{precision}")
        model, plain, teacher = models(jit, precision)
        functions[f"teacher_forward{suffix}"] = tf.function(lambda m=model: m.teacher_logits(images), jit_compile=jit)
        student_step = tf.function(lambda p=plain: p.train_step((images, targets))["loss"], jit_compile=jit)
        functions[f"student_step{suffix}"] = student_step
        distill_step = tf.function(lambda m=model: m.train_step((images, targets))["loss"], jit_compile=jit)
        functions[f"distill_step{suffix}"] = distill_step

        def eight_steps(m=model):
            # A different batch each iteration: with one fixed batch XLA hoists the teacher's
            # forward out of the loop, and the step looked 1.9x faster than it is.
            for index in tf.range(8):
                m.train_step(tf.nest.map_structure(lambda stacked, i=index: stacked[i], eight_batches))
            return m.loss_tracker.result()

        functions[f"distill_step_x8{suffix}"] = tf.function(eight_steps, jit_compile=jit)
        if not suffix:
            metrics = model.train_metrics
            functions["host_sync"] = lambda ms=metrics: [float(m.result()) for m in ms]
    started = time.perf_counter()
    medians = alternating_medians(functions, repeats=args.repeats, calls=args.calls)
    rows = {"pipeline": {"ms": pipeline_ms}, **{key: {"ms": 1000 * seconds} for key, seconds in medians.items()}}
    for key, row in rows.items():
        per_batch = row["ms"] / (8 if "_x8" in key else 1)
        row["ms_per_batch"] = per_batch
        row["images_per_second"] = batch * 1000 / per_batch if key != "host_sync" else None
    print(
        f"{args.recipe}, batch {batch}, {args.repeats} repetitions of {args.calls} calls, "
        f"{time.perf_counter() - started:.0f} s"
    )
    print(f"{'part':24s} {'ms/batch':>9s} {'images/s':>9s}")
    for key, row in rows.items():
        ips = f"{row['images_per_second']:9.0f}" if row["images_per_second"] else " " * 9
        print(f"{key:24s} {row['ms_per_batch']:9.2f} {ips}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"recipe": args.recipe, "batch": batch, "parts": rows}, f, indent=1)


if __name__ == "__main__":
    main()
