"""Optional dependencies, grouped in setup.cfg's extras, and the error that names the extra to install."""

import importlib

#: Import name -> (distribution, extra that brings it).
OPTIONAL_MODULES = {
    "tensorflow_datasets": ("tensorflow-datasets", "train"),
    "keras_cv": ("keras-cv", "train"),
    "matplotlib": ("matplotlib", "train"),
    "ai_edge_litert": ("ai-edge-litert", "export"),
    "tensorflow_model_optimization": ("tensorflow-model-optimization", "export"),
    "tf_keras": ("tf-keras", "export"),
    "huggingface_hub": ("huggingface_hub", "hub"),
}


def require(module_name, purpose):
    """Imports `module_name`, or raises an ImportError that says which extra brings it.

    Args:
        module_name: an import name listed in `OPTIONAL_MODULES`, e.g. `"keras_cv"`.
        purpose: what needs it, for the message, e.g. `"keras_vits.training"`.
    """
    distribution, extra = OPTIONAL_MODULES[module_name]
    try:
        return importlib.import_module(module_name)
    except ImportError as error:
        raise ImportError(
            f"{purpose} needs {distribution}, which is not installed: pip install 'keras-vits[{extra}]' "
            f"(or 'keras-vits[all]')."
        ) from error
