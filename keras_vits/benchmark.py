"""Images per second of registry models, side by side with timm, against this machine's matmul limit.

    keras-vits benchmark vit_tiny_patch16_224 pvt_v2_b1 --batch-sizes 1 16 --reference-python /ref/bin/python

For every model and batch size it times the plain float32 graph, XLA and bfloat16
(and a training step with AdamW when asked), and the same model in timm when a
reference Python (one with torch and timm) is given. Cases alternate inside every
repetition, so machine noise hits all of them alike; medians are reported. A
float32 and a bfloat16 2048^3 matmul timed in the same run give the machine's limit:
fraction = 2 x MACs x images/s / matmul FLOP/s.
"""

import json
import os
import statistics
import subprocess
import time

import numpy as np
import tensorflow as tf

from keras_vits.backend import keras
from keras_vits.inference import inference_function
from keras_vits.macs import count_macs
from keras_vits.registry import create_model

KERAS_MODES = ("float32", "xla", "bfloat16", "bfloat16_xla", "train", "train_xla")


def matmul_flops(dtype="float32", size=2048, repeats=5):
    """FLOP/s of a `size`^3 tf.matmul in `dtype` (median of `repeats`)."""
    a = tf.random.stateless_normal([size, size], seed=(1, 2), dtype=tf.float32)
    a = tf.cast(a, dtype)
    matmul = tf.function(lambda x: tf.reduce_sum(tf.cast(tf.matmul(x, x), tf.float32)))
    matmul(a).numpy()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        matmul(a).numpy()
        times.append(time.perf_counter() - start)
    return 2 * size**3 / statistics.median(times)


def train_step_function(model, batch_size, jit_compile=False):
    """One AdamW step of cross-entropy on random labels, as a `tf.function` of images."""
    optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.05)
    labels = tf.random.stateless_uniform([batch_size], seed=(3, 4), maxval=1000, dtype=tf.int32)
    variables = model.trainable_variables
    optimizer.build(variables)

    def step(images):
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            if isinstance(logits, (tuple, list)):
                logits = (logits[0] + logits[1]) / 2
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(labels, logits, from_logits=True))
        optimizer.apply_gradients(zip(tape.gradient(loss, variables), variables))
        return loss

    return tf.function(step, jit_compile=jit_compile)


class ReferenceWorker:
    """A reference Python running `keras_vits/_reference_worker.py`, driven over pipes."""

    def __init__(self, python):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_reference_worker.py")
        self.process = subprocess.Popen(
            [python, script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.info = {}

    def ask(self, **command):
        self.process.stdin.write(json.dumps(command) + "\n")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"The reference worker stopped (exit code {self.process.poll()}); see its stderr above.")
        return json.loads(line)

    def prepare(self, key, model, batch, image_size, train):
        self.info = self.ask(op="prepare", key=key, model=model, batch=batch, image_size=image_size, train=train)

    def seconds(self, key, calls):
        return self.ask(op="time", key=key, calls=calls)["seconds"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


def run_benchmark(models, batch_sizes=(1, 16), image_size=224, modes=("float32", "xla", "bfloat16"),
                  repeats=5, calls=3, reference_python=None, log=print):  # fmt: skip
    """Times every (model, batch, mode) and the reference; returns `(rows, machine)`.

    rows: dicts with model, batch, mode, images_per_second, macs, and (with a reference)
    reference_images_per_second. machine: float32 and bfloat16 matmul FLOP/s and versions.
    """
    unknown = sorted(set(modes) - set(KERAS_MODES))
    if unknown:
        raise ValueError(f"Unknown modes {unknown}; choose from {KERAS_MODES}.")
    reference = ReferenceWorker(reference_python) if reference_python else None
    cases = []  # (key, model name, batch, mode, callable, images, macs)
    for name in models:
        model = create_model(name, image_size=image_size)
        macs = count_macs(model)
        for batch in batch_sizes:
            images = tf.random.stateless_normal([batch, image_size, image_size, 3], seed=(0, batch))
            for mode in modes:
                if mode.startswith("train"):
                    function = train_step_function(model, batch, jit_compile=mode == "train_xla")
                else:
                    function = inference_function(model, mode)
                log(f"compiling {name} batch {batch} {mode}")
                function(images)
                function(images)
                cases.append(((name, batch, mode), function, images, macs))
            if reference:
                for train in sorted({mode.startswith("train") for mode in modes}):
                    key = f"{name}|{batch}|{'train' if train else 'infer'}"
                    reference.prepare(key, name, batch, image_size, train)
                    cases.append(((name, batch, "reference_train" if train else "reference"), key, None, macs))
    seconds = {case[0]: [] for case in cases}
    limits = {"float32": [], "bfloat16": []}
    for repeat in range(repeats):
        log(f"repetition {repeat + 1}/{repeats}")
        for dtype in limits:
            limits[dtype].append(matmul_flops(dtype))
        for key, function, images, _ in cases:
            if images is None:
                seconds[key].append(reference.seconds(function, calls))
                continue
            start = time.perf_counter()
            for _ in range(calls):
                np.asarray(function(images))
            seconds[key].append((time.perf_counter() - start) / calls)
    machine = {f"{dtype}_matmul_gflops": statistics.median(v) / 1e9 for dtype, v in limits.items()}
    machine.update(tensorflow=tf.__version__, keras=keras.__version__, cpu_count=os.cpu_count())
    if reference:
        machine.update({k: v for k, v in reference.info.items() if k != "ok"})
        reference.close()
    rows = []
    for (name, batch, mode), _, _, macs in cases:
        if mode.startswith("reference"):
            continue
        per_call = statistics.median(seconds[name, batch, mode])
        row = {"model": name, "batch": batch, "mode": mode, "images_per_second": batch / per_call, "macs": macs}
        reference_key = (name, batch, "reference_train" if mode.startswith("train") else "reference")
        if reference_key in seconds:
            row["reference_images_per_second"] = batch / statistics.median(seconds[reference_key])
        if not mode.startswith("train"):
            limit = machine["bfloat16_matmul_gflops" if mode.startswith("bfloat16") else "float32_matmul_gflops"] * 1e9
            row["fraction_of_matmul_limit"] = 2 * macs * row["images_per_second"] / limit
        rows.append(row)
    return rows, machine


def format_table(rows, machine):
    """The benchmark as a Markdown table, the machine's limits first."""
    lines = [
        f"float32 matmul {machine['float32_matmul_gflops']:.0f} GFLOP/s, "
        f"bfloat16 matmul {machine['bfloat16_matmul_gflops']:.0f} GFLOP/s, {machine['cpu_count']} CPUs, "
        f"TF {machine['tensorflow']}, Keras {machine['keras']}"
        + (f", torch {machine['torch']} ({machine['threads']} threads), timm {machine['timm']}" if "torch" in machine else ""),
        "",
        "| model | batch | mode | images/s | reference images/s | ratio | of matmul limit |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ref = row.get("reference_images_per_second")
        ratio = f"{row['images_per_second'] / ref:.2f}x" if ref else ""
        fraction = f"{100 * row['fraction_of_matmul_limit']:.0f}%" if "fraction_of_matmul_limit" in row else ""
        lines.append(
            f"| {row['model']} | {row['batch']} | {row['mode']} | {row['images_per_second']:.1f} | "
            f"{f'{ref:.1f}' if ref else ''} | {ratio} | {fraction} |"
        )
    return "\n".join(lines)
