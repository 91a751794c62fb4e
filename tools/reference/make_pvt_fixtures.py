"""Generate the PVT (v1 and v2) reference fixtures for the keras_vits parity tests.

References
----------
* PVT v2: timm's ``timm.models.pvt_v2.PyramidVisionTransformerV2``.
* PVT v1: HuggingFace transformers' ``PvtForImageClassification`` with a small
  ``PvtConfig`` (timm has no PVT v1).

Every reference model is tiny, randomly initialised and then perturbed with
seeded zero-mean normal noise (std 0.05 on every parameter; std 0.5 on the
PVT v1 ``position_embeddings`` so that a wrong position-embedding
interpolation clearly moves the logits).  The script writes into
``tests/fixtures/``:

* ``pvt_<case>.safetensors`` -- the reference model's ``state_dict()`` with
  the reference library's own key names (float32, contiguous).  Cases that
  re-evaluate another case's weights (``v2_nonsquare``, ``v2_features``,
  ``v2_linear_nonsquare``, ``v1_resize``, ``v1_features``) have no checkpoint
  of their own; ``pvt_cases.json`` points them at the source checkpoint.
* ``pvt_<case>_io.safetensors`` -- always ``images`` (batch 2, NHWC float32,
  seeded standard normal; the reference saw the same data as NCHW),
  ``logits`` (eval mode) and ``pre_logits`` (the vector fed to the
  classifier), plus ``stage_0`` .. ``stage_3`` (NHWC stage outputs, see below)
  and, for PVT v1, ``stage_3_cls`` and ``last_hidden_state``.  The stage maps
  are stored for every case (they help localise a mismatch); the
  ``*_features`` cases are the ones meant for the feature-extraction tests.

Stage maps
----------
* PVT v2: ``model.forward_intermediates(x, intermediates_only=True)`` (NCHW,
  transposed to NHWC).  Each map is the output of ``stages.<i>`` *after* that
  stage's own LayerNorm (``stages.<i>.norm``); ``forward_intermediates``'s
  ``norm`` argument is a no-op for this model.  The script checks they equal
  ``timm.create_model(..., features_only=True)`` (a ``FeatureListNet``).
* PVT v1 (HF): ``model(x, output_hidden_states=True).hidden_states``.  HF
  appends one entry *per layer* (not per stage) in token layout ``(B, N, C)``
  plus a final entry holding the encoder's last LayerNorm output.  ``stage_i``
  is the entry after the last layer of stage ``i`` (index
  ``sum(depths[:i+1]) - 1``), i.e. *no* norm (PVT v1 has no per-stage norm),
  reshaped row-major to ``(B, H_i, W_i, C_i)``.  The last stage's sequence
  starts with the class token: ``stage_3`` excludes it, ``stage_3_cls`` is
  that token (pre-norm, ``(B, C)``), ``last_hidden_state`` is the full normed
  sequence ``(B, 1 + H_3*W_3, C)``; ``pre_logits = last_hidden_state[:, 0]``.

PVT v1 at a different input size
--------------------------------
Stock HF PVT cannot run at any resolution other than the config's: its
``PvtPatchEmbeddings.interpolate_pos_encoding`` reshapes the *stored*
position embeddings to the *new* grid (``reshape(1, height, width, -1)``) and
then "interpolates" that grid to itself, so a different input size raises a
RuntimeError (checked below).  ``v1_resize`` therefore uses the official PVT v1
rule (whai362/PVT ``classification/pvt.py``, ``_get_pos_embed``): reshape the
stored embeddings to their own grid ``(H0, W0)``, ``F.interpolate(...,
size=(H, W), mode="bilinear")`` (``align_corners=False``, no antialias) per
stage; the last stage's class-token slot (index 0) is kept as is and only the
patch part is resized.  This is injected into the HF modules by replacing
``interpolate_pos_encoding`` on the instances, and cross-checked against an
independent functional re-implementation in this file.

Needs torch, timm, transformers, safetensors and numpy; keras_vits itself is
not imported.  The helpers come from ``tools/reference/reference_common.py``.  Run from
the repository root (``--output DIR`` writes elsewhere)::

    python tools/reference/make_pvt_fixtures.py
"""

from __future__ import annotations

import copy
import json
import math
import types

import safetensors.torch
import timm
import torch
import torch.nn.functional as F
from reference_common import (
    BATCH,
    FIXTURE_DIR,
    LARGE_NOISE_STD,
    NOISE_STD,
    call_repr,
    image_hw,
    make_images,
    max_abs,
    output_argument,
    perturb,
    print_sizes,
    save,
    state_dict_f32,
    to_nchw,
    to_nhwc,
    versions,
)
from timm.models import pvt_v2 as timm_pvt_v2
from transformers import PvtConfig, PvtForImageClassification
from transformers.models.pvt import modeling_pvt

PREFIX = "pvt_"
# PVT v1's position_embeddings get LARGE_NOISE_STD (PVT v2 has none).
POS_EMBED = "position_embeddings"

V2_BASE = dict(
    image_size=64,
    in_chans=3,
    num_classes=10,
    embed_dims=[16, 32, 48, 64],
    depths=[2, 1, 1, 1],
    num_heads=[1, 2, 3, 4],
    mlp_ratios=[2.0, 2.0, 2.0, 2.0],
    sr_ratios=[8, 4, 2, 1],
    qkv_bias=True,
    linear=False,
)

V1_BASE = dict(
    image_size=64,
    in_chans=3,
    num_classes=10,
    embed_dims=[16, 32, 48, 64],
    depths=[1, 1, 1, 1],
    num_heads=[1, 2, 3, 4],
    mlp_ratios=[2.0, 2.0, 2.0, 2.0],
    sr_ratios=[8, 4, 2, 1],
    qkv_bias=True,
)
V1_PATCH_SIZES = [4, 2, 2, 2]  # fixed in keras_vits; HF patch_sizes == strides


# --------------------------------------------------------------------------- PVT v2 (timm)


def v2_kwargs(cfg):
    """keras_vits config -> timm PyramidVisionTransformerV2 kwargs (no image size: v2 has no pos embed)."""
    return dict(
        in_chans=cfg["in_chans"],
        num_classes=cfg["num_classes"],
        depths=tuple(cfg["depths"]),
        embed_dims=tuple(cfg["embed_dims"]),
        num_heads=tuple(cfg["num_heads"]),
        mlp_ratios=tuple(cfg["mlp_ratios"]),
        sr_ratios=tuple(cfg["sr_ratios"]),
        qkv_bias=cfg["qkv_bias"],
        linear=cfg["linear"],
    )


def v2_build(cfg, seed=0):
    torch.manual_seed(seed)
    kwargs = v2_kwargs(cfg)
    model = timm_pvt_v2.PyramidVisionTransformerV2(**kwargs).eval()
    return model, call_repr("timm.models.pvt_v2.PyramidVisionTransformerV2", kwargs)


@torch.no_grad()
def v2_io(model, cfg, seed):
    nchw, nhwc = make_images(cfg, seed)
    logits = model(nchw)
    final, inter = model.forward_intermediates(nchw)
    inter_only = model.forward_intermediates(nchw, intermediates_only=True)
    assert len(inter) == 4 and all(torch.equal(a, b) for a, b in zip(inter, inter_only))
    assert torch.equal(final, inter[-1])
    pre_logits = model.forward_head(model.forward_features(nchw), pre_logits=True)
    torch.testing.assert_close(pre_logits, inter[-1].mean(dim=(2, 3)), rtol=0, atol=0)
    torch.testing.assert_close(model.head(pre_logits), logits, rtol=0, atol=0)

    # cross-check the stage maps against timm's features_only wrapper
    feat = timm.create_model("pvt_v2_b0", pretrained=False, features_only=True, **v2_kwargs(cfg)).eval()
    sd = {
        (k.replace("stages.", "stages_", 1) if k.startswith("stages.") else k): v
        for k, v in model.state_dict().items()
        if not k.startswith("head.")
    }
    feat.load_state_dict(sd, strict=True)
    for a, b in zip(feat(nchw), inter):
        assert torch.equal(a, b)

    out = {"images": nhwc, "logits": logits, "pre_logits": pre_logits}
    for i, t in enumerate(inter):
        out[f"stage_{i}"] = to_nhwc(t)
    assert logits.shape == (BATCH, cfg["num_classes"])
    return out


@torch.no_grad()
def v2_replay(cfg, ckpt_path, io):
    model, _ = v2_build(cfg, seed=12345)
    model.load_state_dict(safetensors.torch.load_file(str(ckpt_path)), strict=True)
    nchw = to_nchw(io["images"])
    torch.testing.assert_close(model(nchw), io["logits"], rtol=1e-6, atol=1e-6)
    for i, t in enumerate(model.forward_intermediates(nchw, intermediates_only=True)):
        torch.testing.assert_close(to_nhwc(t), io[f"stage_{i}"], rtol=1e-6, atol=1e-6)


def v2_grids(image_size):
    """Token grids of each stage (patch embed k7 s4 p3, then k3 s2 p1)."""
    h, w = image_hw(image_size)
    h, w = (h + 2 * 3 - 7) // 4 + 1, (w + 2 * 3 - 7) // 4 + 1
    grids = [(h, w)]
    for _ in range(3):
        h, w = (h + 2 - 3) // 2 + 1, (w + 2 - 3) // 2 + 1
        grids.append((h, w))
    return grids


# --------------------------------------------------------------------------- PVT v1 (HF transformers)


def v1_hf_config(cfg):
    size = cfg["image_size"]
    assert isinstance(size, int), "HF PvtConfig only works with a square int image_size"
    return dict(
        image_size=size,
        num_channels=cfg["in_chans"],
        num_encoder_blocks=4,
        depths=list(cfg["depths"]),
        sequence_reduction_ratios=list(cfg["sr_ratios"]),
        hidden_sizes=list(cfg["embed_dims"]),
        patch_sizes=list(V1_PATCH_SIZES),
        strides=list(V1_PATCH_SIZES),
        num_attention_heads=list(cfg["num_heads"]),
        # PvtConfig is a strict dataclass: mlp_ratios must be ints
        mlp_ratios=[int(r) if float(r).is_integer() else r for r in cfg["mlp_ratios"]],
        qkv_bias=cfg["qkv_bias"],
        num_labels=cfg["num_classes"],
    )


def v1_build(cfg, seed=0):
    torch.manual_seed(seed)
    kwargs = v1_hf_config(cfg)
    model = PvtForImageClassification(PvtConfig(**kwargs)).eval()
    desc = f"transformers.PvtForImageClassification({call_repr('transformers.PvtConfig', kwargs)})"
    return model, desc


def _official_interpolate_pos_encoding(self, embeddings, height, width):
    """Official PVT v1 position-embedding resize, for a HF ``PvtPatchEmbeddings`` instance.

    ``embeddings`` is the stored table without the class-token slot, laid out
    row-major on the grid the module was built for.
    """
    h0 = self.image_size[0] // self.patch_size[0]
    w0 = self.image_size[1] // self.patch_size[1]
    assert embeddings.shape[1] == h0 * w0
    if (height, width) == (h0, w0):
        return embeddings
    grid = embeddings.reshape(1, h0, w0, -1).permute(0, 3, 1, 2)
    grid = F.interpolate(grid, size=(height, width), mode="bilinear", align_corners=False, antialias=False)
    return grid.reshape(1, -1, height * width).permute(0, 2, 1)


def v1_use_official_resize(model):
    for emb in model.pvt.encoder.patch_embeddings:
        assert isinstance(emb, modeling_pvt.PvtPatchEmbeddings)
        emb.interpolate_pos_encoding = types.MethodType(_official_interpolate_pos_encoding, emb)
    return model


@torch.no_grad()
def v1_io(model, cfg, seed):
    nchw, nhwc = make_images(cfg, seed)
    out = model(nchw, output_hidden_states=True)
    hs = out.hidden_states
    depths = cfg["depths"]
    assert len(hs) == sum(depths) + 1
    h, w = image_hw(cfg["image_size"])
    io = {"images": nhwc, "logits": out.logits}
    for i in range(4):
        h, w = h // V1_PATCH_SIZES[i], w // V1_PATCH_SIZES[i]
        tokens = hs[sum(depths[: i + 1]) - 1]
        if i == 3:
            assert tokens.shape[1] == 1 + h * w
            io["stage_3_cls"] = tokens[:, 0]
            tokens = tokens[:, 1:]
        assert tokens.shape[1] == h * w
        io[f"stage_{i}"] = tokens.reshape(BATCH, h, w, -1)
    last = hs[-1]
    torch.testing.assert_close(last, model.pvt.encoder.layer_norm(hs[-2]), rtol=0, atol=0)
    io["last_hidden_state"] = last
    io["pre_logits"] = last[:, 0]
    torch.testing.assert_close(model.classifier(last[:, 0]), out.logits, rtol=0, atol=0)
    assert out.logits.shape == (BATCH, cfg["num_classes"])
    return io


def _ln(x, sd, prefix, eps):
    return F.layer_norm(x, x.shape[-1:], sd[prefix + ".weight"], sd[prefix + ".bias"], eps)


def _heads(t, num_heads):
    """(B, N, C) -> (B, num_heads, N, C // num_heads)."""
    batch, tokens, channels = t.shape
    return t.reshape(batch, tokens, num_heads, channels // num_heads).transpose(1, 2)


@torch.no_grad()
def v1_functional(sd, cfg, nchw, pe_eps=1e-6, sr_eps=1e-6, block_eps=1e-6, mode="bilinear", align_corners=False):
    """Independent PVT v1 forward on a HF state dict (official whai362/PVT semantics).

    Returns (logits, [stage maps NHWC]).  The eps / interpolation knobs exist to
    measure how sensitive the fixtures are to getting them wrong.
    """
    B = nchw.shape[0]
    x = nchw
    size0 = cfg["image_size"]
    maps = []
    for i in range(4):
        p = f"pvt.encoder.patch_embeddings.{i}"
        ps = V1_PATCH_SIZES[i]
        x = F.conv2d(x, sd[p + ".projection.weight"], sd[p + ".projection.bias"], stride=ps)
        H, W = x.shape[2:]
        x = _ln(x.flatten(2).transpose(1, 2), sd, p + ".layer_norm", pe_eps)
        pos = sd[p + ".position_embeddings"]
        g0 = (size0 // 2 ** (i + 1) if i else size0) // ps
        cls_pos = None
        if i == 3:
            cls_pos, pos = pos[:, :1], pos[:, 1:]
        if (g0, g0) != (H, W):
            grid = pos.reshape(1, g0, g0, -1).permute(0, 3, 1, 2)
            kw = {} if mode == "nearest" else {"align_corners": align_corners}
            pos = F.interpolate(grid, size=(H, W), mode=mode, **kw).flatten(2).transpose(1, 2)
        if i == 3:
            x = torch.cat([sd[p + ".cls_token"].expand(B, -1, -1), x], dim=1)
            pos = torch.cat([cls_pos, pos], dim=1)
        x = x + pos
        C = x.shape[-1]
        nh = cfg["num_heads"][i]
        sr = cfg["sr_ratios"][i]
        for j in range(cfg["depths"][i]):
            b = f"pvt.encoder.block.{i}.{j}"
            a = b + ".attention.self"
            y = _ln(x, sd, b + ".layer_norm_1", block_eps)
            q = F.linear(y, sd[a + ".query.weight"], sd.get(a + ".query.bias"))
            if sr > 1:
                r = y.transpose(1, 2).reshape(B, C, H, W)
                r = F.conv2d(r, sd[a + ".sequence_reduction.weight"], sd[a + ".sequence_reduction.bias"], stride=sr)
                r = _ln(r.flatten(2).transpose(1, 2), sd, a + ".layer_norm", sr_eps)
            else:
                r = y
            k = F.linear(r, sd[a + ".key.weight"], sd.get(a + ".key.bias"))
            v = F.linear(r, sd[a + ".value.weight"], sd.get(a + ".value.bias"))
            attn = (_heads(q, nh) @ _heads(k, nh).transpose(-1, -2)) / math.sqrt(C // nh)
            o = (attn.softmax(-1) @ _heads(v, nh)).transpose(1, 2).reshape(B, -1, C)
            x = x + F.linear(o, sd[b + ".attention.output.dense.weight"], sd[b + ".attention.output.dense.bias"])
            y = _ln(x, sd, b + ".layer_norm_2", block_eps)
            y = F.gelu(F.linear(y, sd[b + ".mlp.dense1.weight"], sd[b + ".mlp.dense1.bias"]))
            x = x + F.linear(y, sd[b + ".mlp.dense2.weight"], sd[b + ".mlp.dense2.bias"])
        if i < 3:
            maps.append(x.reshape(B, H, W, C))
            x = x.reshape(B, H, W, C).permute(0, 3, 1, 2)
        else:
            maps.append(x[:, 1:].reshape(B, H, W, C))
    x = _ln(x, sd, "pvt.encoder.layer_norm", block_eps)
    return F.linear(x[:, 0], sd["classifier.weight"], sd["classifier.bias"]), maps


@torch.no_grad()
def v1_replay(cfg, ckpt_path, io, official_resize):
    model, _ = v1_build(cfg, seed=12345)
    if official_resize:
        v1_use_official_resize(model)
    model.load_state_dict(safetensors.torch.load_file(str(ckpt_path)), strict=True)
    nchw = to_nchw(io["images"])
    torch.testing.assert_close(model(nchw).logits, io["logits"], rtol=1e-6, atol=1e-6)


# --------------------------------------------------------------------------- main


def main(argv=None):
    out = output_argument(__doc__, FIXTURE_DIR, argv)
    cases = {}
    notes = {}

    def entry(family, cfg, ckpt, ref, io_name, **extra):
        d = {"family": family, "config": copy.deepcopy(cfg), "checkpoint": ckpt, "reference_model": ref, "io": io_name}
        d.update(extra)
        return d

    # ---------------- PVT v2 ----------------
    v2_src = {}

    def v2_plain(name, cfg, seed):
        model, desc = v2_build(cfg, seed)
        perturb(model, seed + 1000, POS_EMBED)
        sd = state_dict_f32(model)
        ckpt = save(out / f"{PREFIX}{name}.safetensors", sd)
        io = v2_io(model, cfg, seed + 2000)
        save(out / f"{PREFIX}{name}_io.safetensors", io)
        v2_replay(cfg, ckpt, io)
        v2_src[name] = (model, ckpt)
        cases[name] = entry(
            "pvt_v2",
            cfg,
            ckpt.name,
            desc,
            f"{PREFIX}{name}_io.safetensors",
            stage_grids=[list(g) for g in v2_grids(cfg["image_size"])],
        )
        return io

    def v2_reuse(name, src, cfg, seed, what):
        model, ckpt = v2_src[src]
        _, desc = v2_build(cfg)
        io = v2_io(model, cfg, seed + 2000)
        save(out / f"{PREFIX}{name}_io.safetensors", io)
        v2_replay(cfg, ckpt, io)
        cases[name] = entry(
            "pvt_v2",
            cfg,
            ckpt.name,
            f"{desc}; weights = <{ckpt.name}>; {what}",
            f"{PREFIX}{name}_io.safetensors",
            stage_grids=[list(g) for g in v2_grids(cfg["image_size"])],
        )
        return io

    # a. plain v2 (spatial-reduction conv attention), 2 blocks in stage 0.
    v2_plain("v2_tiny", dict(V2_BASE), seed=31)
    # b. linear SRA (AdaptiveAvgPool2d(7) + 1x1 conv + LN + GELU, extra ReLU in the MLP).
    v2_plain("v2_linear", dict(V2_BASE, linear=True), seed=32)
    # c. case a's weights at a non-square input (grids 20x24, 10x12, 5x6, 3x3;
    #    the sr convs then drop remainders: 20x24/8 -> 2x3, 5x6/2 -> 2x3).
    v2_reuse(
        "v2_nonsquare",
        "v2_tiny",
        dict(V2_BASE, image_size=[80, 96]),
        seed=33,
        what="evaluated at a non-square 80x96 input (no position embedding, nothing to resample)",
    )
    # d. case a's stage maps.
    v2_reuse(
        "v2_features",
        "v2_tiny",
        dict(V2_BASE),
        seed=34,
        what="stage_0..3 = forward_intermediates(x, intermediates_only=True) (after each stage's LayerNorm), "
        "NCHW -> NHWC; equal to timm.create_model(..., features_only=True) outputs",
    )
    # extra: case b's weights at 80x96 (adaptive pooling 20x24 -> 7x7, 10x12 / 5x6 / 3x3 -> 7x7).
    v2_reuse(
        "v2_linear_nonsquare",
        "v2_linear",
        dict(V2_BASE, linear=True, image_size=[80, 96]),
        seed=35,
        what="evaluated at a non-square 80x96 input (AdaptiveAvgPool2d(7) on 20x24, 10x12, 5x6, 3x3 grids)",
    )

    # ---------------- PVT v1 ----------------
    v1_cfg = dict(V1_BASE)
    model, desc = v1_build(v1_cfg, seed=41)
    perturb(model, 41 + 1000, POS_EMBED)
    v1_sd = state_dict_f32(model)
    v1_ckpt = save(out / f"{PREFIX}v1_tiny.safetensors", v1_sd)

    # e. native size, stock HF.
    io = v1_io(model, v1_cfg, 41 + 2000)
    save(out / f"{PREFIX}v1_tiny_io.safetensors", io)
    v1_replay(v1_cfg, v1_ckpt, io, official_resize=False)
    ref_logits, ref_maps = v1_functional(v1_sd, v1_cfg, to_nchw(io["images"]))
    notes["v1_tiny_functional_vs_hf_max_abs"] = max_abs(ref_logits, io["logits"])
    assert notes["v1_tiny_functional_vs_hf_max_abs"] < 1e-5
    # the official-resize patch is an exact no-op at the native size
    patched = v1_use_official_resize(copy.deepcopy(model))
    assert torch.equal(patched(to_nchw(io["images"])).logits, io["logits"])
    cases["v1_tiny"] = entry("pvt_v1", v1_cfg, v1_ckpt.name, desc, f"{PREFIX}v1_tiny_io.safetensors")

    # f. case e's weights at 96x128 (official PVT v1 bilinear pos-embed resize).
    rs_cfg = dict(V1_BASE, image_size=[96, 128])
    nchw, _ = make_images(rs_cfg, 42 + 2000)
    try:
        model(nchw)
        stock_hf_resize = "runs (unexpected)"
    except RuntimeError as err:
        stock_hf_resize = f"RuntimeError: {err}"
    notes["v1_stock_hf_at_96x128"] = stock_hf_resize
    patched = v1_use_official_resize(copy.deepcopy(model))
    io_rs = v1_io(patched, dict(rs_cfg), 42 + 2000)
    save(out / f"{PREFIX}v1_resize_io.safetensors", io_rs)
    v1_replay(v1_cfg, v1_ckpt, io_rs, official_resize=True)
    x_rs = to_nchw(io_rs["images"])
    f_logits, f_maps = v1_functional(v1_sd, rs_cfg | {"image_size": 64}, x_rs)
    notes["v1_resize_functional_vs_patched_hf_max_abs"] = max_abs(f_logits, io_rs["logits"])
    assert notes["v1_resize_functional_vs_patched_hf_max_abs"] < 1e-5
    for i in range(4):
        assert max_abs(f_maps[i], io_rs[f"stage_{i}"]) < 1e-4
    sens = {}
    for label, kw in {
        "bilinear_align_corners_true": dict(mode="bilinear", align_corners=True),
        "bicubic_align_corners_false": dict(mode="bicubic", align_corners=False),
        "nearest": dict(mode="nearest"),
    }.items():
        alt, _ = v1_functional(v1_sd, rs_cfg | {"image_size": 64}, x_rs, **kw)
        sens[label] = max_abs(alt, io_rs["logits"])
    notes["v1_resize_logit_max_abs_diff_if_interpolation_were"] = sens
    cases["v1_resize"] = entry(
        "pvt_v1",
        rs_cfg,
        v1_ckpt.name,
        f"{desc} (built for 64x64) with every encoder.patch_embeddings[i].interpolate_pos_encoding replaced by the "
        "official PVT v1 rule: stored table reshaped to its own grid (16x16, 8x8, 4x4, 2x2 = image_size//2**(i+1)"
        "//patch), F.interpolate(mode='bilinear', align_corners=False, antialias=False) to the new grid (24x32, "
        "12x16, 6x8, 3x4), flattened row-major; stage 3's class-token slot (index 0) is not resized. "
        "weights = <pvt_v1_tiny.safetensors>. Stock HF raises at this size (see _meta.notes).",
        f"{PREFIX}v1_resize_io.safetensors",
        checkpoint_image_size=64,
        pos_embed_resize=dict(
            function="torch.nn.functional.interpolate",
            mode="bilinear",
            align_corners=False,
            antialias=False,
            stages=[0, 1, 2, 3],
            class_token_slot="stage 3 index 0, kept as is",
            source_grids=[[16, 16], [8, 8], [4, 4], [2, 2]],
            target_grids=[[24, 32], [12, 16], [6, 8], [3, 4]],
        ),
    )

    # g. case e's hidden states.
    io_f = v1_io(model, v1_cfg, 43 + 2000)
    save(out / f"{PREFIX}v1_features_io.safetensors", io_f)
    v1_replay(v1_cfg, v1_ckpt, io_f, official_resize=False)
    cases["v1_features"] = entry(
        "pvt_v1",
        v1_cfg,
        v1_ckpt.name,
        f"{desc}; weights = <pvt_v1_tiny.safetensors>; model(x, output_hidden_states=True).hidden_states: one "
        "(B, N, C) entry per layer + the final LayerNorm output; stage_i = entry sum(depths[:i+1])-1 (pre-norm, "
        "no per-stage norm in PVT v1) reshaped row-major to NHWC; stage_3 excludes the class token "
        "(stage_3_cls holds it); last_hidden_state = final LayerNorm output incl. class token.",
        f"{PREFIX}v1_features_io.safetensors",
    )

    # Sensitivity of the v1 fixtures to the official PVT v1 LayerNorm eps (1e-5 in the patch embedding and
    # spatial-reduction norms, vs HF's config.layer_norm_eps = 1e-6 everywhere).
    alt, _ = v1_functional(v1_sd, v1_cfg, to_nchw(io["images"]), pe_eps=1e-5, sr_eps=1e-5)
    notes["v1_tiny_logit_max_abs_diff_with_official_eps_1e-5_in_patch_and_sr_norms"] = max_abs(alt, io["logits"])

    cases["_meta"] = {
        **versions(with_transformers=True),
        "noise_std": NOISE_STD,
        "pos_embed_noise_std": LARGE_NOISE_STD,
        "pos_embed_noise_applies_to": "PVT v1 (HF) *.position_embeddings; PVT v2 has no position embedding",
        "image_layout": "NHWC (reference NCHW input transposed with permute(0, 2, 3, 1)), batch 2, seeded N(0, 1)",
        "io_keys": {
            "all": ["images", "logits", "pre_logits", "stage_0", "stage_1", "stage_2", "stage_3"],
            "pvt_v1_only": ["stage_3_cls", "last_hidden_state"],
        },
        "pvt_v2_stage_maps": "timm forward_intermediates(x, intermediates_only=True): output of stages.i incl. "
        "stages.i.norm (LayerNorm eps 1e-6), NCHW -> NHWC; pre_logits = mean over H, W of "
        "stage_3",
        "pvt_v1_stage_maps": "HF hidden_states[sum(depths[:i+1]) - 1], no norm, tokens reshaped row-major to NHWC; "
        "stage_3 without class token; pre_logits = last_hidden_state[:, 0] (normed class token)",
        "pvt_v1_fixed_patch_sizes": V1_PATCH_SIZES,
        "notes": notes,
    }
    with open(out / "pvt_cases.json", "w") as f:
        json.dump(cases, f, indent=2)
        f.write("\n")
    print_sizes(out.glob(f"{PREFIX}*"))
    print(json.dumps(notes, indent=2))


if __name__ == "__main__":
    main()
