"""Every registry variant as data: its family's class name, constructor arguments and pretrained config.

This module imports neither Keras nor TensorFlow, so `keras-vits list` and `keras-vits info NAME`
answer from it before Keras loads. `keras_vits.registry` resolves each class name in
`keras_vits.models` and builds the models. `variant_sizes.json`, beside this file, holds each
variant's parameters and MACs at its default arguments with a 1000-class head; it is written by
`tools/reference/make_variant_sizes.py`.
"""

import difflib
import fnmatch
import json
import pathlib
import typing

#: The size table: name -> {"parameters": int, "macs": int}, at the default arguments and 1000 classes.
SIZES_FILE = pathlib.Path(__file__).resolve().parent / "variant_sizes.json"

#: Head size of a model built without weights and without `num_classes` (ImageNet-1k's).
DEFAULT_NUM_CLASSES = 1000

#: torchvision's ImageNet statistics, per channel (RGB): DeiT, Swin, PVT and DINO weights.
IMAGENET_DEFAULT_MEAN = (0.485, 0.456, 0.406)
IMAGENET_DEFAULT_STD = (0.229, 0.224, 0.225)

#: `[-1, 1]` scaling (Inception's): the AugReg and original ViT weights.
IMAGENET_INCEPTION_MEAN = (0.5, 0.5, 0.5)
IMAGENET_INCEPTION_STD = (0.5, 0.5, 0.5)

_NORMALISATION = {
    "imagenet": (IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD),
    "inception": (IMAGENET_INCEPTION_MEAN, IMAGENET_INCEPTION_STD),
}


class VariantData(typing.NamedTuple):
    """One registry entry as data.

    Attributes:
        family: the model class's name in `keras_vits.models` (`"VisionTransformer"`, ...).
        config: constructor arguments, without `num_classes` and `name`.
        pretrained: timm's pretrained config: `hf_hub_id`, `mean`, `std`, `crop_pct`, `num_classes`.
    """

    family: str
    config: dict
    pretrained: dict


# ----------------------------------------------------------------------------- ViT and DeiT

# width, depth, heads of each size, as in the ViT and DeiT papers and timm.
_VIT_SIZES = {
    "tiny": dict(embed_dim=192, depth=12, num_heads=3),
    "small": dict(embed_dim=384, depth=12, num_heads=6),
    "base": dict(embed_dim=768, depth=12, num_heads=12),
    "large": dict(embed_dim=1024, depth=24, num_heads=16),
    "huge": dict(embed_dim=1280, depth=32, num_heads=16),
}


def _vit(family, size, patch, image, hub_tag, norm, pretrained_classes=1000):
    mean, std = _NORMALISATION[norm]
    return VariantData(
        family,
        dict(image_size=image, patch_size=patch, **_VIT_SIZES[size]),
        dict(
            hf_hub_id=hub_tag and f"timm/{hub_tag}",
            mean=mean,
            std=std,
            crop_pct=1.0 if image == 384 else 0.9,
            num_classes=pretrained_classes,
        ),
    )


# name: model class, size, patch, image size, timm's default pretrained tag (None: no weights),
# normalisation of those weights, and their number of classes (0: a headless checkpoint).
# Read from timm 1.0.31 by tools/reference/param_counts.py.
_VIT = "VisionTransformer"
_VIT_TABLE = {
    "vit_tiny_patch16_224": (_VIT, "tiny", 16, 224, "vit_tiny_patch16_224.augreg_in21k_ft_in1k", "inception"),
    "vit_tiny_patch16_384": (_VIT, "tiny", 16, 384, "vit_tiny_patch16_384.augreg_in21k_ft_in1k", "inception"),
    "vit_small_patch32_224": (_VIT, "small", 32, 224, "vit_small_patch32_224.augreg_in21k_ft_in1k", "inception"),
    "vit_small_patch32_384": (_VIT, "small", 32, 384, "vit_small_patch32_384.augreg_in21k_ft_in1k", "inception"),
    "vit_small_patch16_224": (_VIT, "small", 16, 224, "vit_small_patch16_224.augreg_in21k_ft_in1k", "inception"),
    "vit_small_patch16_384": (_VIT, "small", 16, 384, "vit_small_patch16_384.augreg_in21k_ft_in1k", "inception"),
    "vit_small_patch8_224": (_VIT, "small", 8, 224, "vit_small_patch8_224.dino", "imagenet", 0),
    "vit_base_patch32_224": (_VIT, "base", 32, 224, "vit_base_patch32_224.augreg_in21k_ft_in1k", "inception"),
    "vit_base_patch32_384": (_VIT, "base", 32, 384, "vit_base_patch32_384.augreg_in21k_ft_in1k", "inception"),
    "vit_base_patch16_224": (_VIT, "base", 16, 224, "vit_base_patch16_224.augreg2_in21k_ft_in1k", "inception"),
    "vit_base_patch16_384": (_VIT, "base", 16, 384, "vit_base_patch16_384.augreg_in21k_ft_in1k", "inception"),
    "vit_base_patch8_224": (_VIT, "base", 8, 224, "vit_base_patch8_224.augreg2_in21k_ft_in1k", "inception"),
    "vit_large_patch32_224": (_VIT, "large", 32, 224, "vit_large_patch32_224.orig_in21k", "inception", 0),
    "vit_large_patch32_384": (_VIT, "large", 32, 384, "vit_large_patch32_384.orig_in21k_ft_in1k", "inception"),
    "vit_large_patch16_224": (_VIT, "large", 16, 224, "vit_large_patch16_224.augreg_in21k_ft_in1k", "inception"),
    "vit_large_patch16_384": (_VIT, "large", 16, 384, "vit_large_patch16_384.augreg_in21k_ft_in1k", "inception"),
    "vit_large_patch14_224": (_VIT, "large", 14, 224, None, "inception"),
    "vit_huge_patch14_224": (_VIT, "huge", 14, 224, "vit_huge_patch14_224.orig_in21k", "inception", 0),
    "deit_tiny_patch16_224": (_VIT, "tiny", 16, 224, "deit_tiny_patch16_224.fb_in1k", "imagenet"),
    "deit_small_patch16_224": (_VIT, "small", 16, 224, "deit_small_patch16_224.fb_in1k", "imagenet"),
    "deit_base_patch16_224": (_VIT, "base", 16, 224, "deit_base_patch16_224.fb_in1k", "imagenet"),
    "deit_base_patch16_384": (_VIT, "base", 16, 384, "deit_base_patch16_384.fb_in1k", "imagenet"),
    "deit_tiny_distilled_patch16_224": ("DeiT", "tiny", 16, 224, "deit_tiny_distilled_patch16_224.fb_in1k", "imagenet"),
    "deit_small_distilled_patch16_224": (
        "DeiT",
        "small",
        16,
        224,
        "deit_small_distilled_patch16_224.fb_in1k",
        "imagenet",
    ),
    "deit_base_distilled_patch16_224": ("DeiT", "base", 16, 224, "deit_base_distilled_patch16_224.fb_in1k", "imagenet"),
    "deit_base_distilled_patch16_384": ("DeiT", "base", 16, 384, "deit_base_distilled_patch16_384.fb_in1k", "imagenet"),
}

# ----------------------------------------------------------------------------- Swin

_SWIN_SIZES = {
    "tiny": dict(embed_dim=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24)),
    "small": dict(embed_dim=96, depths=(2, 2, 18, 2), num_heads=(3, 6, 12, 24)),
    "base": dict(embed_dim=128, depths=(2, 2, 18, 2), num_heads=(4, 8, 16, 32)),
    "large": dict(embed_dim=192, depths=(2, 2, 18, 2), num_heads=(6, 12, 24, 48)),
}

# name: size, window, image size, timm's default pretrained tag.
_SWIN_TABLE = {
    "swin_tiny_patch4_window7_224": ("tiny", 7, 224, "ms_in1k"),
    "swin_small_patch4_window7_224": ("small", 7, 224, "ms_in22k_ft_in1k"),
    "swin_base_patch4_window7_224": ("base", 7, 224, "ms_in22k_ft_in1k"),
    "swin_large_patch4_window7_224": ("large", 7, 224, "ms_in22k_ft_in1k"),
    "swin_base_patch4_window12_384": ("base", 12, 384, "ms_in22k_ft_in1k"),
    "swin_large_patch4_window12_384": ("large", 12, 384, "ms_in22k_ft_in1k"),
}


def _swin(name, size, window, image, tag):
    mean, std = _NORMALISATION["imagenet"]
    return VariantData(
        "SwinTransformer",
        dict(image_size=image, patch_size=4, window_size=window, **_SWIN_SIZES[size]),
        dict(
            hf_hub_id=f"timm/{name}.{tag}", mean=mean, std=std, crop_pct=1.0 if image == 384 else 0.9, num_classes=1000
        ),
    )


# ----------------------------------------------------------------------------- PVT v1 and v2

_PVT_IMAGENET = dict(
    mean=_NORMALISATION["imagenet"][0], std=_NORMALISATION["imagenet"][1], crop_pct=0.9, num_classes=1000
)
_V2_WIDE = dict(embed_dims=(64, 128, 320, 512), num_heads=(1, 2, 5, 8), sr_ratios=(8, 4, 2, 1))

# name: constructor arguments (read from timm 1.0.31 and transformers 5.23 by tools/reference/pvt_param_counts.py).
_PVT_V2_TABLE = {
    "pvt_v2_b0": dict(_V2_WIDE, embed_dims=(32, 64, 160, 256), depths=(2, 2, 2, 2), mlp_ratios=(8, 8, 4, 4)),
    "pvt_v2_b1": dict(_V2_WIDE, depths=(2, 2, 2, 2), mlp_ratios=(8, 8, 4, 4)),
    "pvt_v2_b2": dict(_V2_WIDE, depths=(3, 4, 6, 3), mlp_ratios=(8, 8, 4, 4)),
    "pvt_v2_b2_li": dict(_V2_WIDE, depths=(3, 4, 6, 3), mlp_ratios=(8, 8, 4, 4), linear=True),
    "pvt_v2_b3": dict(_V2_WIDE, depths=(3, 4, 18, 3), mlp_ratios=(8, 8, 4, 4)),
    "pvt_v2_b4": dict(_V2_WIDE, depths=(3, 8, 27, 3), mlp_ratios=(8, 8, 4, 4)),
    "pvt_v2_b5": dict(_V2_WIDE, depths=(3, 6, 40, 3), mlp_ratios=(4, 4, 4, 4)),
}
# name: depths, HuggingFace Hub repo of the weights.
_PVT_V1_TABLE = {
    "pvt_tiny": ((2, 2, 2, 2), "Zetatech/pvt-tiny-224"),
    "pvt_small": ((3, 4, 6, 3), "Zetatech/pvt-small-224"),
    "pvt_medium": ((3, 4, 18, 3), "Zetatech/pvt-medium-224"),
    "pvt_large": ((3, 8, 27, 3), "Zetatech/pvt-large-224"),
}


def _all_variants():
    rows = [(name, _vit(*row)) for name, row in _VIT_TABLE.items()]
    rows += [(name, _swin(name, *row)) for name, row in _SWIN_TABLE.items()]
    rows += [
        (
            name,
            VariantData(
                "PyramidVisionTransformerV2",
                dict(image_size=224, **args),
                dict(_PVT_IMAGENET, hf_hub_id=f"timm/{name}.in1k"),
            ),
        )
        for name, args in _PVT_V2_TABLE.items()
    ]
    rows += [
        (
            name,
            VariantData(
                "PyramidVisionTransformer",
                dict(image_size=224, depths=depths, **_V2_WIDE, mlp_ratios=(8, 8, 4, 4)),
                dict(_PVT_IMAGENET, hf_hub_id=hub_id),
            ),
        )
        for name, (depths, hub_id) in _PVT_V1_TABLE.items()
    ]
    variants = {}
    for name, variant in rows:
        if name in variants:
            raise RuntimeError(f"Model name {name!r} is registered twice.")
        variants[name] = variant
    return variants


#: Every variant by timm's name, in registry order (ViT and DeiT, Swin, PVT v2, PVT v1).
VARIANTS = _all_variants()


def list_models(pattern: str = "*") -> list[str]:
    """Sorted registry names matching a shell-style `pattern`.

    Example:
    >>> list_models("deit_*distilled*")[:2]
    ['deit_base_distilled_patch16_224', 'deit_base_distilled_patch16_384']
    """
    return sorted(name for name in VARIANTS if fnmatch.fnmatchcase(name, pattern))


def get_variant_data(name: str) -> VariantData:
    """The table's entry for `name`; unknown names raise `ValueError` with close matches."""
    if name not in VARIANTS:
        prefixed = [known for known in sorted(VARIANTS) if known.startswith(name)]
        close = (prefixed or difflib.get_close_matches(name, list(VARIANTS), n=5, cutoff=0.5))[:5]
        suggestion = f" Did you mean {', '.join(close)}?" if close else ""
        raise ValueError(f"Unknown model name {name!r}.{suggestion} See keras_vits.list_models() for all names.")
    return VARIANTS[name]


def default_input_shape(name: str) -> tuple:
    """`(None, H, W, C)`: the input of `name` built at its default arguments."""
    config = get_variant_data(name).config
    size = config["image_size"]
    height, width = (size, size) if isinstance(size, int) else tuple(size)
    return (None, height, width, config.get("in_chans", 3))


def default_sizes() -> dict:
    """name -> {"parameters": int, "macs": int}: each variant at its default arguments, 1000 classes."""
    return {name: entry for name, entry in json.loads(SIZES_FILE.read_text()).items() if not name.startswith("_")}
