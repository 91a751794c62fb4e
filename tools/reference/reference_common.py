"""Helpers the reference scripts in tools/reference/ share (run in the `reference` environment, with torch and timm).

Fixture scripts (``make_*fixture*.py``): seeded noise on every parameter, seeded
images, float32 state dicts, safetensors files, library versions for ``_meta``.
Reference-table scripts (``*param_counts.py``): building a registry entry on the
meta device with its constructor arguments captured, JSON-friendly arguments.
Every script takes ``--output``, defaulting to the committed location.
"""

import argparse
import inspect
import pathlib
import platform

import numpy as np
import safetensors
import safetensors.torch
import timm
import torch

REPO = pathlib.Path(__file__).resolve().parents[2]
FIXTURE_DIR = REPO / "tests" / "fixtures"

BATCH = 2  # images per io fixture
NOISE_STD = 0.05  # std of the seeded noise added to every parameter
# A larger std for the tensors a port most easily gets wrong (position embeddings, relative-position
# tables): a wrong interpolation, index or resize then moves the logits by ~1e-2, not ~1e-3.
LARGE_NOISE_STD = 0.5


# ----------------------------------------------------------------------------- command line


def output_argument(description, default, argv=None):
    """The one option of every reference script: `--output`, a folder or file defaulting to `default`."""
    parser = argparse.ArgumentParser(description=description.strip().splitlines()[0])
    kind = "file" if default.suffix else "folder"
    parser.add_argument(
        "--output", type=pathlib.Path, default=default, help=f"{kind} to write (default: {default.relative_to(REPO)})"
    )
    return parser.parse_args(argv).output


def print_sizes(paths):
    for path in sorted(paths):
        print(f"{path}  {path.stat().st_size:>8d} bytes")


# ----------------------------------------------------------------------------- fixtures


def keras_config(base, **overrides):
    """keras_vits constructor kwargs for one case: `base` with `overrides`, JSON-friendly (a tuple size as a list)."""
    config = dict(base, **overrides)
    if isinstance(config["image_size"], tuple):
        config["image_size"] = list(config["image_size"])
    return config


def kwargs_repr(kwargs):
    return ", ".join(f"{key}={value!r}" for key, value in kwargs.items())


def call_repr(target, kwargs):
    """`module.Class(key=value, ...)`: how a reference model was built, for a fixture's description."""
    name = target if isinstance(target, str) else f"{target.__module__}.{target.__qualname__}"
    return f"{name}({kwargs_repr(kwargs)})"


@torch.no_grad()
def perturb(model, seed, large_suffix, large_std=LARGE_NOISE_STD):
    """Adds seeded zero-mean normal noise to every parameter, in place.

    The std is `NOISE_STD`, or `large_std` for parameters whose name ends with `large_suffix`,
    so that no weight keeps a trivial value (0, 1, a constant layer-scale init) and the parity
    tests exercise every tensor. Parameters are visited in name order.
    """
    generator = torch.Generator().manual_seed(seed)
    for name, param in sorted(model.named_parameters()):
        std = large_std if name.endswith(large_suffix) else NOISE_STD
        param.add_(torch.randn(param.shape, generator=generator, dtype=param.dtype) * std)


def vit_timm_kwargs(cfg, **extra):
    """A keras_vits ViT/DeiT config as timm `VisionTransformer` kwargs, plus `extra` (e.g. `dynamic_img_size`)."""
    size = cfg["image_size"]
    return dict(
        img_size=tuple(size) if isinstance(size, list) else size,
        patch_size=cfg["patch_size"],
        in_chans=cfg["in_chans"],
        num_classes=cfg["num_classes"],
        global_pool=cfg["global_pool"],
        embed_dim=cfg["embed_dim"],
        depth=cfg["depth"],
        num_heads=cfg["num_heads"],
        mlp_ratio=cfg["mlp_ratio"],
        qkv_bias=cfg["qkv_bias"],
        init_values=cfg["init_values"],
        class_token=cfg["class_token"],
        fc_norm=cfg["fc_norm"],
        **extra,
    )


def image_hw(size):
    """`(height, width)` of an int or a pair."""
    return (size, size) if isinstance(size, int) else tuple(size)


def make_images(config, seed):
    """`BATCH` seeded N(0, 1) images of `config`'s size and channels: NCHW for the reference, the same data NHWC."""
    height, width = image_hw(config["image_size"])
    generator = torch.Generator().manual_seed(seed)
    nchw = torch.randn((BATCH, config["in_chans"], height, width), generator=generator, dtype=torch.float32)
    return nchw, to_nhwc(nchw)


def to_nchw(nhwc):
    # contiguous matters: a channels-last-strided input makes conv2d pick other kernels (~1e-7 differences)
    return nhwc.permute(0, 3, 1, 2).contiguous()


def to_nhwc(nchw):
    return nchw.permute(0, 2, 3, 1).contiguous()


def state_dict_f32(model):
    """The model's `state_dict()` as float32 contiguous copies, with the reference library's key names."""
    return {key: value.detach().to(torch.float32).contiguous().clone() for key, value in model.state_dict().items()}


def save(path, tensors):
    """Writes `tensors` as float32 contiguous safetensors to `path` (its folder created); returns `path`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().to(torch.float32).contiguous() for key, value in tensors.items()}
    safetensors.torch.save_file(tensors, str(path))
    return path


def max_abs(a, b):
    return float((a - b).abs().max())


def versions(with_transformers=False):
    """The library versions a fixture's `_meta` records, in the order the fixtures list them."""
    found = {"timm_version": timm.__version__}
    if with_transformers:
        import transformers

        found["transformers_version"] = transformers.__version__
    found["torch_version"] = torch.__version__
    found["numpy_version"] = np.__version__
    found["safetensors_version"] = safetensors.__version__
    found["python_version"] = platform.python_version()
    return found


# ----------------------------------------------------------------------------- reference tables


def jsonable(value):
    """A constructor argument as JSON: classes and functions by name, partials spelled out, the rest by repr."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (tuple, list)):
        return [jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if inspect.isclass(value) or inspect.isfunction(value):
        return value.__name__
    if hasattr(value, "func"):  # functools.partial
        args = ", ".join(f"{k}={v!r}" for k, v in value.keywords.items())
        return f"partial({value.func.__name__}, {args})"
    return repr(value)


class _CaptureInit:
    """Temporarily wraps `model_cls.__init__` to record the bound arguments of each call."""

    def __init__(self, model_cls, skip_args):
        self.model_cls, self.skip_args, self.calls = model_cls, set(skip_args), []
        self._orig = model_cls.__init__

    def __enter__(self):
        orig, calls, skip = self._orig, self.calls, self.skip_args
        signature = inspect.signature(orig)

        def spy(model_self, *args, **kwargs):
            bound = signature.bind(model_self, *args, **kwargs)
            bound.apply_defaults()
            calls.append({k: v for k, v in bound.arguments.items() if k not in skip})
            return orig(model_self, *args, **kwargs)

        self.model_cls.__init__ = spy
        return self

    def __exit__(self, *exc):
        self.model_cls.__init__ = self._orig
        return False


def build_on_meta_or_cpu(build, name):
    """`(build(), device)`: built on the meta device if possible (no weights allocated), else on CPU."""
    for device in ("meta", "cpu"):
        try:
            with torch.device(device):
                return build(), device
        except Exception as err:  # fall back to CPU on any meta-device failure
            print(f"  {name}: building on {device} failed ({type(err).__name__}: {err})")
    raise RuntimeError(f"could not build {name}")


def build_timm(name, model_cls, skip_args):
    """Builds timm's `name` with 1000 classes on the meta device if possible, else on CPU.

    Returns: `(model, device, constructor arguments of its model_cls)`.
    """

    def build():
        with _CaptureInit(model_cls, skip_args) as capture:
            model = timm.create_model(name, pretrained=False, num_classes=1000)
        return model, capture.calls[0]

    (model, arguments), device = build_on_meta_or_cpu(build, name)
    return model, device, arguments


def trainable_params(model):
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
