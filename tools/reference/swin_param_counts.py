"""Record timm's Swin Transformer (v1) registry: parameter counts, constructor kwargs, pretrained configs.

Swin counterpart of ``tools/reference/param_counts.py``. For each model in ``NAMES`` it
builds the timm model with ``num_classes=1000`` (on the ``meta`` device when
possible, so no real weights are allocated; falling back to CPU), counts its
trainable parameters and records:

* ``kwargs``: the ``SwinTransformer`` constructor arguments the registry entry
  resolves to (explicit arguments plus timm's defaults, captured at
  construction time and cross-checked against the built model);
* ``derived``: facts read off the built module (LayerNorm eps, per-stage
  dims / resolutions / window and shift sizes, relative-position table rows,
  head layout);
* ``pretrained_cfg``: hf_hub_id, tag, mean, std, crop_pct, num_classes (and a
  few more fields) of the model's default pretrained tag.

Output: ``tests/fixtures/swin_reference.json`` (``--output FILE`` writes elsewhere). Nothing is downloaded.
Needs PyTorch + timm, i.e. the ``reference`` extra. Run from the repository root::

    python tools/reference/swin_param_counts.py
"""

from __future__ import annotations

import json

import timm
import torch
from reference_common import FIXTURE_DIR, build_timm, jsonable, output_argument, trainable_params
from timm.models import swin_transformer as timm_swin

OUT_PATH = FIXTURE_DIR / "swin_reference.json"

NAMES = [
    "swin_tiny_patch4_window7_224",
    "swin_small_patch4_window7_224",
    "swin_base_patch4_window7_224",
    "swin_large_patch4_window7_224",
    "swin_base_patch4_window12_384",
    "swin_large_patch4_window12_384",
]

# Constructor arguments that are runtime / training settings, not architecture.
SKIP_ARGS = {"self", "device", "dtype", "weight_init"}


def build(name):
    """`(model, device, constructor arguments)` of timm's `name`."""
    return build_timm(name, timm_swin.SwinTransformer, SKIP_ARGS)


def derived_facts(model):
    norms = {type(m).__name__: m.eps for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    eps = {m.eps for m in model.modules() if isinstance(m, torch.nn.LayerNorm)}
    assert len(eps) == 1, eps
    blk0 = model.layers[0].blocks[0]
    return {
        "model_class": f"{type(model).__module__}.{type(model).__name__}",
        "norm_eps": eps.pop(),
        "norm_class": sorted(norms),
        "act_layer": repr(blk0.mlp.act),
        "patch_size": list(model.patch_embed.patch_size),
        "img_size": list(model.patch_embed.img_size),
        "grid_size": list(model.patch_embed.grid_size),
        "patch_embed_norm": type(model.patch_embed.norm).__name__,
        "num_features": model.num_features,
        "head_fc": [model.head.fc.in_features, model.head.fc.out_features],
        "global_pool": model.global_pool,
        "stages": [
            {
                "dim": stage.blocks[0].dim,
                "depth": len(stage.blocks),
                "num_heads": stage.blocks[0].attn.num_heads,
                "downsample": type(stage.downsample).__name__,
                "resolution": list(stage.output_resolution),
                "window_size": sorted({tuple(b.window_size) for b in stage.blocks}),
                "shift_size": [list(b.shift_size) for b in stage.blocks[:2]],
                "rel_pos_table_rows": int(stage.blocks[0].attn.relative_position_bias_table.shape[0]),
                "mlp_hidden_dim": stage.blocks[0].mlp.fc1.out_features,
            }
            for stage in model.layers
        ],
    }


def check_consistency(name, kwargs, model):
    """The captured constructor kwargs must agree with the built model."""
    assert kwargs["embed_dim"] == model.embed_dim, name
    assert list(kwargs["depths"]) == [len(s.blocks) for s in model.layers], name
    assert list(kwargs["num_heads"]) == [s.blocks[0].attn.num_heads for s in model.layers], name
    assert all((s.blocks[0].attn.qkv.bias is not None) == kwargs["qkv_bias"] for s in model.layers), name
    assert kwargs["global_pool"] == model.global_pool, name
    for i, s in enumerate(model.layers):
        assert s.blocks[0].mlp.fc1.out_features == int(kwargs["mlp_ratio"] * kwargs["embed_dim"] * 2**i), name


def main(argv=None):
    out_path = output_argument(__doc__, OUT_PATH, argv)
    result = {}
    for name in NAMES:
        model, device, ctor = build(name)
        kwargs = {k: jsonable(v) for k, v in ctor.items()}
        check_consistency(name, ctor, model)
        derived = derived_facts(model)
        derived["built_on"] = device
        cfg = model.pretrained_cfg
        result[name] = {
            "trainable_params": trainable_params(model),
            "kwargs": kwargs,
            "summary": {
                "embed_dim": kwargs["embed_dim"],
                "depths": kwargs["depths"],
                "num_heads": kwargs["num_heads"],
                "window_size": kwargs["window_size"],
                "img_size": kwargs["img_size"],
                "mlp_ratio": kwargs["mlp_ratio"],
                "qkv_bias": kwargs["qkv_bias"],
                "norm_eps": derived["norm_eps"],
            },
            "derived": derived,
            "pretrained_cfg": {
                "hf_hub_id": cfg.get("hf_hub_id"),
                "tag": cfg.get("tag"),
                "mean": list(cfg.get("mean")),
                "std": list(cfg.get("std")),
                "crop_pct": cfg.get("crop_pct"),
                "num_classes": cfg.get("num_classes"),
                "input_size": list(cfg.get("input_size")),
                "interpolation": cfg.get("interpolation"),
                "crop_mode": cfg.get("crop_mode"),
                "fixed_input_size": cfg.get("fixed_input_size"),
            },
        }
        print(f"{name:34s} {result[name]['trainable_params']:>12,d}  on {device}  default tag {cfg.get('tag')}")
        del model

    result["_meta"] = {"timm_version": timm.__version__, "torch_version": torch.__version__}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {out_path} ({len(NAMES)} models, timm {timm.__version__}, torch {torch.__version__})")


if __name__ == "__main__":
    main()
