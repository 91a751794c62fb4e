"""TensorFlow's oneDNN CPU kernels on every x86 CPU, switched on before TensorFlow loads.

TensorFlow turns oneDNN on by itself only on x86 CPUs with AVX-512 (VNNI, BF16, AMX); on
AVX2-only CPUs, such as AMD EPYC (Zen), it runs Eigen kernels instead. On a Zen 3 with
oneDNN the graph-mode training step ran 1.24-1.46x faster, which took the best mode from
0.73-0.83x of timm's to 1.07-1.23x, and float32 graph inference at batch 16 ran 1.21-1.54x
faster (docs/PERFORMANCE.md, "oneDNN on AVX2 CPUs").

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it loads, so this takes effect only
when keras_vits is imported before TensorFlow (or Keras, which loads it). When TensorFlow
came first and runs without oneDNN, keras_vits says so once, in one line, with the fix.
A value already in the environment is kept, and silences that line: `TF_ENABLE_ONEDNN_OPTS=0`
turns oneDNN off.
"""

import logging
import os
import platform
import sys

X86_MACHINES = ("x86_64", "amd64", "i386", "i686")


def enable_onednn_before_tensorflow(environ=os.environ, machine=None, tensorflow_loaded=None) -> bool:
    """Sets `TF_ENABLE_ONEDNN_OPTS=1` on x86 unless it is set or TensorFlow is loaded; True if it set it."""
    machine = (machine or platform.machine()).lower()
    if tensorflow_loaded is None:
        tensorflow_loaded = "tensorflow" in sys.modules
    if machine not in X86_MACHINES or tensorflow_loaded or "TF_ENABLE_ONEDNN_OPTS" in environ:
        return False
    environ["TF_ENABLE_ONEDNN_OPTS"] = "1"
    return True


#: The line printed when TensorFlow loaded first, without oneDNN (the cost: the figures above).
MISSED_ONEDNN_HINT = (
    "keras_vits: TensorFlow was loaded (by `import tensorflow` or `import keras`) before keras_vits, so its "
    "oneDNN CPU kernels are off (1.2-1.5x slower on AVX2 CPUs); set TF_ENABLE_ONEDNN_OPTS=1 before Python starts, "
    "or import keras_vits first (TF_ENABLE_ONEDNN_OPTS=0 keeps them off and silences this)."
)


def tensorflow_runs_onednn():
    """Whether the loaded TensorFlow runs oneDNN kernels; None when its private switch has moved."""
    try:
        from tensorflow.python.util import _pywrap_util_port
    except ImportError:  # pragma: no cover - a TensorFlow that moved the module
        return None
    return bool(_pywrap_util_port.IsMklEnabled())


def missed_onednn_hint(environ=os.environ, machine=None, tensorflow_loaded=None, backend=None, onednn_on=None):
    """`MISSED_ONEDNN_HINT` when TensorFlow loaded first on x86 and runs the models without oneDNN, else None.

    No hint where TensorFlow turned oneDNN on by itself (AVX-512 CPUs), where the user set
    `TF_ENABLE_ONEDNN_OPTS`, or where the models run on JAX or PyTorch.
    """
    machine = (machine or platform.machine()).lower()
    if tensorflow_loaded is None:
        tensorflow_loaded = "tensorflow" in sys.modules
    if machine not in X86_MACHINES or not tensorflow_loaded or "TF_ENABLE_ONEDNN_OPTS" in environ:
        return None
    if backend is None:
        from keras_vits.backend import BACKEND as backend  # Keras and TensorFlow are loaded by now
    if backend != "tensorflow":
        return None
    if onednn_on is None:
        onednn_on = tensorflow_runs_onednn()
    return MISSED_ONEDNN_HINT if onednn_on is False else None


if not enable_onednn_before_tensorflow():
    _hint = missed_onednn_hint()
    if _hint:
        logging.getLogger("keras_vits").warning(_hint)
