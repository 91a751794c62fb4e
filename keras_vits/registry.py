"""Every model variant by timm's name: `create_model`, `list_models`, `get_pretrained_cfg`.

The variants live as data in `keras_vits/variants.py` (a family's class name, its arguments,
its pretrained config), which imports no Keras; this module resolves each class in
`keras_vits.models` and builds the models. There is no function per variant.
"""

import difflib
import inspect
import logging
import os
import re

from keras_vits import models
from keras_vits.backend import keras
from keras_vits.models.base import Variant
from keras_vits.variants import DEFAULT_NUM_CLASSES, get_variant_data, list_models  # noqa: F401  (the registry's API)
from keras_vits.variants import VARIANTS as _VARIANT_DATA
from keras_vits.weights.loader import checkpoint_num_classes, load_timm_weights

logger = logging.getLogger("keras_vits")

#: name -> `Variant` (model class, arguments, pretrained config), in `keras_vits.variants`'s order.
VARIANTS = {
    name: Variant(getattr(models, data.family), data.config, data.pretrained) for name, data in _VARIANT_DATA.items()
}


def get_variant(name: str) -> Variant:
    """The registry entry for `name`; unknown names raise `ValueError` with close matches."""
    get_variant_data(name)
    return VARIANTS[name]


def get_pretrained_cfg(name: str) -> dict:
    """Preprocessing and source of `name`'s pretrained weights: mean, std, crop_pct, hf_hub_id."""
    return dict(get_variant(name).pretrained)


#: A HuggingFace Hub repo id, `owner/name`: letters, digits, `-`, `_`, `.`, not opening or closing with `-` or `.`.
_HUB_REPO_ID = re.compile(r"^[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?/[A-Za-z0-9](?:[\w.-]*[A-Za-z0-9])?$")
HUB_FILENAME = "model.safetensors"


def resolve_checkpoint(weights: str | os.PathLike) -> str:
    """A local `.safetensors` path for `weights`: an existing path, or a HuggingFace Hub repo id.

    Args:
        weights: a path (an existing one always wins), or a Hub repo `owner/name`,
            optionally prefixed `hf-hub:` (`timm/deit_tiny_patch16_224.fb_in1k`,
            `Zetatech/pvt-tiny-224`), whose `model.safetensors` is downloaded with
            huggingface_hub (`pip install 'keras-vits[hub]'`).

    Returns: the path of the local file.
    """
    weights = os.fspath(weights)
    if os.path.exists(weights):
        return weights
    repo = weights.removeprefix("hf-hub:")
    if not _HUB_REPO_ID.match(repo) or repo.endswith(".safetensors"):
        raise FileNotFoundError(
            f"weights={weights!r} is neither an existing .safetensors file nor a HuggingFace Hub repo id "
            f"('owner/name', e.g. 'timm/deit_tiny_patch16_224.fb_in1k')."
        )
    try:
        from huggingface_hub import hf_hub_download
    except ImportError as error:
        raise ImportError(
            f"weights={weights!r} is a HuggingFace Hub id, which needs huggingface_hub: "
            f"pip install 'keras-vits[hub]' (or pass the path of a downloaded {HUB_FILENAME})."
        ) from error
    return hf_hub_download(repo_id=repo, filename=HUB_FILENAME)


def create_model(
    name: str,
    weights: str | os.PathLike | None = None,
    num_classes: int | None = None,
    image_size: int | tuple[int, int] | None = None,
    **overrides,
) -> keras.Model:
    """Builds a registered model, optionally with pretrained weights.

    Args:
        name: timm's model name, e.g. `"deit_small_patch16_224"`; see `list_models()`.
        weights: None (random init), a `.safetensors` path, or a HuggingFace Hub repo
            id such as `"timm/deit_small_patch16_224.fb_in1k"` (see `resolve_checkpoint`). Defaults to None.
        num_classes: classes of the head; 0 returns features. None takes the
            checkpoint's head (a fine-tuned 10-class file gives its trained 10-class
            head), or 1000 without weights. Another size than the checkpoint's leaves
            a fresh head, and says so in a warning of the `keras_vits` logger. A
            `features_only=True` model has no head: leave it None (or 0). Defaults to None.
        image_size: int or `(H, W)`; position embeddings are resampled to it when
            loading. Defaults to the variant's.
        **overrides: any other constructor argument (`drop_path_rate=0.1`, ...):
            `features_only=True, out_indices=(...)` for feature maps (every family),
            `dynamic_img_size=True` for a ViT or DeiT that takes any input size.

    Returns: the Keras model, named `name`; with weights, `model.pretrained_cfg` holds the
        variant's pretrained config (mean, std, crop_pct), as `get_pretrained_cfg(name)` does.
    """
    variant = get_variant(name)
    accepted = inspect.signature(variant.model_cls.__init__).parameters
    unknown = sorted(set(overrides) - set(accepted) - {"allow_large"})  # allow_large: VitsModel's size limits
    if unknown:
        close = difflib.get_close_matches(unknown[0], [p for p in accepted if p not in ("self", "kwargs")], n=1)
        hint = f" Did you mean {close[0]}?" if close else ""
        raise ValueError(
            f"{variant.model_cls.__name__} ({name}) takes no argument {', '.join(unknown)}.{hint} "
            f"It takes: {', '.join(p for p in accepted if p not in ('self', 'kwargs'))}."
        )
    if overrides.get("features_only"):
        if num_classes:
            raise ValueError(
                f"create_model({name!r}, features_only=True) returns feature maps and builds no head, "
                f"got num_classes={num_classes!r}: leave num_classes out (or pass 0)."
            )
        num_classes = 0
    checkpoint = resolve_checkpoint(weights) if weights is not None else None
    if num_classes is None:
        in_checkpoint = checkpoint_num_classes(checkpoint, variant.model_cls.weight_map) if checkpoint else None
        num_classes = DEFAULT_NUM_CLASSES if in_checkpoint is None else in_checkpoint
    config = dict(variant.config, num_classes=num_classes, **overrides)
    if image_size is not None:
        config["image_size"] = image_size
    model = variant.model_cls(name=name, **config)
    if checkpoint is not None:
        skipped = load_timm_weights(model, checkpoint)
        head_keys = [
            key for key in skipped if key.split(".")[0] in {m.split(".")[0] for m in model.weight_map.head_modules}
        ]
        if head_keys and num_classes:
            logger.warning(
                "%s: the checkpoint's head does not fit num_classes=%d; these weights were not loaded and the "
                "head is freshly initialised: %s",
                name,
                num_classes,
                ", ".join(head_keys),
            )
        # As timm's `model.pretrained_cfg`: the normalisation the loaded weights expect.
        # `DistillationModel` compares a teacher's and a student's.
        model.pretrained_cfg = dict(variant.pretrained)
    return model
