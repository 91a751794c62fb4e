"""Fast inference paths: the same model as a plain graph, under XLA, or in bfloat16, and a picker.

    fast = keras_vits.compile_for_inference(model)        # measures, checks, returns the fastest correct path
    logits = fast(images)                                  # (B, num_classes) float32

XLA is not always faster on CPU (its strided-convolution gradients and, before
`XlaFriendlyDepthwiseConv2D`, PVT v2's depth-wise convolutions are slow), and the
margin depends on model and batch, so the choice is measured rather than fixed per family.
"""

from keras_vits.backend import require_tensorflow_backend

require_tensorflow_backend("keras_vits.inference (compile_for_inference)")

import pathlib
import statistics
import time
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_vits.backend import keras

MODES = ("float32", "xla", "bfloat16", "bfloat16_xla")


def cpu_has_avx512_bf16():
    """True when this CPU computes bfloat16 matrix products natively (AVX512-BF16 or AMX)."""
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def bfloat16_copy(model):
    """The same model rebuilt under the `mixed_bfloat16` policy, sharing no variables, with the same weights."""
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy("mixed_bfloat16")
    try:
        copy = model.__class__.from_config(model.get_config())
    finally:
        keras.mixed_precision.set_global_policy(previous)
    copy.set_weights(model.get_weights())
    return copy


def inference_function(model, mode="float32"):
    """`images (B, H, W, C) float32 -> logits float32` as a `tf.function` for one of `MODES`."""
    if mode not in MODES:
        raise ValueError(f"mode must be one of {MODES}, got {mode!r}.")
    if mode.startswith("bfloat16"):
        model = bfloat16_copy(model)

    def forward(images):
        return tf.cast(model(images, training=False), tf.float32)

    return tf.function(forward, jit_compile=mode.endswith("xla"), reduce_retracing=True)


def alternating_medians(functions, repeats=5, calls=3):
    """Median seconds per call of each zero-argument callable in `{key: callable}`, timed in turns.

    Each is called twice to warm up; every repetition then times `calls` calls of each
    in turn (their mean), so machine noise falls on all alike. Outputs are converted
    to NumPy, so work a callable leaves pending is counted.
    """
    for function in functions.values():
        function()
        function()
    times = {key: [] for key in functions}
    for _ in range(repeats):
        for key, function in functions.items():
            start = time.perf_counter()
            for _ in range(calls):
                for output in tf.nest.flatten(function()):
                    np.asarray(output)
            times[key].append((time.perf_counter() - start) / calls)
    return {key: statistics.median(values) for key, values in times.items()}


def median_seconds(function, images, repeats=5, calls=3):
    """Median seconds per call of `function(images)` after two warm-up calls."""
    return alternating_medians({"function": lambda: function(images)}, repeats, calls)["function"]


def compile_for_inference(
    model: keras.Model,
    images: np.ndarray | None = None,
    modes: Sequence[str] | None = None,
    rtol: float | None = None,
    verbose: bool = False,
) -> "InferencePath":
    """The fastest of `modes` whose logits agree with the plain float32 graph.

    Args:
        model: a built keras_vits classifier.
        images: a sample batch `(B, H, W, C)` to time and check with; default one random image.
        modes: candidates; default float32 and XLA, plus bfloat16 on CPUs with native bfloat16.
        rtol: agreement required, as max |logit error| / max |logit|; default 1e-4 (float32 paths)
            and 5e-2 (bfloat16 paths, which also must keep every top-1 class).
        verbose: print the timings.

    Returns:
        an `InferencePath`: callable `images -> logits float32`, with `.mode` and `.seconds` by mode.
    """
    if images is None:
        shape = [1, *model.inputs[0].shape[1:]]
        images = tf.random.stateless_normal(shape, seed=(0, 0))
    if modes is None:
        modes = ["float32", "xla"] + (["bfloat16"] if cpu_has_avx512_bf16() else [])
    reference = inference_function(model, "float32")
    expected = np.asarray(reference(images))
    scale = float(np.abs(expected).max()) or 1.0
    timings, functions = {}, {}
    for mode in modes:
        function = reference if mode == "float32" else inference_function(model, mode)
        try:
            logits = np.asarray(function(images))
        except (tf.errors.OpError, ValueError) as error:  # a mode this model or machine cannot run
            if verbose:
                print(f"{mode}: unavailable ({type(error).__name__})")
            continue
        tolerance = rtol if rtol is not None else (5e-2 if mode.startswith("bfloat16") else 1e-4)
        agrees = np.abs(logits - expected).max() / scale <= tolerance
        if mode.startswith("bfloat16"):
            agrees = agrees and (logits.argmax(-1) == expected.argmax(-1)).all()
        if not agrees:
            if verbose:
                print(f"{mode}: rejected, outputs differ from float32")
            continue
        timings[mode] = median_seconds(function, images)
        functions[mode] = function
        if verbose:
            print(f"{mode}: {timings[mode] * 1e3:.2f} ms per call")
    best = min(timings, key=timings.get)
    return InferencePath(functions[best], best, timings)


class InferencePath:
    """A compiled forward pass: `path(images) -> logits`, with the `mode` chosen and `seconds` per mode."""

    def __init__(self, function, mode, seconds):
        self.function = function
        self.mode = mode
        self.seconds = seconds

    def __call__(self, images):
        return self.function(images)
