"""Generate the timm reference fixtures used by the keras_vits parity tests.

This script builds a handful of tiny, randomly initialised timm ViT / DeiT
models, perturbs every parameter with seeded noise (so that no weight keeps a
trivial value such as 0, 1 or a constant layer-scale init and the parity tests
exercise every tensor), and writes into ``tests/fixtures/``:

* ``<case>.safetensors``     -- the timm model's ``state_dict()`` with timm's
  own key names (float32, contiguous);
* ``<case>_io.safetensors``  -- ``images`` (batch 2, NHWC float32, i.e. timm's
  NCHW input transposed) and ``logits`` (timm model in eval mode, float32).
  The distilled DeiT cases additionally carry ``logits_cls`` and
  ``logits_dist`` (the two heads evaluated separately);
* ``cases.json``             -- per case: model family, keras_vits constructor
  kwargs, checkpoint file name and a description of the timm constructor
  call, plus a ``_meta`` entry with the library versions used.

The ``*_resample*`` cases load a smaller-resolution checkpoint into a
larger-resolution timm model through timm's own checkpoint filter, so their
``logits`` pin down timm's position-embedding resampling.

It needs PyTorch + timm, i.e. the ``reference`` extra (or any environment
with torch, timm, safetensors and numpy); keras_vits itself is not imported.
The helpers come from ``tools/reference/reference_common.py``. Run from the repository
root (``--output DIR`` writes elsewhere)::

    python tools/reference/make_fixtures.py
"""

from __future__ import annotations

import functools
import json

import safetensors.torch
import torch
from reference_common import (
    BATCH,
    FIXTURE_DIR,
    LARGE_NOISE_STD,
    NOISE_STD,
    call_repr,
    keras_config,
    make_images,
    output_argument,
    perturb,
    print_sizes,
    save,
    state_dict_f32,
    to_nchw,
    versions,
    vit_timm_kwargs,
)
from timm.models import deit as timm_deit
from timm.models import vision_transformer as timm_vit

# Common tiny architecture (shared by every case unless overridden).
BASE = dict(
    image_size=32,
    patch_size=8,
    in_chans=3,
    num_classes=10,
    global_pool="token",
    embed_dim=48,
    depth=2,
    num_heads=3,
    mlp_ratio=4.0,
    qkv_bias=True,
    init_values=None,
    class_token=True,
    fc_norm=None,
)


def build(cls, cfg, seed):
    torch.manual_seed(seed)
    kwargs = vit_timm_kwargs(cfg)
    model = cls(**kwargs)
    model.eval()
    return model, call_repr(cls, kwargs)


@torch.no_grad()
def run_io(model, cfg, seed, distilled):
    nchw, nhwc = make_images(cfg, seed)
    out = {"images": nhwc, "logits": model(nchw).float().contiguous()}
    if distilled:
        feats = model.forward_features(nchw)
        out["logits_cls"] = model.head(feats[:, 0]).float().contiguous()
        out["logits_dist"] = model.head_dist(feats[:, 1]).float().contiguous()
        # eval-mode forward is the average of the two heads
        torch.testing.assert_close(out["logits"], (out["logits_cls"] + out["logits_dist"]) / 2)
    assert out["logits"].shape == (BATCH, cfg["num_classes"])
    return out


@torch.no_grad()
def check_roundtrip(cls, cfg, ckpt_path, io, filter_fn=None):
    """Reload the saved checkpoint into a fresh timm model and replay the io."""
    model = cls(**vit_timm_kwargs(cfg)).eval()
    sd = safetensors.torch.load_file(str(ckpt_path))
    if filter_fn is not None:
        sd = filter_fn(sd, model)
    model.load_state_dict(sd, strict=True)
    torch.testing.assert_close(model(to_nchw(io["images"])), io["logits"], rtol=1e-6, atol=1e-6)


def main(argv=None):
    out = output_argument(__doc__, FIXTURE_DIR, argv)
    written = []
    cases = {}
    vit_cls = timm_vit.VisionTransformer
    deit_cls = timm_deit.VisionTransformerDistilled

    # timm's DeiT entrypoints use the ViT filter with adapt_layer_scale=True
    # (deit.py has no checkpoint_filter_fn of its own, it imports the ViT one).
    deit_filter_is_vit = getattr(timm_deit, "checkpoint_filter_fn", None) is timm_vit.checkpoint_filter_fn
    vit_filter = timm_vit.checkpoint_filter_fn
    deit_filter = functools.partial(
        getattr(timm_deit, "checkpoint_filter_fn", timm_vit.checkpoint_filter_fn), adapt_layer_scale=True
    )

    def plain_case(name, family, cls, cfg, seed):
        model, desc = build(cls, cfg, seed)
        # pos_embed gets LARGE_NOISE_STD, comparable in scale to the patch embeddings, so the resample
        # cases' logits clearly depend on how the grid is interpolated (a wrong interpolation mode then
        # moves the logits by ~1e-2, not ~1e-3).
        perturb(model, seed + 1000, "pos_embed")
        sd = state_dict_f32(model)
        ckpt = save(out / f"{name}.safetensors", sd)
        io = run_io(model, cfg, seed + 2000, distilled=family == "deit")
        written.extend([ckpt, save(out / f"{name}_io.safetensors", io)])
        check_roundtrip(cls, cfg, ckpt, io)
        cases[name] = {"family": family, "config": cfg, "checkpoint": ckpt.name, "timm_model": desc}
        return sd

    def resample_case(name, family, cls, cfg, seed, src_name, src_sd, filter_fn, filter_desc):
        model, desc = build(cls, cfg, seed)
        filtered = filter_fn({k: v.clone() for k, v in src_sd.items()}, model)
        model.load_state_dict(filtered, strict=True)
        assert model.pos_embed.shape[1] != src_sd["pos_embed"].shape[1]
        io = run_io(model, cfg, seed + 2000, distilled=family == "deit")
        written.append(save(out / f"{name}_io.safetensors", io))
        check_roundtrip(cls, cfg, out / f"{src_name}.safetensors", io, filter_fn)
        cases[name] = {
            "family": family,
            "config": cfg,
            "checkpoint": f"{src_name}.safetensors",
            "timm_model": f"{desc}; weights = {filter_desc}(<{src_name}.safetensors>, model)",
        }

    # a. plain ViT, class-token pooling.
    vit_token_cfg = keras_config(BASE)
    vit_token_sd = plain_case("vit_token", "vit", vit_cls, vit_token_cfg, seed=1)

    # b. avg pooling (-> fc_norm), no qkv bias, layer scale, 1 channel, non-square input.
    plain_case(
        "vit_avg_ls",
        "vit",
        vit_cls,
        keras_config(
            BASE, image_size=(32, 48), in_chans=1, global_pool="avg", qkv_bias=False, init_values=0.1, mlp_ratio=2.0
        ),
        seed=2,
    )

    # c. distilled DeiT (class + distillation token, two heads averaged in eval).
    deit_cfg = keras_config(BASE)
    deit_sd = plain_case("deit_distilled", "deit", deit_cls, deit_cfg, seed=3)

    # d. case a's checkpoint loaded at 48x48 (pos_embed grid 4x4 -> 6x6).
    resample_case(
        "vit_token_resample48",
        "vit",
        vit_cls,
        keras_config(BASE, image_size=48),
        seed=4,
        src_name="vit_token",
        src_sd=vit_token_sd,
        filter_fn=vit_filter,
        filter_desc="timm.models.vision_transformer.checkpoint_filter_fn",
    )

    # e. case c's checkpoint loaded at 48x64 (pos_embed grid 4x4 -> 6x8).
    resample_case(
        "deit_distilled_resample",
        "deit",
        deit_cls,
        keras_config(BASE, image_size=(48, 64)),
        seed=5,
        src_name="deit_distilled",
        src_sd=deit_sd,
        filter_fn=deit_filter,
        filter_desc=(
            "functools.partial(timm.models.deit.checkpoint_filter_fn, adapt_layer_scale=True)"
            + (" [same object as timm.models.vision_transformer.checkpoint_filter_fn]" if deit_filter_is_vit else "")
        ),
    )

    cases["_meta"] = {
        **versions(),
        "noise_std": NOISE_STD,
        "pos_embed_noise_std": LARGE_NOISE_STD,
        "image_layout": "NHWC (timm NCHW input transposed with permute(0, 2, 3, 1))",
        "deit_checkpoint_filter_is_vit_filter": deit_filter_is_vit,
    }
    with open(out / "cases.json", "w") as f:
        json.dump(cases, f, indent=2, sort_keys=False)
        f.write("\n")
    print_sizes([*written, out / "cases.json"])


if __name__ == "__main__":
    main()
