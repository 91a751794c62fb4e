"""Every model variant by timm's name: `create_model`, `list_models`, `get_pretrained_cfg`.

Variants live as tables in their family's module (`models/vit.py`, ...);
this module only gathers them. There is no function per variant.
"""

import difflib
import fnmatch
import inspect
import os

from keras_vits.models import pvt, swin, vit
from keras_vits.weights.loader import load_timm_weights

_FAMILIES = (vit, swin, pvt)


def _all_variants():
    variants = {}
    for module in _FAMILIES:
        for name, variant in module.VARIANTS.items():
            if name in variants:
                raise RuntimeError(f"Model name {name!r} is registered twice.")
            variants[name] = variant
    return variants


VARIANTS = _all_variants()


def list_models(pattern="*"):
    """Sorted registry names matching a shell-style `pattern`.

    Example:
    >>> list_models("deit_*distilled*")[:2]
    ['deit_base_distilled_patch16_224', 'deit_base_distilled_patch16_384']
    """
    return sorted(name for name in VARIANTS if fnmatch.fnmatchcase(name, pattern))


def get_variant(name):
    """The registry entry for `name`; unknown names raise `ValueError` with close matches."""
    if name not in VARIANTS:
        prefixed = [known for known in sorted(VARIANTS) if known.startswith(name)]
        close = (prefixed or difflib.get_close_matches(name, list(VARIANTS), n=5, cutoff=0.5))[:5]
        suggestion = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown model name {name!r}.{suggestion} See keras_vits.list_models() for all names.")
    return VARIANTS[name]


def get_pretrained_cfg(name):
    """Preprocessing and source of `name`'s pretrained weights: mean, std, crop_pct, hf_hub_id."""
    return dict(get_variant(name).pretrained)


def resolve_checkpoint(weights):
    """A local `.safetensors` path for `weights`: a path, or `timm/<repo>` on the HuggingFace Hub."""
    weights = os.fspath(weights)
    if os.path.exists(weights):
        return weights
    repo = weights.removeprefix("hf-hub:")
    if repo.startswith("timm/"):
        try:
            from huggingface_hub import hf_hub_download
        except ImportError as error:
            raise ImportError(
                f"weights={weights!r} needs huggingface_hub (pip install huggingface_hub), "
                f"or pass the path of a downloaded model.safetensors."
            ) from error
        return hf_hub_download(repo, "model.safetensors")
    raise FileNotFoundError(f"weights={weights!r} is neither an existing .safetensors file nor a 'timm/<repo>' Hub id.")


def create_model(name, weights=None, num_classes=1000, image_size=None, **overrides):
    """Builds a registered model, optionally with pretrained weights.

    Args:
        name: timm's model name, e.g. `"deit_small_patch16_224"`; see `list_models()`.
        weights: None (random init), a `.safetensors` path, or `"timm/<repo>"`
            (downloaded with huggingface_hub). Defaults to None.
        num_classes: classes of the head; 0 returns features. When it differs from
            the checkpoint's, the head is left freshly initialised. Defaults to 1000.
        image_size: int or `(H, W)`; position embeddings are resampled to it when
            loading. Defaults to the variant's.
        **overrides: any other constructor argument (`drop_path_rate=0.1`, ...).

    Returns: the Keras model, named `name`.
    """
    variant = get_variant(name)
    accepted = inspect.signature(variant.model_cls.__init__).parameters
    unknown = sorted(set(overrides) - set(accepted))
    if unknown:
        hint = (
            " features_only is for the hierarchical families (Swin, PVT); use num_classes=0 for pooled features."
            if "features_only" in unknown
            else ""
        )
        raise ValueError(
            f"{variant.model_cls.__name__} ({name}) takes no argument {', '.join(unknown)}.{hint} "
            f"It takes: {', '.join(p for p in accepted if p not in ('self', 'kwargs'))}."
        )
    config = dict(variant.config, num_classes=num_classes, **overrides)
    if image_size is not None:
        config["image_size"] = image_size
    model = variant.model_cls(name=name, **config)
    if weights is not None:
        load_timm_weights(model, resolve_checkpoint(weights), variant.weight_map)
    return model
