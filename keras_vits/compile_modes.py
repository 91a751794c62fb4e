"""Graph or XLA for a training step, chosen per device type and model family from measurement.

Keras's `compile(jit_compile="auto")` turns XLA on wherever it can, whatever it costs;
on CPUs XLA's generic code loses to oneDNN's kernels for some families (PVT's
depthwise convolutions ran at 0.22x). So the trainer and `DistillationModel.compile()`
ask `choose_jit_compile` instead, and a recipe's `compile_mode` (or the CLI's
`--compile-mode`) overrides it.

`XLA_TRAINING` is the table. The CPU rows come from
`python tools/profile_distillation_step.py` and `keras-vits benchmark --modes train train_xla`
(docs/PERFORMANCE.md, "Graph or XLA"). No TensorFlow GPU could be reached to measure
the GPU rows: they follow TensorFlow's guidance that XLA's fusion of the elementwise
ops pays on GPUs, and are marked so there. TPUs always compile with XLA.
"""

import tensorflow as tf

COMPILE_MODES = ("auto", "graph", "xla")

#: Whether XLA trains faster, by (device type, model family). "other" covers any Keras model.
XLA_TRAINING = {
    ("CPU", "vit"): False,
    ("CPU", "swin"): False,
    ("CPU", "pvt_v1"): False,
    ("CPU", "pvt_v2"): False,
    ("CPU", "other"): False,
    ("GPU", "vit"): True,
    ("GPU", "swin"): True,
    ("GPU", "pvt_v1"): True,
    ("GPU", "pvt_v2"): True,
    ("GPU", "other"): True,
}


def model_family(model) -> str:
    """`"vit"`, `"swin"`, `"pvt_v1"`, `"pvt_v2"` for keras_vits models (DeiT is `"vit"`), else `"other"`."""
    family = getattr(getattr(model, "weight_map", None), "family", None)
    return family if any(key[1] == family for key in XLA_TRAINING) else "other"


def device_type(strategy: tf.distribute.Strategy | None = None) -> str:
    """`"TPU"`, `"GPU"` or `"CPU"`: where `strategy` (or the default placement) runs the step."""
    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "TPU"
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy has none: ops go to a GPU when there is one
        devices = [device.name for device in tf.config.list_logical_devices("GPU")]
    return "GPU" if any("GPU" in device.upper() for device in devices) else "CPU"


def choose_jit_compile(model, compile_mode: str = "auto", strategy: tf.distribute.Strategy | None = None) -> bool:
    """Whether to compile `model`'s training step with XLA.

    Args:
        model: the model being trained (the student, for distillation).
        compile_mode: `"auto"` (the `XLA_TRAINING` table), `"graph"` or `"xla"`.
        strategy: the distribution strategy the step runs under; None uses the current one.
    """
    if compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}.")
    if compile_mode != "auto":
        return compile_mode == "xla"
    device = device_type(strategy)
    if device == "TPU":
        return True
    return XLA_TRAINING[device, model_family(model)]
