"""Helpers the reference-table scripts share (run in the `reference` environment, with torch and timm)."""

import inspect

import timm
import torch


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


def build_timm(name, model_cls, skip_args):
    """Builds timm's `name` with 1000 classes on the meta device if possible, else on CPU.

    Returns: `(model, device, constructor arguments of its model_cls)`.
    """
    for device in ("meta", "cpu"):
        try:
            with _CaptureInit(model_cls, skip_args) as capture, torch.device(device):
                model = timm.create_model(name, pretrained=False, num_classes=1000)
            return model, device, capture.calls[0]
        except Exception as err:  # noqa: BLE001 - fall back to CPU on any meta-device failure
            print(f"  {name}: building on {device} failed ({type(err).__name__}: {err})")
    raise RuntimeError(f"could not build {name}")


def trainable_params(model):
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))
