"""Record timm's ViT / DeiT registry: parameter counts, constructor kwargs, pretrained configs.

For every timm model name matching ``^vit_(tiny|small|base|large|huge)_patch(8|14|16|32)_(224|384)$``
plus the DeiT (distilled and not) 224/384 entries, this script builds the model
with ``num_classes=1000`` (on the ``meta`` device when possible, so no real
weights are allocated; falling back to CPU), counts its trainable parameters
and records:

* ``kwargs``: the ``VisionTransformer`` constructor arguments the registry entry
  resolves to (explicit arguments plus timm's defaults, captured at construction
  time and cross-checked against the built model's attributes);
* ``derived``: facts read off the built module (norm eps, activation, number of
  prefix tokens, patch grid, MLP hidden width, model class);
* ``pretrained_cfg``: mean, std, crop_pct, hf_hub_id, num_classes (and a few
  more fields) of the model's default pretrained tag.

Output: ``tests/fixtures/timm_reference.json`` (``--output FILE`` writes elsewhere). Nothing is downloaded.
Needs PyTorch + timm, i.e. the ``reference`` extra. Run from the repository root::

    python tools/reference/param_counts.py
"""

from __future__ import annotations

import json
import re

import timm
import torch
from reference_common import FIXTURE_DIR, build_timm, jsonable, output_argument, trainable_params
from timm.models import vision_transformer as timm_vit

OUT_PATH = FIXTURE_DIR / "timm_reference.json"

VIT_PATTERN = re.compile(r"^vit_(tiny|small|base|large|huge)_patch(8|14|16|32)_(224|384)$")
DEIT_NAMES = [
    "deit_tiny_patch16_224",
    "deit_small_patch16_224",
    "deit_base_patch16_224",
    "deit_base_patch16_384",
    "deit_tiny_distilled_patch16_224",
    "deit_small_distilled_patch16_224",
    "deit_base_distilled_patch16_224",
    "deit_base_distilled_patch16_384",
]

# What a "plain" ViT looks like (original ViT / DeiT recipe); used to flag variants.
PLAIN = {
    "class_token": True,
    "global_pool": "token",
    "init_values": None,
    "fc_norm": None,
    "no_embed_class": False,
    "pre_norm": False,
    "final_norm": True,
    "qkv_bias": True,
    "qk_norm": False,
    "proj_bias": True,
    "reg_tokens": 0,
    "mlp_ratio": 4.0,
    "pos_embed": "learn",
    "dynamic_img_size": False,
    "dynamic_img_pad": False,
    "scale_attn_norm": False,
    "scale_mlp_norm": False,
    "attn_layer": "Attention",
    "block_fn": "Block",
    "mlp_layer": "Mlp",
    "embed_layer": "PatchEmbed",
    "embed_norm_layer": None,
    "norm_layer": None,
    "act_layer": None,
}
PLAIN_DERIVED = {"norm_eps": 1e-6, "act_layer": "GELU(approximate='none')"}

# Constructor arguments that are runtime / training settings, not architecture.
SKIP_ARGS = {"self", "device", "dtype", "weight_init", "fix_init"}


def build(name):
    """`(model, device, constructor arguments)` of timm's `name`."""
    return build_timm(name, timm_vit.VisionTransformer, SKIP_ARGS)


def derived_facts(model):
    blk = model.blocks[0]
    norm = blk.norm1
    return {
        "model_class": f"{type(model).__module__}.{type(model).__name__}",
        "depth": len(model.blocks),
        "num_heads": blk.attn.num_heads,
        "head_dim": blk.attn.head_dim,
        "patch_size": list(model.patch_embed.patch_size),
        "img_size": list(model.patch_embed.img_size),
        "grid_size": list(model.patch_embed.grid_size),
        "mlp_hidden_dim": blk.mlp.fc1.out_features,
        "qkv_has_bias": blk.attn.qkv.bias is not None,
        "num_prefix_tokens": model.num_prefix_tokens,
        "has_dist_token": getattr(model, "dist_token", None) is not None,
        "pos_embed_len": model.pos_embed.shape[1] if model.pos_embed is not None else 0,
        "norm_eps": norm.eps,
        "norm_class": type(norm).__name__,
        "act_layer": repr(blk.mlp.act),
        "layer_scale": type(blk.ls1).__name__ != "Identity",
        "final_norm_is_identity": type(model.norm).__name__ == "Identity",
        "fc_norm_is_identity": type(model.fc_norm).__name__ == "Identity",
        "norm_pre_is_identity": type(model.norm_pre).__name__ == "Identity",
        "attn_pool": model.attn_pool is not None,
    }


def check_consistency(name, kwargs, model):
    """The captured constructor kwargs must agree with the built model."""
    blk = model.blocks[0]
    assert kwargs["embed_dim"] == model.embed_dim, name
    assert kwargs["depth"] == len(model.blocks), name
    assert kwargs["num_heads"] == blk.attn.num_heads, name
    assert kwargs["qkv_bias"] == (blk.attn.qkv.bias is not None), name
    assert kwargs["class_token"] == (model.cls_token is not None), name
    assert kwargs["global_pool"] == model.global_pool, name
    assert kwargs["no_embed_class"] == model.no_embed_class, name
    assert int(kwargs["mlp_ratio"] * kwargs["embed_dim"]) == blk.mlp.fc1.out_features, name
    assert (kwargs["init_values"] is not None) == (type(blk.ls1).__name__ != "Identity"), name
    assert kwargs["pre_norm"] == (type(model.norm_pre).__name__ != "Identity"), name


def differences_from_plain(kwargs, derived):
    diffs = {k: kwargs.get(k) for k, v in PLAIN.items() if k in kwargs and kwargs.get(k) != v}
    for k, v in PLAIN_DERIVED.items():
        if derived[k] != v:
            diffs[f"derived.{k}"] = derived[k]
    return diffs


def main(argv=None):
    out_path = output_argument(__doc__, OUT_PATH, argv)
    names = [n for n in timm.list_models() if VIT_PATTERN.match(n)]
    names += [n for n in DEIT_NAMES if n in timm.list_models()]
    missing = [n for n in DEIT_NAMES if n not in timm.list_models()]
    if missing:
        print("not in this timm's registry:", missing)

    result = {}
    for name in names:
        model, device, ctor = build(name)
        kwargs = {k: jsonable(v) for k, v in ctor.items()}
        check_consistency(name, ctor, model)
        derived = derived_facts(model)
        derived["built_on"] = device
        cfg = model.pretrained_cfg
        result[name] = {
            "trainable_params": trainable_params(model),
            "kwargs": kwargs,
            "derived": derived,
            "pretrained_cfg": {
                "mean": list(cfg.get("mean")),
                "std": list(cfg.get("std")),
                "crop_pct": cfg.get("crop_pct"),
                "hf_hub_id": cfg.get("hf_hub_id"),
                "num_classes": cfg.get("num_classes"),
                "tag": cfg.get("tag"),
                "input_size": list(cfg.get("input_size")),
                "interpolation": cfg.get("interpolation"),
                "crop_mode": cfg.get("crop_mode"),
            },
            "differences_from_plain_vit": differences_from_plain(kwargs, derived),
        }
        diffs = result[name]["differences_from_plain_vit"]
        print(
            f"{name:36s} {result[name]['trainable_params']:>12,d}  on {device}"
            + (f"  NON-PLAIN: {diffs}" if diffs else "")
        )
        del model

    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {out_path} ({len(result)} models, timm {timm.__version__}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
