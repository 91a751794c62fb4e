"""Graph or XLA for a training step, chosen per device type and model family from measurement.

Keras's `compile(jit_compile="auto")` turns XLA on wherever it can, whatever it costs;
on CPUs XLA's generic code loses to oneDNN's kernels for some families (PVT's
depthwise convolutions ran at 0.25-0.32x timm). So the trainer and `DistillationModel.compile()`
ask `choose_jit_compile` instead, and a recipe's `compile_mode` (or the CLI's
`--compile-mode`) overrides it.

`XLA_TRAINING` is the table. Its CPU rows hold with TensorFlow's oneDNN kernels on, which
keras_vits arranges on x86 (keras_vits/_onednn.py); they come from `keras-vits benchmark
--modes train train_xla` on an Intel Xeon with AMX and AMD EPYC Zen 3 and Zen 4 CPUs
(docs/PERFORMANCE.md, "Graph or XLA"), which agreed: XLA wins for Swin and for float32 ViTs of under
`VIT_XLA_MAX_MACS` per image, graph mode for larger or bfloat16 ViTs and for PVT. With oneDNN off
(Zen 3, Eigen's kernels) XLA won nowhere, so every CPU step is then graph.
No TensorFlow GPU could be reached to measure the GPU rows: they follow TensorFlow's
guidance that XLA's fusion of the elementwise ops pays on GPUs, and are marked so there.
TPUs always compile with XLA.

A step replicated over several CPU devices (MirroredStrategy over logical CPUs, or one replica
per worker process) runs in graph mode: XLA cannot compile it there ("tf.Variable on a
different device", https://www.tensorflow.org/xla/known_issues), so "auto" never picks it and
an explicit "xla" is refused with an error rather than a crash inside the first step.
"""

from keras_vits.backend import onednn_enabled
from keras_vits.macs import count_macs

COMPILE_MODES = ("auto", "graph", "xla")

#: Whether XLA trains faster, by (device type, model family). "other" covers any Keras model.
XLA_TRAINING = {
    ("CPU", "vit"): False,  # at VIT_XLA_MAX_MACS and above; below it, XLA
    ("CPU", "swin"): True,
    ("CPU", "pvt_v1"): False,
    ("CPU", "pvt_v2"): False,
    ("CPU", "other"): False,
    ("GPU", "vit"): True,
    ("GPU", "swin"): True,
    ("GPU", "pvt_v1"): True,
    ("GPU", "pvt_v2"): True,
    ("GPU", "other"): True,
}


#: On CPUs, ViTs (and DeiTs) below this many MACs per image train faster under XLA: the
#: Fashion-MNIST student (25 M) by 11-13% and vit_tiny_patch16_224 (1.25 G) by 5%, while
#: deit_small_patch16_224 (4.6 G) lost 16-19% (docs/PERFORMANCE.md). Small matrix multiplies
#: leave the elementwise ops, which XLA fuses, a larger share of the step.
VIT_XLA_MAX_MACS = 2_000_000_000


def _vit_macs(model) -> float:
    """MACs per image, or infinity (graph mode, the large-ViT row) when the input size is not fixed."""
    try:
        return count_macs(model)
    except (TypeError, ValueError):  # a dynamic_img_size model built for (None, None, C) inputs
        return float("inf")


def model_family(model) -> str:
    """`"vit"`, `"swin"`, `"pvt_v1"`, `"pvt_v2"` for keras_vits models (DeiT is `"vit"`), else `"other"`."""
    family = getattr(getattr(model, "weight_map", None), "family", None)
    return family if any(key[1] == family for key in XLA_TRAINING) else "other"


def device_type(strategy=None) -> str:
    """`"TPU"`, `"GPU"` or `"CPU"`: where `strategy` (or the default placement) runs the step."""
    import tensorflow as tf  # here, not at the top: recipes read COMPILE_MODES on every backend

    strategy = strategy or tf.distribute.get_strategy()
    if isinstance(strategy, tf.distribute.TPUStrategy):
        return "TPU"
    try:
        devices = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy has none: ops go to a GPU when there is one
        devices = [device.name for device in tf.config.list_logical_devices("GPU")]
    return "GPU" if any("GPU" in device.upper() for device in devices) else "CPU"


def choose_jit_compile(model, compile_mode: str = "auto", strategy=None) -> bool:
    """Whether to compile `model`'s training step with XLA.

    Args:
        model: the model being trained (the student, for distillation).
        compile_mode: `"auto"` (the `XLA_TRAINING` table), `"graph"` or `"xla"`.
        strategy: the distribution strategy the step runs under; None uses the current one.
    """
    if compile_mode not in COMPILE_MODES:
        raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {compile_mode!r}.")
    import tensorflow as tf

    strategy = strategy or tf.distribute.get_strategy()
    device = device_type(strategy)
    replicated_on_cpu = device == "CPU" and strategy.num_replicas_in_sync > 1
    if compile_mode == "xla" and replicated_on_cpu:
        raise ValueError(
            f"compile_mode='xla' cannot run a step replicated over {strategy.num_replicas_in_sync} CPU devices "
            "(XLA: tf.Variable on a different device); use compile_mode='graph' or 'auto'."
        )
    if compile_mode != "auto":
        return compile_mode == "xla"
    if replicated_on_cpu:
        return False
    if device == "TPU":
        return True
    family = model_family(model)
    if device == "CPU":
        if onednn_enabled() is False:
            return False
        if family == "vit":
            # Under mixed_bfloat16 the small student's step lost with XLA (1.14-1.20x slower, two CPUs).
            return getattr(model, "compute_dtype", "float32") == "float32" and _vit_macs(model) < VIT_XLA_MAX_MACS
    return XLA_TRAINING[device, family]
