"""ViTDet's simple feature pyramid: four maps at strides 4, 8, 16 and 32 from one stride-16 map.

Paper:
    Exploring Plain Vision Transformer Backbones for Object Detection
    (Li et al., 2022), https://arxiv.org/abs/2203.16527

From the single map of a plain backbone, two stride-2 transposed convolutions
(with a LayerNorm and GELU between them) give stride 4, one gives stride 8, the
map itself is stride 16 and a 2x2 max-pool gives stride 32. Each branch ends in
a 1x1 and a 3x3 convolution, each followed by a LayerNorm over channels, as
ViTDet's `SimpleFeaturePyramid` with `norm="LN"`. Standard Keras layers only, so
the neck runs under Keras 3 and tf-keras and converts to builtin TFLite ops.
"""

from keras_vits.backend import keras
from keras_vits.layers.norm import LayerNorm

#: `(stage, stride over the input map)`: ViTDet's scale factors 4, 2, 1, 0.5 as pyramid levels p2..p5.
PYRAMID_LEVELS = ((2, 1 / 4), (3, 1 / 2), (4, 1), (5, 2))


def _conv_norm(x, filters, kernel_size, norm, name):
    x = keras.layers.Conv2D(filters, kernel_size, padding="same", use_bias=not norm, name=name)(x)
    return LayerNorm(epsilon=1e-6, name=f"{name}_norm")(x) if norm else x


def simple_feature_pyramid(feature_map, out_channels=256, norm=True, name="simfp"):
    """ViTDet's neck on a tensor: four NHWC maps from one.

    Args:
        feature_map: `(B, h, w, C)` tensor (a stride-16 ViT map); `C` divisible by 4.
        out_channels: channels of every output map. Defaults to 256 (ViTDet's).
        norm: LayerNorm after every convolution, which then has no bias; False
            keeps biases and no norm. Defaults to True.
        name: prefix of the layer names (`simfp_2_deconv1`, `simfp_5_conv3x3_norm`). Defaults to `"simfp"`.

    Returns: `[p2, p3, p4, p5]`, each `(B, h * 4 / 2**i, w * 4 / 2**i, out_channels)`
    for `i = 0..3` (strides 4, 8, 16 and 32 for a stride-16 input; p5 floors odd sizes).
    """
    dim = feature_map.shape[-1]
    if dim is None or dim % 4:
        raise ValueError(f"simple_feature_pyramid needs input channels divisible by 4, got shape {feature_map.shape}.")
    if not isinstance(out_channels, int) or out_channels < 1:
        raise ValueError(f"out_channels must be a positive int, got {out_channels!r}.")
    outputs = []
    for stage, _ in PYRAMID_LEVELS:
        prefix = f"{name}_{stage}"
        x = feature_map
        if stage == 2:
            x = keras.layers.Conv2DTranspose(dim // 2, 2, strides=2, name=f"{prefix}_deconv1")(x)
            x = LayerNorm(epsilon=1e-6, name=f"{prefix}_deconv1_norm")(x)
            x = keras.layers.Activation("gelu", name=f"{prefix}_gelu")(x)
            x = keras.layers.Conv2DTranspose(dim // 4, 2, strides=2, name=f"{prefix}_deconv2")(x)
        elif stage == 3:
            x = keras.layers.Conv2DTranspose(dim // 2, 2, strides=2, name=f"{prefix}_deconv1")(x)
        elif stage == 5:
            x = keras.layers.MaxPooling2D(2, strides=2, name=f"{prefix}_pool")(x)
        x = _conv_norm(x, out_channels, 1, norm, name=f"{prefix}_conv1x1")
        outputs.append(_conv_norm(x, out_channels, 3, norm, name=f"{prefix}_conv3x3"))
    return outputs


def with_simple_feature_pyramid(backbone, out_channels=256, norm=True, name=None):
    """A backbone with one stride-16 map, followed by `simple_feature_pyramid`, as one Keras model.

    Args:
        backbone: a Keras model with exactly one output, a `(B, h, w, C)` map; when it
            has `feature_info` (keras_vits models do), its stride must be 16.
        out_channels: see `simple_feature_pyramid`. Defaults to 256.
        norm: see `simple_feature_pyramid`. Defaults to True.
        name: model name. Defaults to `"<backbone>_simfp"`.

    Returns: a `keras.Model` from the backbone's input to `[p2, p3, p4, p5]`, with
    `feature_info` (channels, strides 4/8/16/32, layer names) in the backbone's schema.

    Example:
    >>> import numpy as np, keras_vits
    >>> backbone = keras_vits.VisionTransformer(image_size=64, patch_size=16, embed_dim=32, depth=1,
    ...                                         num_heads=2, num_classes=0, features_only=True)
    >>> detector = with_simple_feature_pyramid(backbone, out_channels=16)
    >>> [tuple(m.shape) for m in detector(np.zeros((1, 64, 64, 3), "float32"))]
    [(1, 16, 16, 16), (1, 8, 8, 16), (1, 4, 4, 16), (1, 2, 2, 16)]
    """
    outputs = backbone.outputs
    if len(outputs) != 1 or len(outputs[0].shape) != 4:
        raise ValueError(
            f"with_simple_feature_pyramid needs a backbone with one NHWC output map, got {len(outputs)} outputs "
            f"of shapes {[tuple(t.shape) for t in outputs]}; build it with a single out_indices entry."
        )
    info = getattr(backbone, "feature_info", None)
    stride = info[-1]["reduction"] if info else 16
    if stride != 16:
        raise ValueError(f"with_simple_feature_pyramid needs a stride-16 map, got reduction {stride} ({info[-1]}).")
    prefix = "simfp"
    maps = simple_feature_pyramid(outputs[0], out_channels=out_channels, norm=norm, name=prefix)
    inputs = backbone.inputs[0] if len(backbone.inputs) == 1 else backbone.inputs
    model = keras.Model(inputs, maps, name=name or f"{backbone.name}_simfp")
    model.feature_info = [
        dict(num_chs=out_channels, reduction=int(stride * scale), module=f"{prefix}_{stage}")
        for stage, scale in PYRAMID_LEVELS
    ]
    return model
