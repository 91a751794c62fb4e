"""Generate timm reference fixtures for ViT and DeiT as dense backbones: block maps and any input size.

Reuses the checkpoints of ``tools/reference/make_fixtures.py`` (``vit_token``, ``vit_avg_ls``,
``deit_distilled``) and adds one tiny ViT without a class token (``vit_noprefix``,
seeded noise on every parameter as there). Writes into ``tests/fixtures/``:

* ``vit_noprefix.safetensors`` -- that model's timm ``state_dict()``;
* ``<case>_features_io.safetensors`` -- ``images`` (NHWC) and, for every block ``i``,
  ``block<i>`` and ``block<i>_norm``: ``forward_intermediates(indices=[...], norm=False/True,
  output_fmt="NCHW")`` transposed to NHWC, and ``prefix<i>`` / ``prefix<i>_norm``
  (``return_prefix_tokens=True``) when the model has prefix tokens;
* ``<case>_dynamic_io.safetensors`` -- timm's model built with ``dynamic_img_size=True``
  at the checkpoint's size, run on ``images`` of another size: ``logits`` and the
  block maps ``block<i>`` (no norm), so the in-graph resampling is pinned down by timm;
* ``vit_features_cases.json`` -- per case: family, keras_vits config, checkpoint, the
  dynamic run's image size and the timm calls, plus ``_meta`` with the versions.

Run from the repository root in the reference environment (torch, timm)::

    python tools/reference/make_vit_features_fixtures.py
"""

from __future__ import annotations

import json

import safetensors.torch
import torch
from reference_common import (
    FIXTURE_DIR,
    call_repr,
    keras_config,
    make_images,
    output_argument,
    perturb,
    print_sizes,
    save,
    state_dict_f32,
    to_nhwc,
    versions,
    vit_timm_kwargs,
)
from timm.models import deit as timm_deit
from timm.models import vision_transformer as timm_vit

NOPREFIX = dict(
    image_size=32,
    patch_size=8,
    in_chans=3,
    num_classes=10,
    global_pool="avg",
    embed_dim=32,
    depth=3,
    num_heads=2,
    mlp_ratio=2.0,
    qkv_bias=True,
    init_values=0.1,
    class_token=False,
    fc_norm=None,
)

#: case: (family, checkpoint stem, image size of the dynamic run).
CASES = {
    "vit_token": ("vit", "vit_token", (48, 64)),
    "vit_avg_ls": ("vit", "vit_avg_ls", (48, 32)),
    "deit_distilled": ("deit", "deit_distilled", (40, 56)),
    "vit_noprefix": ("vit", "vit_noprefix", (24, 40)),
}


def model_class(family):
    return timm_deit.VisionTransformerDistilled if family == "deit" else timm_vit.VisionTransformer


def load(family, cfg, checkpoint, **extra):
    kwargs = vit_timm_kwargs(cfg, **extra)
    model = model_class(family)(**kwargs).eval()
    model.load_state_dict(safetensors.torch.load_file(str(checkpoint)), strict=True)
    return model, call_repr(model_class(family), kwargs)


@torch.no_grad()
def intermediates(model, nchw, depth, norm):
    """`{block<i>[_norm]: NHWC map, prefix<i>[_norm]: (B, P, C)}` from `forward_intermediates`."""
    suffix = "_norm" if norm else ""
    indices = list(range(depth))
    out = {}
    if model.num_prefix_tokens:
        pairs = model.forward_intermediates(
            nchw, indices=indices, norm=norm, return_prefix_tokens=True, output_fmt="NCHW", intermediates_only=True
        )
        for i, (spatial, prefix) in enumerate(pairs):
            out[f"block{i}{suffix}"] = to_nhwc(spatial)
            out[f"prefix{i}{suffix}"] = prefix.contiguous()
    else:
        maps = model.forward_intermediates(nchw, indices=indices, norm=norm, output_fmt="NCHW", intermediates_only=True)
        for i, spatial in enumerate(maps):
            out[f"block{i}{suffix}"] = to_nhwc(spatial)
    return out


def main(argv=None):
    out = output_argument(__doc__, FIXTURE_DIR, argv)
    existing = json.loads((FIXTURE_DIR / "cases.json").read_text())
    written, cases = [], {}

    # The one new checkpoint: no class token (no prefix tokens at all), layer scale, three blocks.
    torch.manual_seed(11)
    noprefix = timm_vit.VisionTransformer(**vit_timm_kwargs(NOPREFIX)).eval()
    perturb(noprefix, 1011, "pos_embed")
    written.append(save(out / "vit_noprefix.safetensors", state_dict_f32(noprefix)))

    for name, (family, stem, dynamic_size) in CASES.items():
        cfg = keras_config(NOPREFIX) if stem == "vit_noprefix" else existing[stem]["config"]
        checkpoint = out / f"{stem}.safetensors"
        if not checkpoint.exists():
            checkpoint = FIXTURE_DIR / f"{stem}.safetensors"
        model, desc = load(family, cfg, checkpoint)
        nchw, nhwc = make_images(cfg, seed=3000 + len(cases))
        io = {"images": nhwc}
        for norm in (False, True):
            io.update(intermediates(model, nchw, cfg["depth"], norm))
        # the last block's normed map is the normed forward_features' patch tokens, as a cross-check
        tokens = model.forward_features(nchw)[:, model.num_prefix_tokens :]
        last = io[f"block{cfg['depth'] - 1}_norm"]
        torch.testing.assert_close(tokens.reshape(last.shape), last, rtol=0, atol=1e-6)
        written.append(save(out / f"{name}_features_io.safetensors", io))

        dynamic, dynamic_desc = load(family, cfg, checkpoint, dynamic_img_size=True)
        nchw, nhwc = make_images(dict(cfg, image_size=list(dynamic_size)), seed=4000 + len(cases))
        with torch.no_grad():
            dyn = {"images": nhwc, "logits": dynamic(nchw).float().contiguous()}
        maps = intermediates(dynamic, nchw, cfg["depth"], False)
        dyn.update({key: value for key, value in maps.items() if key.startswith("block")})
        written.append(save(out / f"{name}_dynamic_io.safetensors", dyn))
        cases[name] = {
            "family": family,
            "config": cfg,
            "checkpoint": checkpoint.name,
            "features_io": f"{name}_features_io.safetensors",
            "dynamic_io": f"{name}_dynamic_io.safetensors",
            "dynamic_image_size": list(dynamic_size),
            "timm_model": desc,
            "timm_features": "forward_intermediates(x, indices=list(range(depth)), norm=False|True, "
            "return_prefix_tokens=True, output_fmt='NCHW', intermediates_only=True), NCHW -> NHWC",
            "timm_dynamic_model": dynamic_desc,
        }

    cases["_meta"] = {**versions(), "image_layout": "NHWC (timm NCHW transposed with permute(0, 2, 3, 1))"}
    path = out / "vit_features_cases.json"
    path.write_text(json.dumps(cases, indent=2) + "\n")
    print_sizes([*written, path])


if __name__ == "__main__":
    main()
