"""Generate the timm reference fixtures for the keras_vits Swin Transformer parity tests.

Companion of ``tools/reference/make_fixtures.py`` (ViT / DeiT), with the same helpers
(``tools/reference/reference_common.py``) and conventions. It builds a few tiny, randomly
initialised ``timm.models.swin_transformer.SwinTransformer`` models, perturbs
every parameter with seeded noise (std 0.05; std 0.5 for the
``relative_position_bias_table`` tensors, so a wrong bias table, index or
table resize moves the logits visibly) and writes into ``tests/fixtures/``:

* ``swin_<case>.safetensors``    -- the timm model's ``state_dict()`` with timm's
  own key names (float32, contiguous). timm keeps ``relative_position_index``
  and ``attn_mask`` as *non-persistent* buffers, so the files hold parameters
  only: the Keras side must rebuild index and mask itself;
* ``swin_<case>_io.safetensors`` -- ``images`` (batch 2, NHWC float32, i.e.
  timm's NCHW input transposed) and ``logits`` (timm model in eval mode).
  The ``features`` case adds ``stage_0`` .. ``stage_3`` (NHWC stage outputs as
  ``features_only=True`` returns them, no norm applied) and ``features_norm``
  (``forward_features``: last stage after the final LayerNorm, NHWC). The
  ``window_resample`` case adds ``resized/<state_dict key>``: every
  relative-position table after timm's checkpoint filter resized it;
* ``swin_cases.json`` -- per case: keras_vits constructor kwargs, checkpoint
  file, a description of the timm construction, and the per-block window /
  shift sizes timm ended up using; plus ``_meta`` (versions, noise, the timm
  behaviours this script asserts).

Cases:

* ``tiny4``           64x64 input, patch 4, window 4, depths (2, 2, 2, 2). The
  stage-3 map (2x2) is smaller than the window: timm shrinks the window to 2x2
  (bias table 3*3 rows) and drops the shift; stage 2 (4x4 == window) also
  runs unshifted.
* ``pad``             same architecture at 56x72: patch grid 14x18 is not a
  multiple of the window, PatchMerging sees the odd 7x9 map, the stage-2 4x5
  map gets an anisotropic window (4, 4) / shift (0, 2), stage 3 a (2, 3)
  window (bias table 15 rows). Built with timm's defaults (strict image size,
  precomputed masks); replayed with ``strict_img_size=False`` (masks built on
  the fly), which must and does give identical logits.
* ``features``        the ``tiny4`` checkpoint, per-stage feature maps.
* ``window_resample`` a 96x96, window-6 model loaded from ``swin_tiny4``
  through ``timm.models.swin_transformer.checkpoint_filter_fn``, which resizes
  each bias table with ``timm.layers.resize_rel_pos_bias_table`` (BEiT-style
  geometric-progression grid + torch bilinear ``RegularGridInterpolator``
  unless ``TIMM_USE_SCIPY_INTERP`` is set; not ``F.interpolate``).

No ``ape`` case: timm's ``SwinTransformer`` has no absolute position
embedding option (asserted below and recorded in ``_meta``).

Needs PyTorch + timm (the ``reference`` extra, or e.g. /work/toolsenv);
keras_vits itself is not imported. Nothing is downloaded. Run from the
repository root (``--output DIR`` writes elsewhere)::

    python tools/reference/make_swin_fixtures.py
"""

from __future__ import annotations

import inspect
import json

import safetensors.torch
import timm
import torch
from reference_common import (
    BATCH,
    FIXTURE_DIR,
    LARGE_NOISE_STD,
    NOISE_STD,
    call_repr,
    keras_config,
    kwargs_repr,
    make_images,
    output_argument,
    perturb,
    print_sizes,
    save,
    state_dict_f32,
    to_nchw,
    versions,
)
from timm.layers import pos_embed_rel as timm_pos_embed_rel
from timm.models import swin_transformer as timm_swin

# The relative position bias tables get the larger perturbation, LARGE_NOISE_STD (timm inits
# them with trunc_normal std 0.02): large enough that a transposed index, a wrong mask or a
# wrong table resize changes the logits by >> 1e-4.
REL_POS_TABLE = "relative_position_bias_table"

SWIN_CLS = timm_swin.SwinTransformer

# keras_vits Swin vocabulary, shared by every case unless overridden.
BASE = dict(
    image_size=64,
    patch_size=4,
    in_chans=3,
    num_classes=10,
    embed_dim=16,
    depths=[2, 2, 2, 2],
    num_heads=[1, 2, 4, 8],
    window_size=4,
    mlp_ratio=4.0,
    qkv_bias=True,
    global_pool="avg",
    shifted=True,
    pos_embed="relative",
)


def timm_kwargs(cfg, **extra):
    """Translate a keras_vits Swin config into timm SwinTransformer kwargs."""
    # timm can only express the default ablation settings.
    assert cfg["shifted"] is True and cfg["pos_embed"] == "relative", cfg
    size = cfg["image_size"]
    kwargs = dict(
        img_size=tuple(size) if isinstance(size, list) else size,
        patch_size=cfg["patch_size"],
        in_chans=cfg["in_chans"],
        num_classes=cfg["num_classes"],
        global_pool=cfg["global_pool"],
        embed_dim=cfg["embed_dim"],
        depths=tuple(cfg["depths"]),
        num_heads=tuple(cfg["num_heads"]),
        window_size=cfg["window_size"],
        mlp_ratio=cfg["mlp_ratio"],
        qkv_bias=cfg["qkv_bias"],
        drop_path_rate=0.0,  # timm's default is 0.1; irrelevant in eval mode, set for clarity
    )
    kwargs.update(extra)
    return kwargs


def build(cfg, seed, **extra):
    torch.manual_seed(seed)
    kwargs = timm_kwargs(cfg, **extra)
    model = SWIN_CLS(**kwargs).eval()
    return model, call_repr(SWIN_CLS, kwargs)


def block_layout(model):
    """Per stage: input / output resolution and each block's (window, shift) as timm resolved them."""
    stages = []
    for i, stage in enumerate(model.layers):
        stages.append(
            {
                "stage": i,
                "downsample": type(stage.downsample).__name__,
                "input_resolution": list(stage.input_resolution),
                "resolution": list(stage.output_resolution),
                "window_size": [list(b.window_size) for b in stage.blocks],
                "shift_size": [list(b.shift_size) for b in stage.blocks],
                "rel_pos_table_rows": [int(b.attn.relative_position_bias_table.shape[0]) for b in stage.blocks],
            }
        )
    return stages


def check_state_dict_has_no_buffers(model, sd):
    """Report (and pin) that the state_dict holds parameters only."""
    param_names = {n for n, _ in model.named_parameters()}
    extra = sorted(set(sd) - param_names)
    buffers = sorted(n for n, _ in model.named_buffers())
    assert not extra, f"unexpected persistent buffers in state_dict: {extra}"
    assert all(n.endswith(("relative_position_index", "attn_mask")) for n in buffers), buffers
    return buffers


@torch.no_grad()
def logits_io(model, cfg, seed):
    nchw, nhwc = make_images(cfg, seed)
    out = {"images": nhwc, "logits": model(nchw).float().contiguous()}
    assert out["logits"].shape == (BATCH, cfg["num_classes"])
    return nchw, out


@torch.no_grad()
def replay(cfg, ckpt_path, io, filter_fn=None, **extra):
    """Reload a saved checkpoint into a fresh timm model and replay the logits."""
    model = SWIN_CLS(**timm_kwargs(cfg, **extra)).eval()
    sd = safetensors.torch.load_file(str(ckpt_path))
    if filter_fn is not None:
        sd = filter_fn(sd, model)
    model.load_state_dict(sd, strict=True)
    torch.testing.assert_close(model(to_nchw(io["images"])), io["logits"], rtol=1e-6, atol=1e-6)
    return model


@torch.no_grad()
def check_timm_conventions():
    """Assert the timm behaviours the Keras port relies on; returns them as a dict for ``_meta``."""
    # PatchMerging concatenation order: x0 = (even row, even col), x1 = (odd row, even col),
    # x2 = (even row, odd col), x3 = (odd row, odd col); zero pad bottom / right for odd sizes,
    # before the merge LayerNorm.
    torch.manual_seed(0)
    merge = timm_swin.PatchMerging(dim=3).eval()
    for p in merge.parameters():
        p.add_(torch.randn_like(p))
    x = torch.randn(2, 5, 7, 3)
    xp = torch.nn.functional.pad(x, (0, 0, 0, 1, 0, 1))
    cat = torch.cat([xp[:, 0::2, 0::2], xp[:, 1::2, 0::2], xp[:, 0::2, 1::2], xp[:, 1::2, 1::2]], dim=-1)
    torch.testing.assert_close(merge(x), merge.reduction(merge.norm(cat)))

    # relative_position_index[i, j] = (dy + wh - 1) * (2 * ww - 1) + (dx + ww - 1), (dy, dx) = pos_i - pos_j
    wh, ww = 3, 5
    idx = timm_swin.get_relative_position_index(wh, ww)
    pos = [(r, c) for r in range(wh) for c in range(ww)]
    ref = torch.tensor(
        [[(pi[0] - pj[0] + wh - 1) * (2 * ww - 1) + (pi[1] - pj[1] + ww - 1) for pj in pos] for pi in pos]
    )
    assert torch.equal(idx, ref)

    # shifted-window mask holds only 0 and -100
    blk = timm_swin.SwinTransformerBlock(dim=4, input_resolution=(8, 8), num_heads=1, window_size=4, shift_size=2)
    assert set(blk.attn_mask.unique().tolist()) == {-100.0, 0.0}

    sig = inspect.signature(SWIN_CLS.__init__).parameters
    ape_supported = "ape" in sig or hasattr(SWIN_CLS(**timm_kwargs(keras_config(BASE))), "absolute_pos_embed")
    return {
        "patch_merging_concat_order": "x0=x[0::2,0::2], x1=x[1::2,0::2], x2=x[0::2,1::2], x3=x[1::2,1::2] (row, col)",
        "patch_merging_odd_size": "zero pad one row at the bottom / one column at the right, before the 4C LayerNorm",
        "relative_position_index": "(dy + Wh - 1) * (2 * Ww - 1) + (dx + Ww - 1), (dy, dx) = pos_query - pos_key",
        "attn_mask_values": [0.0, -100.0],
        "ape_supported": bool(ape_supported),
        "fused_attn": bool(blk.attn.fused_attn),
        "rel_pos_resize_uses_scipy": bool(timm_pos_embed_rel._USE_SCIPY),
    }


def main(argv=None):
    out = output_argument(__doc__, FIXTURE_DIR, argv)
    conventions = check_timm_conventions()
    assert not conventions["ape_supported"], "timm grew an ape option: add an 'ape' case"
    # The scipy path (interp2d, cubic) would give different resized tables.
    assert not conventions["rel_pos_resize_uses_scipy"], "unset TIMM_USE_SCIPY_INTERP"

    cases = {}
    buffers_seen = {}

    def plain_case(name, cfg, seed, **extra):
        model, desc = build(cfg, seed, **extra)
        perturb(model, seed + 1000, REL_POS_TABLE)
        sd = state_dict_f32(model)
        buffers_seen[name] = check_state_dict_has_no_buffers(model, sd)
        ckpt = save(out / f"swin_{name}.safetensors", sd)
        _, io = logits_io(model, cfg, seed + 2000)
        save(out / f"swin_{name}_io.safetensors", io)
        replay(cfg, ckpt, io, **extra)
        cases[name] = {
            "family": "swin",
            "config": cfg,
            "checkpoint": ckpt.name,
            "io": f"swin_{name}_io.safetensors",
            "timm_model": desc,
            "timm_layout": block_layout(model),
        }
        return model, sd, ckpt

    # a. tiny4: 16x16 patch grid, stages 16, 8, 4, 2; window 4 (stage 3 shrinks to 2, unshifted).
    tiny_cfg = keras_config(BASE)
    tiny_model, tiny_sd, tiny_ckpt = plain_case("tiny4", tiny_cfg, seed=11)
    assert [list(b.window_size) for b in tiny_model.layers[3].blocks] == [[2, 2], [2, 2]]

    # b. pad: 56x72 -> grid 14x18 (not a multiple of 4), merges 14x18 -> 7x9 -> 4x5 -> 2x3.
    pad_cfg = keras_config(BASE, image_size=(56, 72))
    pad_model, _, pad_ckpt = plain_case("pad", pad_cfg, seed=12)
    assert [list(b.shift_size) for b in pad_model.layers[2].blocks] == [[0, 0], [0, 2]]
    assert [list(b.window_size) for b in pad_model.layers[3].blocks] == [[2, 3], [2, 3]]
    # The same weights with masks built on the fly (strict_img_size=False) give the same logits.
    pad_io = safetensors.torch.load_file(str(out / "swin_pad_io.safetensors"))
    replay(pad_cfg, pad_ckpt, pad_io, strict_img_size=False)
    cases["pad"]["replayed_with"] = "strict_img_size=False (dynamic_mask=True): identical logits (atol 1e-6)"

    # c. features: tiny4 weights, per-stage maps via features_only=True (FeatureListNet, NHWC, no norm).
    feat_seed = 13
    with torch.no_grad():
        feat_net = timm.create_model(
            "swin_tiny_patch4_window7_224", pretrained=False, features_only=True, **timm_kwargs(tiny_cfg)
        ).eval()
        # FeatureListNet flattens the top-level Sequential: layers.<i>.* -> layers_<i>.*; norm / head are dropped.
        feat_sd = {
            (k.replace("layers.", "layers_", 1) if k.startswith("layers.") else k): v
            for k, v in tiny_sd.items()
            if not k.startswith(("norm.", "head."))
        }
        feat_net.load_state_dict(feat_sd, strict=True)
        nchw, feat_io = logits_io(tiny_model, tiny_cfg, feat_seed + 2000)
        stages = feat_net(nchw)
        inter_final, inter = tiny_model.forward_intermediates(nchw)  # NCHW, norm=False
        assert len(stages) == 4
        for i, (s, t) in enumerate(zip(stages, inter)):
            torch.testing.assert_close(s, t.permute(0, 2, 3, 1), rtol=0, atol=0)
            feat_io[f"stage_{i}"] = s.float().contiguous()
        feat_io["features_norm"] = tiny_model.forward_features(nchw).float().contiguous()
        torch.testing.assert_close(feat_io["features_norm"], inter_final, rtol=0, atol=0)
        torch.testing.assert_close(feat_io["features_norm"], tiny_model.norm(feat_io["stage_3"]))
    save(out / "swin_features_io.safetensors", feat_io)
    replay(tiny_cfg, tiny_ckpt, feat_io)
    cases["features"] = {
        "family": "swin",
        "config": tiny_cfg,
        "checkpoint": tiny_ckpt.name,
        "io": "swin_features_io.safetensors",
        "timm_model": (
            "timm.create_model('swin_tiny_patch4_window7_224', pretrained=False, features_only=True, "
            + kwargs_repr(timm_kwargs(tiny_cfg))
            + "); FeatureListNet, out_indices=(0, 1, 2, 3), outputs NHWC stage outputs without norm "
            "(== SwinTransformer.forward_intermediates(x, norm=False) permuted from NCHW); "
            "features_norm = SwinTransformer.forward_features(x) (final LayerNorm on stage 3)"
        ),
        "feature_info": [dict(d) for d in feat_net.feature_info.info],
        "timm_layout": block_layout(tiny_model),
    }

    # d. window_resample: tiny4 weights into a 96x96 / window-6 model via timm's checkpoint filter.
    rs_cfg = keras_config(BASE, image_size=96, window_size=6)
    rs_model, rs_desc = build(rs_cfg, seed=14)
    src = safetensors.torch.load_file(str(tiny_ckpt))
    filtered = timm_swin.checkpoint_filter_fn(src, rs_model)
    rs_model.load_state_dict(filtered, strict=True)
    _, rs_io = logits_io(rs_model, rs_cfg, 14 + 2000)
    for k, v in filtered.items():
        if k.endswith(REL_POS_TABLE):
            assert v.shape != src[k].shape, k
            rs_io[f"resized/{k}"] = v.float().contiguous()
    save(out / "swin_window_resample_io.safetensors", rs_io)
    replay(rs_cfg, tiny_ckpt, rs_io, filter_fn=timm_swin.checkpoint_filter_fn)
    cases["window_resample"] = {
        "family": "swin",
        "config": rs_cfg,
        "checkpoint": tiny_ckpt.name,
        "io": "swin_window_resample_io.safetensors",
        "timm_model": (
            f"{rs_desc}; weights = timm.models.swin_transformer.checkpoint_filter_fn(<{tiny_ckpt.name}>, model)"
        ),
        "rel_pos_table_resize": (
            "timm.layers.resize_rel_pos_bias_table(table, new_window_size=block window, new_bias_shape=...) with "
            "old_window_size=None (source assumed square, side = sqrt(rows)); BEiT geometric-progression source "
            "grid, torch RegularGridInterpolator (bilinear) per head, no antialias / align_corners"
        ),
        "timm_layout": block_layout(rs_model),
    }

    cases["_meta"] = {
        **versions(),
        "noise_std": NOISE_STD,
        "relative_position_bias_table_noise_std": LARGE_NOISE_STD,
        "image_layout": "NHWC (timm NCHW input transposed with permute(0, 2, 3, 1))",
        "feature_layout": "NHWC (timm Swin stages are NHWC internally)",
        "state_dict_buffers": [],
        "non_persistent_buffers_not_saved": sorted({n.rsplit(".", 1)[-1] for b in buffers_seen.values() for n in b}),
        "timm_conventions": conventions,
        "ape_case": "none: timm.models.swin_transformer.SwinTransformer has no absolute position embedding option",
    }
    with open(out / "swin_cases.json", "w") as f:
        json.dump(cases, f, indent=2, sort_keys=False)
        f.write("\n")
    print_sizes(path for path in out.glob("swin_*") if not path.name.startswith("swin_hf_"))


if __name__ == "__main__":
    main()
