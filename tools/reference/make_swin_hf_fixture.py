"""Generate a Swin parity fixture for inputs that are not a multiple of the patch / window size,
in the ordering of the *official Swin detection backbone* (pad first, then cyclic-shift).

timm's ``SwinTransformerBlock._attn`` rolls the (unpadded) feature map first and pads it to whole
windows afterwards. The official Swin detection / segmentation backbone
(``Swin-Transformer-Object-Detection``, ``mmdet/models/backbones/swin_transformer.py``) does it
the other way round:

* ``PatchEmbed``: zero-pad the image at the right (width first) and then at the bottom to a
  multiple of the patch size;
* ``SwinTransformerBlock``: zero-pad the normalised map at bottom / right to whole windows
  (``Hp x Wp``), *then* ``torch.roll`` the padded map by ``-shift``; window attention; reverse
  roll on the padded map; crop back to ``H x W``;
* the shifted-window mask is built over the padded ``Hp x Wp`` map (regions
  ``[0, Hp - ws)``, ``[Hp - ws, Hp - shift)``, ``[Hp - shift, Hp)``, same for ``W``);
* ``PatchMerging``: zero-pad one row / column at the bottom / right if ``H`` / ``W`` is odd, then
  concatenate ``[x[0::2, 0::2], x[1::2, 0::2], x[0::2, 1::2], x[1::2, 1::2]]`` (row, col).

HuggingFace transformers' ``SwinForImageClassification`` follows the detection ordering, so it
is used here as the reference. This script

1. builds a tiny ``timm.models.swin_transformer.SwinTransformer`` (img_size 56x76, patch 4,
   embed_dim 16, depths (2, 2, 2), heads (1, 2, 4), window 3, 10 classes), adds seeded noise
   to every parameter (std 0.05, std 0.5 for the relative position bias tables) and saves its
   ``state_dict`` with timm key names as ``tests/fixtures/swin_hf_pad.safetensors``;
2. converts that state dict to an HF ``SwinForImageClassification`` (qkv split into
   q/k/v projections; timm's ``layers.{i+1}.downsample`` -> HF's ``layers.{i}.downsample``,
   because HF merges patches at the *end* of a stage and timm at the *start* of the next one;
   the 2x2 concatenation order is identical, so no channel permutation is needed) and checks
   HF == timm at 96x144, a size where the two orderings cannot differ (every stage map,
   24x36 -> 12x18 -> 6x9, is a multiple of the window 3, and min(H, W) > 3 everywhere);
3. runs HF (eval) on two seeded N(0, 1) images of 53x74: HF pads the image to 56x76, the stage
   maps are 14x19 -> 7x10 -> 4x5 (no side of any map is a multiple of 3, so every block pads
   along both axes; patch merging sees odd widths (19) and odd heights (7)), and
   min(H, W) = 4 > window 3 everywhere so HF's window-shrink rule never fires. (53x70 would give
   14x18 -> 7x9 -> 4x5, where the widths 18 and 9 are multiples of 3 and would not pad);
4. runs timm on the same images zero-padded at bottom / right to 56x76 (timm's strict
   ``PatchEmbed`` only accepts its ``img_size``; the zero padding is exactly what HF's
   ``SwinPatchEmbeddings.maybe_pad`` does) and stores those logits as ``timm_logits``: they
   differ from HF's because timm rolls before padding;
5. cross-checks both against a small functional re-implementation in this file
   (``reference_forward``) that can run either ordering: ``pad_then_roll`` must reproduce HF and
   ``roll_then_pad`` must reproduce timm.

Outputs (``tests/fixtures/``):

* ``swin_hf_pad.safetensors``    -- timm state dict (float32, contiguous, parameters only);
* ``swin_hf_pad_io.safetensors`` -- ``images`` (2, 53, 74, 3) NHWC float32, ``logits`` (HF,
  detection ordering) and ``timm_logits`` (timm, roll-then-pad, on the zero-padded image);
* ``swin_hf_cases.json``         -- the case description plus ``_meta`` (versions, checks).

Needs PyTorch, timm and transformers (the ``reference`` extra); nothing is downloaded. The
helpers come from ``tools/reference/reference_common.py``. Run from the repository root (``--output DIR``
writes elsewhere)::

    python tools/reference/make_swin_hf_fixture.py
"""

from __future__ import annotations

import json
import math

import safetensors.torch
import torch
import torch.nn.functional as F
import transformers
from reference_common import (
    FIXTURE_DIR,
    LARGE_NOISE_STD,
    NOISE_STD,
    call_repr,
    make_images,
    max_abs,
    output_argument,
    perturb,
    print_sizes,
    save,
    state_dict_f32,
    to_nhwc,
    versions,
)
from timm.models import swin_transformer as timm_swin
from transformers import SwinConfig, SwinForImageClassification

CASE = "swin_hf_pad"

MODEL_SEED = 31
NOISE_SEED = 1031
IMAGE_SEED = 2031

TIMM_IMG_SIZE = (56, 76)  # strict timm model; also the zero-padded size of the 53x74 input
INPUT_SIZE = (53, 74)  # fixture input: not a multiple of the patch size
CHECK_SIZE = (96, 144)  # conversion check: every stage map a multiple of the window

ARCH = dict(
    patch_size=4,
    in_chans=3,
    num_classes=10,
    embed_dim=16,
    depths=[2, 2, 2],
    num_heads=[1, 2, 4],
    window_size=3,
    mlp_ratio=4.0,
    qkv_bias=True,
)

LOGIT_ATOL = 1e-5


# --------------------------------------------------------------------------------------------
# timm model
# --------------------------------------------------------------------------------------------


def timm_kwargs(img_size):
    return dict(
        img_size=tuple(img_size),
        patch_size=ARCH["patch_size"],
        in_chans=ARCH["in_chans"],
        num_classes=ARCH["num_classes"],
        embed_dim=ARCH["embed_dim"],
        depths=tuple(ARCH["depths"]),
        num_heads=tuple(ARCH["num_heads"]),
        window_size=ARCH["window_size"],
        mlp_ratio=ARCH["mlp_ratio"],
        qkv_bias=ARCH["qkv_bias"],
        drop_path_rate=0.0,
    )


def timm_model(img_size):
    return timm_swin.SwinTransformer(**timm_kwargs(img_size)).eval()


def timm_layout(model):
    return [
        {
            "stage": i,
            "resolution": list(stage.output_resolution),
            "window_size": [list(b.window_size) for b in stage.blocks],
            "shift_size": [list(b.shift_size) for b in stage.blocks],
        }
        for i, stage in enumerate(model.layers)
    ]


# --------------------------------------------------------------------------------------------
# HF model + conversion
# --------------------------------------------------------------------------------------------


def hf_config(image_size):
    return SwinConfig(
        image_size=list(image_size),
        patch_size=ARCH["patch_size"],
        num_channels=ARCH["in_chans"],
        embed_dim=ARCH["embed_dim"],
        depths=list(ARCH["depths"]),
        num_heads=list(ARCH["num_heads"]),
        window_size=ARCH["window_size"],
        mlp_ratio=ARCH["mlp_ratio"],
        qkv_bias=ARCH["qkv_bias"],
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        num_labels=ARCH["num_classes"],
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        drop_path_rate=0.0,
        use_absolute_embeddings=False,
        attn_implementation="eager",
    )


def timm_to_hf(sd):
    """Map a timm SwinTransformer state dict onto transformers' SwinForImageClassification keys."""
    out = {}
    used = set()

    def take(src, dst):
        out[dst] = sd[src].clone()
        used.add(src)

    take("patch_embed.proj.weight", "swin.embeddings.patch_embeddings.projection.weight")
    take("patch_embed.proj.bias", "swin.embeddings.patch_embeddings.projection.bias")
    take("patch_embed.norm.weight", "swin.embeddings.norm.weight")
    take("patch_embed.norm.bias", "swin.embeddings.norm.bias")
    for i, depth in enumerate(ARCH["depths"]):
        for j in range(depth):
            t = f"layers.{i}.blocks.{j}."
            h = f"swin.encoder.layers.{i}.blocks.{j}."
            take(t + "norm1.weight", h + "layernorm_before.weight")
            take(t + "norm1.bias", h + "layernorm_before.bias")
            # timm fuses q, k, v along the output axis in that order.
            for name in ("weight", "bias"):
                q, k, v = sd[t + f"attn.qkv.{name}"].chunk(3, dim=0)
                used.add(t + f"attn.qkv.{name}")
                out[h + f"attention.q_proj.{name}"] = q.clone()
                out[h + f"attention.k_proj.{name}"] = k.clone()
                out[h + f"attention.v_proj.{name}"] = v.clone()
            take(t + "attn.proj.weight", h + "attention.o_proj.weight")
            take(t + "attn.proj.bias", h + "attention.o_proj.bias")
            take(
                t + "attn.relative_position_bias_table",
                h + "attention.relative_position_bias.relative_position_bias_table",
            )
            take(t + "norm2.weight", h + "layernorm_after.weight")
            take(t + "norm2.bias", h + "layernorm_after.bias")
            for fc in ("fc1", "fc2"):
                take(t + f"mlp.{fc}.weight", h + f"mlp.{fc}.weight")
                take(t + f"mlp.{fc}.bias", h + f"mlp.{fc}.bias")
        if i > 0:
            # timm: merging at the start of stage i; HF: at the end of stage i - 1.
            t = f"layers.{i}.downsample."
            h = f"swin.encoder.layers.{i - 1}.downsample."
            take(t + "norm.weight", h + "norm.weight")
            take(t + "norm.bias", h + "norm.bias")
            take(t + "reduction.weight", h + "reduction.weight")
    take("norm.weight", "swin.layernorm.weight")
    take("norm.bias", "swin.layernorm.bias")
    take("head.fc.weight", "classifier.weight")
    take("head.fc.bias", "classifier.bias")
    unused = sorted(set(sd) - used)
    assert not unused, f"timm keys not converted: {unused}"
    return out


def hf_model(image_size, hf_sd):
    model = SwinForImageClassification(hf_config(image_size)).eval()
    result = model.load_state_dict(hf_sd, strict=True)
    assert not result.missing_keys and not result.unexpected_keys, result
    return model


@torch.no_grad()
def hf_logits(model, nchw):
    return model(pixel_values=nchw).logits.float()


def hf_layout(model, image_hw):
    """Per stage: map size, padded size, window and shift HF uses for an (H, W) image."""
    p = ARCH["patch_size"]
    h, w = math.ceil(image_hw[0] / p), math.ceil(image_hw[1] / p)
    stages = []
    for stage in model.swin.encoder.layers:
        blocks = []
        for blk in stage.blocks:
            ws = blk.window_size
            blocks.append(
                {
                    "window_size": int(ws),
                    "shift_size": int(blk.shift_size),
                    "padded": [math.ceil(h / ws) * ws, math.ceil(w / ws) * ws],
                }
            )
        stages.append({"resolution": [h, w], "blocks": blocks})
        if stage.downsample is not None:
            h, w = (h + 1) // 2, (w + 1) // 2
    return stages


# --------------------------------------------------------------------------------------------
# functional reference, either ordering, on timm weights
# --------------------------------------------------------------------------------------------


def shift_mask(hp, wp, ws, shift):
    """(nW, ws*ws, ws*ws) mask over a padded hp x wp map: 0 inside a region, -100 across."""

    def region(n):
        idx = torch.arange(n)
        return (idx >= n - ws).long() + (idx >= n - shift).long()

    label = region(hp)[:, None] * 3 + region(wp)[None, :]
    win = label.view(hp // ws, ws, wp // ws, ws).permute(0, 2, 1, 3).reshape(-1, ws * ws)
    diff = win[:, None, :] - win[:, :, None]
    return torch.where(diff != 0, -100.0, 0.0)


def rel_pos_bias(table, ws, heads):
    pos = torch.stack(torch.meshgrid(torch.arange(ws), torch.arange(ws), indexing="ij")).flatten(1)
    d = pos[:, :, None] - pos[:, None, :]
    idx = (d[0] + ws - 1) * (2 * ws - 1) + (d[1] + ws - 1)
    return table[idx.reshape(-1)].view(ws * ws, ws * ws, heads).permute(2, 0, 1)


def window_attention(x, sd, prefix, heads, ws, mask):
    """x: (B, Hp, Wp, C) already shifted / padded; returns the same layout."""
    b, hp, wp, c = x.shape
    win = x.view(b, hp // ws, ws, wp // ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(-1, ws * ws, c)
    qkv = F.linear(win, sd[prefix + "qkv.weight"], sd[prefix + "qkv.bias"])
    q, k, v = qkv.view(win.shape[0], ws * ws, 3, heads, c // heads).permute(2, 0, 3, 1, 4)
    attn = (q * (c // heads) ** -0.5) @ k.transpose(-2, -1)
    attn = attn + rel_pos_bias(sd[prefix + "relative_position_bias_table"], ws, heads)[None]
    if mask is not None:
        nw = mask.shape[0]
        attn = (attn.view(-1, nw, heads, ws * ws, ws * ws) + mask[None, :, None]).view_as(attn)
    out = (attn.softmax(-1) @ v).transpose(1, 2).reshape(win.shape[0], ws * ws, c)
    out = F.linear(out, sd[prefix + "proj.weight"], sd[prefix + "proj.bias"])
    return out.view(b, hp // ws, wp // ws, ws, ws, c).permute(0, 1, 3, 2, 4, 5).reshape(b, hp, wp, c)


def block(x, sd, prefix, heads, ws, shift, order):
    b, h, w, c = x.shape
    y = F.layer_norm(x, (c,), sd[prefix + "norm1.weight"], sd[prefix + "norm1.bias"], 1e-5)
    pad_b, pad_r = (-h) % ws, (-w) % ws
    hp, wp = h + pad_b, w + pad_r
    mask = shift_mask(hp, wp, ws, shift) if shift else None
    if order == "pad_then_roll":  # official detection code / HF
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        y = torch.roll(y, (-shift, -shift), (1, 2)) if shift else y
        y = window_attention(y, sd, prefix + "attn.", heads, ws, mask)
        y = torch.roll(y, (shift, shift), (1, 2)) if shift else y
        y = y[:, :h, :w]
    elif order == "roll_then_pad":  # timm
        y = torch.roll(y, (-shift, -shift), (1, 2)) if shift else y
        y = F.pad(y, (0, 0, 0, pad_r, 0, pad_b))
        y = window_attention(y, sd, prefix + "attn.", heads, ws, mask)[:, :h, :w]
        y = torch.roll(y, (shift, shift), (1, 2)) if shift else y
    else:
        raise ValueError(order)
    x = x + y
    z = F.layer_norm(x, (c,), sd[prefix + "norm2.weight"], sd[prefix + "norm2.bias"], 1e-5)
    z = F.linear(
        F.gelu(F.linear(z, sd[prefix + "mlp.fc1.weight"], sd[prefix + "mlp.fc1.bias"])),
        sd[prefix + "mlp.fc2.weight"],
        sd[prefix + "mlp.fc2.bias"],
    )
    return x + z


def merge(x, sd, prefix):
    b, h, w, c = x.shape
    x = F.pad(x, (0, 0, 0, w % 2, 0, h % 2))
    x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], dim=-1)
    x = F.layer_norm(x, (4 * c,), sd[prefix + "norm.weight"], sd[prefix + "norm.bias"], 1e-5)
    return F.linear(x, sd[prefix + "reduction.weight"])


@torch.no_grad()
def reference_forward(sd, nchw, order):
    """Swin classifier on timm weights with the given pad / roll ordering (no window shrinking)."""
    p, ws = ARCH["patch_size"], ARCH["window_size"]
    h, w = nchw.shape[-2:]
    x = F.pad(nchw, (0, (-w) % p, 0, (-h) % p))
    x = F.conv2d(x, sd["patch_embed.proj.weight"], sd["patch_embed.proj.bias"], stride=p).permute(0, 2, 3, 1)
    x = F.layer_norm(x, (x.shape[-1],), sd["patch_embed.norm.weight"], sd["patch_embed.norm.bias"], 1e-5)
    for i, (depth, heads) in enumerate(zip(ARCH["depths"], ARCH["num_heads"])):
        if i > 0:
            x = merge(x, sd, f"layers.{i}.downsample.")
        assert min(x.shape[1:3]) > ws, "reference assumes no window shrinking"
        for j in range(depth):
            x = block(x, sd, f"layers.{i}.blocks.{j}.", heads, ws, 0 if j % 2 == 0 else ws // 2, order)
    x = F.layer_norm(x, (x.shape[-1],), sd["norm.weight"], sd["norm.bias"], 1e-5).mean(dim=(1, 2))
    return F.linear(x, sd["head.fc.weight"], sd["head.fc.bias"])


# --------------------------------------------------------------------------------------------


def seeded_images(hw, seed):
    """NCHW seeded N(0, 1) images of size `hw` (`reference_common.make_images`)."""
    return make_images({"image_size": hw, "in_chans": ARCH["in_chans"]}, seed)[0]


def assert_close(name, a, b, atol=LOGIT_ATOL):
    err = max_abs(a, b)
    assert err <= atol, f"{name}: max |diff| {err:.3e} > {atol:.0e}"
    print(f"  ok  {name}: max |diff| = {err:.3e}")
    return err


def stage_maps(hw):
    p = ARCH["patch_size"]
    h, w = math.ceil(hw[0] / p), math.ceil(hw[1] / p)
    maps = [(h, w)]
    for _ in ARCH["depths"][1:]:
        h, w = (h + 1) // 2, (w + 1) // 2
        maps.append((h, w))
    return maps


def main(argv=None):
    out = output_argument(__doc__, FIXTURE_DIR, argv)
    ws = ARCH["window_size"]
    check_maps, input_maps = stage_maps(CHECK_SIZE), stage_maps(INPUT_SIZE)
    # Size preconditions (see module docstring).
    assert all(h % ws == 0 and w % ws == 0 and min(h, w) > ws for h, w in check_maps), check_maps
    assert all(min(h, w) > ws for h, w in input_maps), input_maps
    assert all(h % ws and w % ws for h, w in input_maps), input_maps
    assert any(h % 2 for h, _ in input_maps[:-1]) and any(w % 2 for _, w in input_maps[:-1]), input_maps
    assert INPUT_SIZE[0] % ARCH["patch_size"] and INPUT_SIZE[1] % ARCH["patch_size"]
    assert tuple(ARCH["patch_size"] * m for m in input_maps[0]) == TIMM_IMG_SIZE

    # 1. timm model, noise, checkpoint.
    torch.manual_seed(MODEL_SEED)
    tmodel = timm_model(TIMM_IMG_SIZE)
    perturb(tmodel, NOISE_SEED, "relative_position_bias_table")
    sd = state_dict_f32(tmodel)
    assert set(sd) == {n for n, _ in tmodel.named_parameters()}, "unexpected buffers in the state dict"
    layout = timm_layout(tmodel)
    assert all(w == [ws, ws] for s in layout for w in s["window_size"]), layout
    ckpt_path = save(out / f"{CASE}.safetensors", sd)
    sd = safetensors.torch.load_file(str(ckpt_path))
    tmodel.load_state_dict(sd, strict=True)

    # 2. HF conversion, checked where both orderings agree.
    hf_sd = timm_to_hf(sd)
    hmodel = hf_model(INPUT_SIZE, hf_sd)
    print(f"conversion check at {CHECK_SIZE}: stage maps {check_maps}")
    x_check = seeded_images(CHECK_SIZE, IMAGE_SEED + 1)
    tcheck = timm_model(CHECK_SIZE)
    tcheck.load_state_dict(sd, strict=True)
    with torch.no_grad():
        timm_check = tcheck(x_check)
    hf_check = hf_logits(hmodel, x_check)
    checks = {
        "hf_vs_timm_at_96x144": assert_close("HF vs timm (96x144, no block padding)", hf_check, timm_check),
        "reference_pad_then_roll_vs_timm_at_96x144": assert_close(
            "reference(pad_then_roll) vs timm (96x144)", reference_forward(sd, x_check, "pad_then_roll"), timm_check
        ),
    }
    # The configured image_size only sizes HF's (unused) absolute position table: no effect.
    checks["hf_image_size_56x76_vs_53x74_config"] = assert_close(
        "HF config image_size 56x76 vs 53x74", hf_logits(hf_model(TIMM_IMG_SIZE, hf_sd), x_check), hf_check, atol=0.0
    )
    # HF's SDPA attention backend against the eager one used for the fixture.
    hsdpa = SwinForImageClassification(hf_config(INPUT_SIZE)).eval()
    hsdpa.set_attn_implementation("sdpa")
    hsdpa.load_state_dict(hf_sd, strict=True)

    # 3. HF on 53x74 (image padding, block padding on both axes, odd merges on both axes).
    print(f"fixture input {INPUT_SIZE}: stage maps {input_maps}")
    x = seeded_images(INPUT_SIZE, IMAGE_SEED)
    logits = hf_logits(hmodel, x)
    hlayout = hf_layout(hmodel, INPUT_SIZE)
    assert all(b["window_size"] == ws for s in hlayout for b in s["blocks"]), hlayout
    assert [b["shift_size"] for s in hlayout for b in s["blocks"]] == [0, ws // 2] * len(hlayout), hlayout
    checks["hf_sdpa_vs_eager_53x74"] = assert_close("HF sdpa vs eager (53x74)", hf_logits(hsdpa, x), logits)
    x_padded = F.pad(x, (0, TIMM_IMG_SIZE[1] - INPUT_SIZE[1], 0, TIMM_IMG_SIZE[0] - INPUT_SIZE[0]))
    checks["hf_53x74_vs_hf_zero_padded_56x76"] = assert_close(
        "HF(53x74) vs HF(zero-padded 56x76)", hf_logits(hmodel, x_padded), logits
    )
    checks["reference_pad_then_roll_vs_hf_53x74"] = assert_close(
        "reference(pad_then_roll) vs HF (53x74)", reference_forward(sd, x, "pad_then_roll"), logits
    )

    # 4. timm on the zero-padded image (strict 56x76 PatchEmbed).
    try:
        with torch.no_grad():
            tmodel(x)
        raise AssertionError("timm unexpectedly accepted a 53x74 input")
    except AssertionError as exc:
        if "unexpectedly" in str(exc):
            raise
        timm_rejects = str(exc)
    with torch.no_grad():
        timm_logits = tmodel(x_padded).float()
    checks["reference_roll_then_pad_vs_timm_56x76"] = assert_close(
        "reference(roll_then_pad) vs timm (zero-padded 56x76)",
        reference_forward(sd, x_padded, "roll_then_pad"),
        timm_logits,
    )
    hf_vs_timm = max_abs(logits, timm_logits)
    print(f"max |HF - timm| at {INPUT_SIZE} (timm on zero-padded {TIMM_IMG_SIZE}): {hf_vs_timm:.6e}")
    assert hf_vs_timm > 1e-3, "orderings unexpectedly agree: the fixture would not discriminate"

    io = {"images": to_nhwc(x), "logits": logits.contiguous(), "timm_logits": timm_logits.contiguous()}
    io_path = save(out / f"{CASE}_io.safetensors", io)
    reloaded = safetensors.torch.load_file(str(io_path))
    assert all(torch.equal(reloaded[k], v) for k, v in io.items())

    # 5. case description.
    cases = {
        CASE: {
            "config": {
                "image_size": list(INPUT_SIZE),
                "patch_size": ARCH["patch_size"],
                "in_chans": ARCH["in_chans"],
                "num_classes": ARCH["num_classes"],
                "embed_dim": ARCH["embed_dim"],
                "depths": list(ARCH["depths"]),
                "num_heads": list(ARCH["num_heads"]),
                "window_size": ARCH["window_size"],
                "mlp_ratio": ARCH["mlp_ratio"],
                "qkv_bias": ARCH["qkv_bias"],
            },
            "checkpoint": ckpt_path.name,
            "io": io_path.name,
            "reference_model": (
                f"transformers {transformers.__version__} SwinForImageClassification(SwinConfig(image_size=[53, 74], "
                "patch_size=4, num_channels=3, embed_dim=16, depths=[2, 2, 2], num_heads=[1, 2, 4], window_size=3, "
                "mlp_ratio=4.0, qkv_bias=True, layer_norm_eps=1e-5, hidden_act='gelu', num_labels=10, no dropout / "
                "drop path, attn_implementation='eager')), eval mode, weights converted from the timm checkpoint "
                "(qkv split into q/k/v_proj; timm layers.{i+1}.downsample -> HF layers.{i}.downsample). Ordering of "
                "the official Swin detection backbone: image zero-padded bottom/right to a multiple of the patch "
                "size; per block pad to whole windows, then cyclic shift; shift mask over the padded map; odd maps "
                "zero-padded bottom/right before patch merging"
            ),
            "timm_model": call_repr(timm_swin.SwinTransformer, timm_kwargs(TIMM_IMG_SIZE)),
            "timm_logits": (
                "timm_model on the images zero-padded at bottom/right to 56x76 (timm's strict PatchEmbed rejects "
                "53x74); timm rolls the unpadded map and pads afterwards, so these differ from 'logits'"
            ),
            "max_abs_logits_minus_timm_logits": hf_vs_timm,
            "stage_maps": [list(m) for m in input_maps],
            "hf_layout": hlayout,
            "timm_layout": layout,
            "seeds": {"model": MODEL_SEED, "noise": NOISE_SEED, "images": IMAGE_SEED},
        },
        "_meta": {
            **versions(with_transformers=True),
            "noise_std": NOISE_STD,
            "relative_position_bias_table_noise_std": LARGE_NOISE_STD,
            "image_layout": "NHWC (NCHW input transposed with permute(0, 2, 3, 1))",
            "checks_max_abs_diff": checks,
            "timm_rejects_53x74": timm_rejects,
            "conversion_check_size": list(CHECK_SIZE),
            "patch_merging_concat_order": "timm and HF both x[0::2,0::2], x[1::2,0::2], x[0::2,1::2], x[1::2,1::2]",
        },
    }
    with open(out / "swin_hf_cases.json", "w") as f:
        json.dump(cases, f, indent=2)
        f.write("\n")
    print_sizes([ckpt_path, io_path, out / "swin_hf_cases.json"])


if __name__ == "__main__":
    main()
