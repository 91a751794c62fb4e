"""keras_vits: vision transformers for Keras, with timm's weights, from training to TF Serving and TFLite.

Public API:
    VisionTransformer, DeiT, SwinTransformer, PyramidVisionTransformer (v1), PyramidVisionTransformerV2:
        the model classes.
    create_model, list_models, get_pretrained_cfg: the registry of timm-named variants.
    count_macs: multiply-accumulates for one image.
    load_timm_weights: strict loading of timm `.safetensors` checkpoints.
    DistillationModel, distillation_losses: DeiT's distillation (none, soft, hard) for compile/fit, on any backend.
    compile_for_inference: the fastest forward pass (graph, XLA, bfloat16) that agrees with the model.
"""

# First: TensorFlow reads its oneDNN switch and the command line's log level when it loads
# (keras_vits/_onednn.py, keras_vits/_cli_startup.py).
from keras_vits import _onednn  # noqa: F401, I001
from keras_vits import _cli_startup  # noqa: F401, I001
from keras_vits.macs import count_macs
from keras_vits.models import (
    DeiT,
    PyramidVisionTransformer,
    PyramidVisionTransformerV2,
    SwinTransformer,
    VisionTransformer,
)
from keras_vits.registry import create_model, get_pretrained_cfg, list_models
from keras_vits.weights import load_timm_weights

__version__ = "0.3.0"

#: Public names loaded on first use: `inference` imports TensorFlow, which the JAX and PyTorch
#: backends may lack, and `distillation` needs Keras 3, which tf-keras (QAT's Keras) is not.
_LOADED_ON_FIRST_USE = {
    "DistillationModel": "keras_vits.distillation",
    "distillation_losses": "keras_vits.distillation",
    "compile_for_inference": "keras_vits.inference",
}


def __getattr__(name):
    if name in _LOADED_ON_FIRST_USE:
        import importlib

        return getattr(importlib.import_module(_LOADED_ON_FIRST_USE[name]), name)
    raise AttributeError(f"module 'keras_vits' has no attribute {name!r}")


__all__ = [
    "DeiT",
    "DistillationModel",
    "PyramidVisionTransformer",
    "PyramidVisionTransformerV2",
    "SwinTransformer",
    "VisionTransformer",
    "compile_for_inference",
    "count_macs",
    "create_model",
    "distillation_losses",
    "get_pretrained_cfg",
    "list_models",
    "load_timm_weights",
]
