"""Images per second of registry models, side by side with timm and kecam, against this machine's matmul limit.

    keras-vits benchmark vit_tiny_patch16_224 pvt_v2_b1 --batch-sizes 1 16 \
        --reference-python /ref/bin/python --kecam-python "$(which python)"

For every model and batch size it times the plain float32 graph, XLA and bfloat16
(and a training step with AdamW when asked); the same model in timm when a
reference Python (one with torch and timm) is given; and in keras_cv_attention_models
(tf-keras, graph and XLA) when a Python with that package is given. Each peer runs
in its own process (`_reference_worker.py`). Cases alternate inside every
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

from keras_vits.backend import keras, onednn_enabled
from keras_vits.inference import inference_function
from keras_vits.macs import count_macs
from keras_vits.registry import create_model
from keras_vits.training.recipes import FMNIST_STUDENT  # no extra needed: recipes import only the core

KERAS_MODES = ("float32", "xla", "bfloat16", "bfloat16_xla", "train", "train_xla")

#: Benchmark cases that are not registry names: a registry model with arguments, the same for timm.
#: `fmnist_student` is the Fashion-MNIST DeiT at patch 4 (`FMNIST_STUDENT`; the recipes train it at patch 7).
CUSTOM_CASES = {
    "fmnist_student": {
        "model": "deit_tiny_distilled_patch16_224",
        "image_size": 28,
        "in_chans": 1,
        "num_classes": 10,
        "arguments": FMNIST_STUDENT,
    },
}


def benchmark_case(name, image_size):
    """`(registry name, image size, channels, classes, model arguments)` of a benchmark model name."""
    if name in CUSTOM_CASES:
        case = CUSTOM_CASES[name]
        return case["model"], case["image_size"], case["in_chans"], case["num_classes"], case["arguments"]
    return name, image_size, 3, 1000, {}


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


def train_step_function(model, batch_size, jit_compile=False, num_classes=1000):
    """One AdamW step of cross-entropy on random labels, as a `tf.function` of images."""
    optimizer = keras.optimizers.AdamW(1e-4, weight_decay=0.05)
    labels = tf.random.stateless_uniform([batch_size], seed=(3, 4), maxval=num_classes, dtype=tf.int32)
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
    """A peer framework in another Python (`keras_vits/_reference_worker.py <framework>`), driven over pipes."""

    def __init__(self, python, framework="timm"):
        script = os.path.join(os.path.dirname(os.path.abspath(__file__)), "_reference_worker.py")
        self.process = subprocess.Popen(
            [python, script, framework], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1
        )
        self.info = {}

    def ask(self, **command):
        self.process.stdin.write(json.dumps(command) + "\n")
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError(f"The reference worker stopped (exit code {self.process.poll()}); see its stderr above.")
        return json.loads(line)

    def prepare(self, key, model, batch, image_size, train, jit_compile=False, case=None):
        """Builds and warms up a case; False when the framework lacks this model or mode.

        `case`: a `CUSTOM_CASES` entry (channels, classes and model arguments), or None for a registry name.
        """
        reply = self.ask(
            op="prepare",
            key=key,
            model=model,
            batch=batch,
            image_size=image_size,
            train=train,
            jit_compile=jit_compile,
            case=case,
        )
        if reply.pop("ok"):
            self.info = reply
        return "error" not in reply

    def seconds(self, key, calls):
        return self.ask(op="time", key=key, calls=calls)["seconds"]

    def close(self):
        self.process.stdin.close()
        self.process.wait(timeout=60)


# Peer columns: (column, framework, jit_compile, timed for training modes too).
PEERS = (("timm", "timm", False, True), ("kecam", "kecam", False, False), ("kecam_xla", "kecam", True, False))


def run_benchmark(
    models,
    batch_sizes=(1, 16),
    image_size=224,
    modes=("float32", "xla", "bfloat16"),
    repeats=5,
    calls=3,
    reference_python=None,
    kecam_python=None,
    log=print,
):
    """Times every (model, batch, mode) and the peers; returns `(rows, machine)`.

    rows: dicts with model, batch, mode, images_per_second, macs, fraction_of_matmul_limit
    (inference), and the peers' images per second of the same case where timed:
    timm_images_per_second (timm, or HF transformers for PVT v1; inference or training step
    as the mode), kecam_images_per_second and kecam_xla_images_per_second
    (keras_cv_attention_models under tf-keras, graph and XLA; inference only).
    machine: float32 and bfloat16 matmul FLOP/s and the versions.
    """
    unknown = sorted(set(modes) - set(KERAS_MODES))
    if unknown:
        raise ValueError(f"Unknown modes {unknown}; choose from {KERAS_MODES}.")
    workers = {}
    if reference_python:
        workers["timm"] = ReferenceWorker(reference_python, "timm")
    if kecam_python:
        workers["kecam"] = ReferenceWorker(kecam_python, "kecam")
    cases = []  # (key, callable or worker case key, images or the worker, macs)
    for name in models:
        registry_name, size, channels, classes, arguments = benchmark_case(name, image_size)
        model = create_model(registry_name, image_size=size, in_chans=channels, num_classes=classes, **arguments)
        macs = count_macs(model)
        for batch in batch_sizes:
            images = tf.random.stateless_normal([batch, size, size, channels], seed=(0, batch))
            for mode in modes:
                if mode.startswith("train"):
                    function = train_step_function(model, batch, jit_compile=mode == "train_xla", num_classes=classes)
                else:
                    function = inference_function(model, mode)
                log(f"compiling {name} batch {batch} {mode}")
                function(images)
                function(images)
                cases.append(((name, batch, mode), function, images, macs))
            for column, framework, jit_compile, trains in PEERS:
                if framework not in workers:
                    continue
                for train in sorted({mode.startswith("train") for mode in modes} if trains else {False}):
                    key = f"{column}|{name}|{batch}|{'train' if train else 'infer'}"
                    log(f"preparing {column} {name} batch {batch}{' train' if train else ''}")
                    case = CUSTOM_CASES.get(name)
                    if workers[framework].prepare(key, name, batch, image_size, train, jit_compile, case):
                        peer_mode = f"{column}_train" if train else column
                        cases.append(((name, batch, peer_mode), key, workers[framework], macs))
    seconds = {case[0]: [] for case in cases}
    limits = {"float32": [], "bfloat16": []}
    for repeat in range(repeats):
        log(f"repetition {repeat + 1}/{repeats}")
        for dtype in limits:
            limits[dtype].append(matmul_flops(dtype))
        for key, function, images, _ in cases:
            if isinstance(images, ReferenceWorker):
                seconds[key].append(images.seconds(function, calls))
                continue
            start = time.perf_counter()
            for _ in range(calls):
                np.asarray(function(images))
            seconds[key].append((time.perf_counter() - start) / calls)
    machine = {f"{dtype}_matmul_gflops": statistics.median(v) / 1e9 for dtype, v in limits.items()}
    machine.update(
        tensorflow=tf.__version__, keras=keras.__version__, cpu_count=os.cpu_count(), onednn=onednn_enabled()
    )
    for worker in workers.values():
        machine.update(worker.info)
        worker.close()
    rows = []
    for (name, batch, mode), _, images, macs in cases:
        if isinstance(images, ReferenceWorker):
            continue
        per_call = statistics.median(seconds[name, batch, mode])
        row = {"model": name, "batch": batch, "mode": mode, "images_per_second": batch / per_call, "macs": macs}
        for column, *_ in PEERS:
            peer_key = (name, batch, f"{column}_train" if mode.startswith("train") else column)
            if peer_key in seconds:
                row[f"{column}_images_per_second"] = batch / statistics.median(seconds[peer_key])
        if not mode.startswith("train"):
            limit = machine["bfloat16_matmul_gflops" if mode.startswith("bfloat16") else "float32_matmul_gflops"] * 1e9
            row["fraction_of_matmul_limit"] = 2 * macs * row["images_per_second"] / limit
        rows.append(row)
    return rows, machine


def format_table(rows, machine):
    """The benchmark as a Markdown table, the machine's limits first; x = images/s over the peer's."""
    versions = ""
    onednn_state = {True: "on", False: "off", None: "unknown"}
    if "torch" in machine:
        versions += f", torch {machine['torch']} ({machine['threads']} threads), timm {machine['timm']}"
    if "kecam" in machine:
        versions += f", keras_cv_attention_models {machine['kecam']} (tf-keras {machine['kecam_keras']})"
    lines = [
        f"float32 matmul {machine['float32_matmul_gflops']:.0f} GFLOP/s, "
        f"bfloat16 matmul {machine['bfloat16_matmul_gflops']:.0f} GFLOP/s, {machine['cpu_count']} CPUs, "
        f"TF {machine['tensorflow']} (oneDNN {onednn_state[machine.get('onednn')]}), "
        f"Keras {machine['keras']}{versions}",
        "",
        "| model | batch | mode | images/s | timm | vs timm | kecam | kecam XLA | vs best kecam | of matmul limit |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        ours, timm = row["images_per_second"], row.get("timm_images_per_second")
        kecam = [row[k] for k in ("kecam_images_per_second", "kecam_xla_images_per_second") if k in row]
        cells = [
            row["model"],
            row["batch"],
            row["mode"],
            f"{ours:.1f}",
            f"{timm:.1f}" if timm else "",
            f"{ours / timm:.2f}x" if timm else "",
            f"{row['kecam_images_per_second']:.1f}" if "kecam_images_per_second" in row else "",
            f"{row['kecam_xla_images_per_second']:.1f}" if "kecam_xla_images_per_second" in row else "",
            f"{ours / max(kecam):.2f}x" if kecam else "",
            f"{100 * row['fraction_of_matmul_limit']:.0f}%" if "fraction_of_matmul_limit" in row else "",
        ]
        lines.append("| " + " | ".join(str(cell) for cell in cells) + " |")
    return "\n".join(lines)
