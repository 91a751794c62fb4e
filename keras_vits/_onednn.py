"""TensorFlow's oneDNN CPU kernels on every x86 CPU, switched on before TensorFlow loads.

TensorFlow turns oneDNN on by itself only on x86 CPUs with AVX-512 (VNNI, BF16, AMX); on
AVX2-only CPUs, such as AMD EPYC (Zen), it runs Eigen kernels instead. On a Zen 3 with
oneDNN the graph-mode training step ran 1.24-1.46x faster, which took the best mode from
0.73-0.83x of timm's to 1.07-1.23x, and float32 graph inference at batch 16 ran 1.21-1.54x
faster (docs/PERFORMANCE.md, "oneDNN on AVX2 CPUs").

TensorFlow reads `TF_ENABLE_ONEDNN_OPTS` once, when it loads, so this takes effect only
when keras_vits is imported before TensorFlow. A value already in the environment is kept:
`TF_ENABLE_ONEDNN_OPTS=0` turns oneDNN off.
"""

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


enable_onednn_before_tensorflow()
