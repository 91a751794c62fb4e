"""Record reference parameter counts and configurations for PVT v1 and PVT v2.

PVT v2 (timm): for ``pvt_v2_b0`` .. ``pvt_v2_b5`` and ``pvt_v2_b2_li`` the model
is built with ``num_classes=1000`` (on the ``meta`` device when possible, CPU
otherwise; no weights are downloaded) and the script records

* ``trainable_params``;
* ``kwargs``: the ``PyramidVisionTransformerV2`` constructor arguments the
  registry entry resolves to (explicit arguments plus defaults, captured at
  construction time and cross-checked against the built modules);
* ``derived``: facts read off the built modules -- LayerNorm eps of every kind
  of norm (patch embedding / downsample, block, attention spatial reduction,
  stage), activation, MLP hidden widths, per-stage sr kernel / pooling;
* ``pretrained_cfg``: the default tag's hf_hub_id, mean, std, crop_pct, ...

PVT v1 (HuggingFace transformers ``PvtForImageClassification``): timm has no
PVT v1.  The configs of the Zetatech/pvt-{tiny,small,medium,large}-224
checkpoints are reconstructed from the paper / official code (hidden sizes
64-128-320-512, heads 1-2-5-8, mlp ratios 8-8-4-4, sr ratios 8-4-2-1, patch
sizes 4-2-2-2, image 224, qkv_bias, LayerNorm eps 1e-6) with the per-size depths,
and the trainable parameter counts are compared with the expected values.

Output: ``tests/fixtures/pvt_reference.json`` (``--output FILE`` writes elsewhere).  Run from
the repository root::

    python tools/reference/pvt_param_counts.py
"""

from __future__ import annotations

import json

import timm
import torch
import transformers
from reference_common import FIXTURE_DIR, build_on_meta_or_cpu, build_timm, jsonable, output_argument, trainable_params
from timm.models import pvt_v2 as timm_pvt_v2
from transformers import PvtConfig, PvtForImageClassification

OUT_PATH = FIXTURE_DIR / "pvt_reference.json"

V2_NAMES = ["pvt_v2_b0", "pvt_v2_b1", "pvt_v2_b2", "pvt_v2_b3", "pvt_v2_b4", "pvt_v2_b5", "pvt_v2_b2_li"]
SKIP_ARGS = {"self", "device", "dtype"}

V1_COMMON = dict(
    image_size=224,
    num_channels=3,
    num_encoder_blocks=4,
    hidden_sizes=[64, 128, 320, 512],
    num_attention_heads=[1, 2, 5, 8],
    mlp_ratios=[8, 8, 4, 4],
    sequence_reduction_ratios=[8, 4, 2, 1],
    patch_sizes=[4, 2, 2, 2],
    strides=[4, 2, 2, 2],
    hidden_act="gelu",
    layer_norm_eps=1e-6,
    qkv_bias=True,
    num_labels=1000,
)
V1_DEPTHS = {"tiny": [2, 2, 2, 2], "small": [3, 4, 6, 3], "medium": [3, 4, 18, 3], "large": [3, 8, 27, 3]}
V1_EXPECTED = {"tiny": 13_229_288, "small": 24_485_864, "medium": 44_208_104, "large": 61_369_320}


def build_v2(name):
    """`(model, device, constructor arguments)` of timm's `name`."""
    return build_timm(name, timm_pvt_v2.PyramidVisionTransformerV2, SKIP_ARGS)


def v2_derived(model):
    stages = list(model.stages)
    blk0 = stages[0].blocks[0]
    attn = [s.blocks[0].attn for s in stages]
    return {
        "model_class": f"{type(model).__module__}.{type(model).__name__}",
        "num_stages": len(stages),
        "depths": [len(s.blocks) for s in stages],
        "embed_dims": [s.norm.normalized_shape[0] for s in stages],
        "num_heads": [a.num_heads for a in attn],
        "head_dims": [a.head_dim for a in attn],
        "mlp_hidden_dims": [s.blocks[0].mlp.fc1.out_features for s in stages],
        "qkv_has_bias": attn[0].q.bias is not None,
        "linear_attn": attn[0].pool is not None,
        "sr_conv_kernel": [list(a.sr.kernel_size) if a.sr is not None else None for a in attn],
        "sr_pool": [repr(a.pool) if a.pool is not None else None for a in attn],
        "stem": {
            "kernel": list(model.patch_embed.proj.kernel_size),
            "stride": list(model.patch_embed.proj.stride),
            "padding": list(model.patch_embed.proj.padding),
        },
        "downsample": {
            "kernel": list(stages[1].downsample.proj.kernel_size),
            "stride": list(stages[1].downsample.proj.stride),
            "padding": list(stages[1].downsample.proj.padding),
        },
        "norm_eps": {
            "patch_embed.norm (stem + stages.i.downsample.norm, nn.LayerNorm)": model.patch_embed.norm.eps,
            "stages.i.blocks.j.norm1/norm2 (timm LayerNorm)": blk0.norm1.eps,
            "stages.i.blocks.j.attn.norm (spatial reduction, nn.LayerNorm)": next(
                (a.norm.eps for a in attn if a.norm is not None), None
            ),
            "stages.i.norm (timm LayerNorm)": stages[0].norm.eps,
        },
        "norm_classes": {
            "patch_embed.norm": f"{type(model.patch_embed.norm).__module__}.{type(model.patch_embed.norm).__name__}",
            "block.norm1": f"{type(blk0.norm1).__module__}.{type(blk0.norm1).__name__}",
            "stage.norm": f"{type(stages[0].norm).__module__}.{type(stages[0].norm).__name__}",
        },
        "mlp_act": repr(blk0.mlp.act),
        "mlp_extra_relu": type(blk0.mlp.relu).__name__ != "Identity",
        "attn_act": repr(attn[0].act) if attn[0].act is not None else None,
        "global_pool": model.global_pool,
        "num_features": model.num_features,
        "feature_info": model.feature_info,
    }


def v2_check(name, kw, model):
    stages = list(model.stages)
    assert list(kw["depths"]) == [len(s.blocks) for s in stages], name
    assert list(kw["embed_dims"]) == [s.norm.normalized_shape[0] for s in stages], name
    for i, s in enumerate(stages):
        a = s.blocks[0].attn
        assert a.num_heads == kw["num_heads"][i], name
        assert s.blocks[0].mlp.fc1.out_features == int(kw["embed_dims"][i] * kw["mlp_ratios"][i]), name
        assert (a.q.bias is not None) == kw["qkv_bias"], name
        assert (a.pool is not None) == kw["linear"], name
        if not kw["linear"]:
            sr = kw["sr_ratios"][i]
            assert (a.sr is None) if sr == 1 else tuple(a.sr.kernel_size) == (sr, sr), name


def v2_entry(name):
    model, device, ctor = build_v2(name)
    v2_check(name, ctor, model)
    kwargs = {k: jsonable(v) for k, v in ctor.items()}
    derived = v2_derived(model)
    derived["built_on"] = device
    cfg = model.pretrained_cfg
    return {
        "trainable_params": trainable_params(model),
        "kwargs": kwargs,
        "derived": derived,
        "pretrained_cfg": {
            "tag": cfg.get("tag"),
            "hf_hub_id": cfg.get("hf_hub_id"),
            "mean": list(cfg.get("mean")),
            "std": list(cfg.get("std")),
            "crop_pct": cfg.get("crop_pct"),
            "crop_mode": cfg.get("crop_mode"),
            "input_size": list(cfg.get("input_size")),
            "interpolation": cfg.get("interpolation"),
            "num_classes": cfg.get("num_classes"),
            "fixed_input_size": cfg.get("fixed_input_size"),
            "license": cfg.get("license"),
        },
        "keras_vits_config": {
            "embed_dims": list(ctor["embed_dims"]),
            "depths": list(ctor["depths"]),
            "num_heads": list(ctor["num_heads"]),
            "mlp_ratios": [float(r) for r in ctor["mlp_ratios"]],
            "sr_ratios": list(ctor["sr_ratios"]),
            "qkv_bias": ctor["qkv_bias"],
            "linear": ctor["linear"],
        },
    }


def v1_entry(size):
    kwargs = dict(V1_COMMON, depths=V1_DEPTHS[size])
    config = PvtConfig(**kwargs)
    model, device_used = build_on_meta_or_cpu(lambda: PvtForImageClassification(config), f"pvt_v1 {size}")
    n = trainable_params(model)
    pos = sum(p.numel() for k, p in model.named_parameters() if k.endswith("position_embeddings"))
    return {
        "trainable_params": n,
        "expected_trainable_params": V1_EXPECTED[size],
        "matches_expected": n == V1_EXPECTED[size],
        "position_embedding_params": int(pos),
        "hf_checkpoint": f"Zetatech/pvt-{size}-224",
        "hf_config": {k: jsonable(v) for k, v in kwargs.items()},
        "keras_vits_config": {
            "image_size": 224,
            "embed_dims": V1_COMMON["hidden_sizes"],
            "depths": V1_DEPTHS[size],
            "num_heads": V1_COMMON["num_attention_heads"],
            "mlp_ratios": [float(r) for r in V1_COMMON["mlp_ratios"]],
            "sr_ratios": V1_COMMON["sequence_reduction_ratios"],
            "qkv_bias": True,
        },
        "reference_model": "transformers.PvtForImageClassification(transformers.PvtConfig(**hf_config))",
        "built_on": device_used,
    }


def main(argv=None):
    out_path = output_argument(__doc__, OUT_PATH, argv)
    result = {"pvt_v2": {}, "pvt_v1": {}}
    for name in V2_NAMES:
        result["pvt_v2"][name] = e = v2_entry(name)
        print(f"{name:16s} {e['trainable_params']:>12,d}  on {e['derived']['built_on']}")
    for size in V1_DEPTHS:
        result["pvt_v1"][f"pvt_v1_{size}"] = e = v1_entry(size)
        print(
            f"pvt_v1_{size:9s} {e['trainable_params']:>12,d}  expected {e['expected_trainable_params']:>12,d}  "
            f"{'OK' if e['matches_expected'] else 'MISMATCH'}  on {e['built_on']}"
        )
    result["_meta"] = {
        "timm_version": timm.__version__,
        "transformers_version": transformers.__version__,
        "torch_version": torch.__version__,
        "num_classes": 1000,
        "count": "sum of numel over parameters with requires_grad (buffers excluded; PVT has none)",
    }
    with open(out_path, "w") as f:
        json.dump(result, f, indent=2)
        f.write("\n")
    print(f"wrote {out_path}")


if __name__ == "__main__":
    main()
