"""Multiply-accumulate counts (the papers' "FLOPs") of a model for one image."""

import numpy as np

from keras_vits.backend import depthwise_kernel, keras


def _shape(tensor):
    """A tensor's shape as a tuple; a list of them for a multi-input layer."""
    if isinstance(tensor, (list, tuple)):
        return [tuple(t.shape) for t in tensor]
    return tuple(tensor.shape)


def layer_macs(layer):
    """MACs of one layer for one image: matmuls and convolutions only, as fvcore counts them.

    Norms, activations, softmax and additions are not counted, as in the ViT,
    DeiT, Swin and PVT papers' tables. Custom layers that multiply activations
    by activations (attention) report their own count via `macs_per_image`.
    """
    if hasattr(layer, "macs_per_image"):
        return int(layer.macs_per_image(_shape(layer.input)))
    if isinstance(layer, keras.layers.DepthwiseConv2D):
        out = _shape(layer.output)
        kernel = depthwise_kernel(layer).shape
        return int(np.prod(out[1:-1])) * int(np.prod(kernel))
    if isinstance(layer, keras.layers.Conv2D):
        out = _shape(layer.output)
        return int(np.prod(out[1:-1])) * int(np.prod(layer.kernel.shape))
    if isinstance(layer, keras.layers.Dense):
        positions = int(np.prod(_shape(layer.input)[1:-1], dtype=np.int64))
        return positions * int(np.prod(layer.kernel.shape))
    return 0


def count_macs(model: keras.Model) -> int:
    """Multiply-accumulates of `model` for one image at its input size.

    Args:
        model: a keras_vits model (a flat functional graph with a static input size).

    Returns: int, e.g. about 4.6e9 for `deit_small_patch16_224`.

    Example:
    >>> from keras_vits import VisionTransformer
    >>> model = VisionTransformer(image_size=32, patch_size=8, embed_dim=48, depth=2, num_heads=3, num_classes=10)
    >>> count_macs(model)
    1143456
    """
    if any(dim is None for dim in model.inputs[0].shape[1:]):
        raise ValueError(f"count_macs needs a static input size, got {tuple(model.inputs[0].shape)}.")
    return sum(layer_macs(layer) for layer in model.layers)
