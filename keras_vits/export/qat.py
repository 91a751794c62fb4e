"""Quantization-aware training (QAT) with tensorflow-model-optimization, and its full-int8 TFLite export.

tfmot only takes tf-keras models, so this module runs under tf-keras
(``TF_USE_LEGACY_KERAS=1`` set before TensorFlow is imported). A model trained
under Keras 3 crosses over as a dict of arrays (`transfer_weights`).

What is fake-quantized during training: every `Dense`, `Conv2D` and
`DepthwiseConv2D` (tfmot's default 8-bit scheme: symmetric int8 weights,
per-tensor for Dense, per-channel for convolutions, and an asymmetric 8-bit
range on each output). tfmot also gives an output range to a supported layer
that alone feeds one of them: the GELU `Activation` before each `fc2`, the
global average pooling before a head, PVT v2-li's ReLU (reshapes, crops and
paddings get a wrapper that quantizes nothing). LayerNormalization, the
residual adds, the attention inside the keras_vits custom layers
(`keras_vits.layers.CUSTOM_LAYERS`, which tfmot has no config for) and the
position embedding stay float in training; the TFLite converter quantizes them
too, with ranges calibrated on representative images, as post-training
quantization does.

Workflow (under tf-keras; tests/test_qat.py runs it on tiny models):

    model = keras_vits.VisionTransformer(...)
    transfer_weights(dict(np.load("weights.npz")), model)   # weights saved from Keras 3
    qat = quantize_aware(model, calibration_images=x[:256])
    qat.compile(...); qat.fit(...)
    tflite_bytes = convert_qat_tflite(qat, x[:256])
"""

import warnings

import numpy as np
import tensorflow as tf

from keras_vits import backend
from keras_vits.export.tflite import convert_tflite
from keras_vits.layers import CUSTOM_LAYERS, XlaFriendlyDepthwiseConv2D

#: Layer classes annotated for quantization, matched exactly: subclasses such as Conv2DTranspose
#: have other tfmot configs, or none.
QUANTIZED_LAYER_TYPES = ("Dense", "Conv2D", "DepthwiseConv2D")

_LEGACY_KERAS_HINT = (
    "tensorflow-model-optimization only accepts tf-keras models: set TF_USE_LEGACY_KERAS=1 before "
    "TensorFlow is imported (e.g. `TF_USE_LEGACY_KERAS=1 python train.py`), build the model there, and "
    "bring Keras 3 weights over with keras_vits.export.qat.transfer_weights."
)


def _require_tf_keras(what):
    if backend.IS_KERAS_3:
        raise RuntimeError(f"{what} needs tf-keras, but this process runs Keras 3. {_LEGACY_KERAS_HINT}")


def _tfmot():
    import tensorflow_model_optimization as tfmot

    return tfmot


def _custom_objects():
    return {cls.__name__: cls for cls in CUSTOM_LAYERS}


def quantized_kind(layer):
    """The entry of `QUANTIZED_LAYER_TYPES` that `layer` is quantized as, or None."""
    name = "DepthwiseConv2D" if isinstance(layer, XlaFriendlyDepthwiseConv2D) else type(layer).__name__
    return name if name in QUANTIZED_LAYER_TYPES else None


def _as_stock_layer(layer):
    """The Keras layer a keras_vits subclass only speeds up, with the same config and weights.

    tfmot finds quantization configs by exact class, and `XlaFriendlyDepthwiseConv2D`
    differs from `DepthwiseConv2D` only under XLA, which QAT and TFLite never use.
    """
    if not isinstance(layer, XlaFriendlyDepthwiseConv2D):
        return layer
    stock = backend.keras.layers.DepthwiseConv2D.from_config(layer.get_config())
    stock.build(layer.input_shape)
    stock.set_weights(layer.get_weights())
    return stock


def quantize_aware(model, calibration_images=None, calibration_batch_size=32):
    """A tfmot quantization-aware copy of a keras_vits model; the original is left untouched.

    Dense, Conv2D and DepthwiseConv2D layers get fake-quant wrappers
    (`quant_<layer name>`); every other layer is kept as it is.

    DeiT: the copy is a plain functional model with one output, the inference
    head of `model.head` (by default the mean of both heads, as an `Average`
    layer). It trains that output on labels; the two-head distillation output
    of `DeiT(training=True)` is not kept, so QAT is hard-label fine-tuning.

    Quantizer ranges: weight ranges are set from the weights at once. Output
    ranges start at tfmot's prior `[-6, 6]` and follow an exponential moving
    average (decay 0.999) during training, so the untrained copy is far from
    the float model in inference mode. With `calibration_images`, the output
    ranges start from the float model's min and max on those images instead
    (post-training calibration), so the copy starts at 8-bit precision (on
    tests/test_qat.py's tiny models, logits off by 1% to 3.5% of the largest
    one, against 9% to 100% from the prior).

    Args:
        model: a keras_vits model built under tf-keras, with a classification head
            or features output (one tensor; `features_only` lists are refused).
        calibration_images: optional float32 `(N, H, W, C)` model inputs, normalised.
        calibration_batch_size: batch for the calibration pass. Defaults to 32.

    Returns: the quantize-applied tf-keras model, `(B, H, W, C)` -> the model's
    (inference) output, not compiled.

    Raises:
        RuntimeError: under Keras 3.
        ValueError: a model with several outputs other than DeiT's.
    """
    _require_tf_keras("quantize_aware")
    tfmot = _tfmot()
    keras = backend.keras
    quantize = tfmot.quantization.keras

    def annotate(layer):
        # The layer itself, not a copy: the clone shares `copy`'s layers and weights.
        layer = _as_stock_layer(layer)
        return quantize.quantize_annotate_layer(layer) if quantized_kind(layer) else layer

    with quantize.quantize_scope(_custom_objects()):
        # Shared layers gain inbound nodes, so share those of a throwaway copy, not `model`'s.
        copy = keras.models.clone_model(model)
        copy.set_weights(model.get_weights())
        annotated = keras.models.clone_model(copy, clone_function=annotate)
        outputs = annotated.outputs
        if len(outputs) > 1:
            outputs = _single_output(model, outputs)
            annotated = keras.Model(annotated.inputs, outputs, name=model.name)
        qat = quantize.quantize_apply(annotated)
    _set_weight_ranges(qat)
    if calibration_images is not None:
        calibrate(qat, model, calibration_images, calibration_batch_size)
    return qat


def _single_output(model, outputs):
    """DeiT's inference output from the clone's `[cls, dist]` heads, as in `DeiT.select_head`."""
    keras = backend.keras
    head = getattr(model, "head", None)
    if len(outputs) != 2 or head not in ("avg", "cls", "dist"):
        raise ValueError(
            f"quantize_aware takes models with one output (or DeiT's two heads); {model.name} has "
            f"{len(outputs)} outputs. Build it without features_only, or pick one output with "
            f"keras.Model(model.inputs, model.outputs[i]) first."
        )
    if head == "cls":
        return outputs[0]
    if head == "dist":
        return outputs[1]
    return keras.layers.Average(name="head_avg")(list(outputs))


def _quantizers(qat):
    """`(layer, kind, found)` for every range a QAT model holds.

    kind: `"weight"`, with `found = (weight variable, quantizer, range vars)`;
    otherwise `found` is the `{"min_var", "max_var"}` dict of a range over
    `"output"` (the wrapped layer's output, which tfmot names `post_activation`
    or `output`), `"input"` (a `QuantizeLayer`'s input) or `"other"` (a
    pre-activation range, which keras_vits layers never have).
    """
    quantize = _tfmot().quantization.keras
    # tfmot does not export the input QuantizeLayer class.
    from tensorflow_model_optimization.python.core.quantization.keras.quantize_layer import QuantizeLayer

    found = []
    for layer in qat.layers:
        if isinstance(layer, quantize.QuantizeWrapper):
            for weight, quantizer, variables in layer._weight_vars:
                found.append((layer, "weight", (weight, quantizer, variables)))
            for activation in layer._quantize_activations:
                if hasattr(activation, "_pre_activation_vars"):
                    found.append((layer, "other", activation._pre_activation_vars))
                if hasattr(activation, "_post_activation_vars"):
                    found.append((layer, "output", activation._post_activation_vars))
            if layer._output_quantizers:
                found.append((layer, "output", layer._output_quantizer_vars))
        elif isinstance(layer, QuantizeLayer) and layer.quantizer is not None:
            found.append((layer, "input", layer.quantizer_vars))
    return found


def _set_weight_ranges(qat):
    """Sets each weight quantizer's range from its weight, as tfmot's first training step would."""
    for _, kind, found in _quantizers(qat):
        if kind == "weight":
            weight, quantizer, variables = found
            quantizer(weight, True, weights=variables)  # LastValueQuantizer assigns min/max when training


def calibrate(qat, model, images, batch_size=32):
    """Sets a QAT model's output and input ranges to the float `model`'s min and max on `images`.

    Each range is widened to include 0, as tfmot and TFLite require. Weight
    ranges and tfmot's pre-activation ranges (which keras_vits layers do not
    have) are left alone.

    Args:
        qat: the model `quantize_aware` made from `model`.
        model: the float model, whose layer names the QAT wrappers keep.
        images: float32 `(N, H, W, C)` model inputs.
        batch_size: batch of the calibration pass. Defaults to 32.
    """
    keras = backend.keras
    images = np.asarray(images, np.float32)
    targets = [q for q in _quantizers(qat) if q[1] in ("output", "input")]
    tensors = {}
    for layer, kind, _ in targets:
        if kind == "output":
            tensors[layer.name] = model.get_layer(layer.layer.name).output
        else:
            source = layer.input
            inbound = source._keras_history.layer
            tensors[layer.name] = (
                model.inputs[0] if inbound in qat._input_layers else model.get_layer(inbound.name).output
            )
    names = list(tensors)
    probe = keras.Model(model.inputs, [tensors[n] for n in names])
    low = dict.fromkeys(names, np.inf)
    high = dict.fromkeys(names, -np.inf)
    for start in range(0, len(images), batch_size):
        values = probe(images[start : start + batch_size], training=False)
        values = values if isinstance(values, (list, tuple)) else [values]
        for name, value in zip(names, values):
            value = np.asarray(value)
            low[name] = min(low[name], float(value.min()))
            high[name] = max(high[name], float(value.max()))
    for layer, _, variables in targets:
        # tfmot and TFLite both need 0 inside every range.
        variables["min_var"].assign(np.full(variables["min_var"].shape, min(low[layer.name], 0.0), np.float32))
        variables["max_var"].assign(np.full(variables["max_var"].shape, max(high[layer.name], 0.0), np.float32))


def count_fake_quant_layers(qat):
    """`{inner layer class name: number of QuantizeWrapper layers}` of a QAT model."""
    quantize = _tfmot().quantization.keras
    counts = {}
    for layer in qat.layers:
        if isinstance(layer, quantize.QuantizeWrapper):
            name = type(layer.layer).__name__
            counts[name] = counts.get(name, 0) + 1
    return counts


def convert_qat_tflite(qat_model, representative_images, int8_io=False, batch_size=1):
    """Full-int8 TFLite bytes (builtin int8 ops only) from a QAT model.

    The fake-quant ranges learnt in training fix the int8 parameters of the
    Dense and convolution outputs; the converter calibrates the rest
    (LayerNorm, attention, residual adds) on `representative_images`.

    Args:
        qat_model: a model from `quantize_aware`, trained or not.
        representative_images: float32 `(N, H, W, C)` model inputs, normalised.
        int8_io: int8 input and output tensors instead of float. Defaults to False.
        batch_size: the fixed batch of the converted model. Defaults to 1.

    Returns: the `.tflite` bytes, `(batch_size, H, W, C)` -> `(batch_size, num_classes)`.

    Raises:
        ValueError: a model with no fake-quant layer, or a failed conversion.
    """
    _require_tf_keras("convert_qat_tflite")
    if not count_fake_quant_layers(qat_model):
        raise ValueError(
            f"{qat_model.name} has no QuantizeWrapper layer: pass the model quantize_aware returns, "
            "or use keras_vits.export.tflite.convert_tflite(model, 'int8', ...) for post-training quantization."
        )
    with warnings.catch_warnings():
        # Any int8 conversion from concrete functions warns of missing `quantized_input_stats`;
        # the input range comes from tfmot's input QuantizeLayer here, so the warning does not apply.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs were expected")
        return convert_tflite(
            qat_model, "int8", representative_images=representative_images, int8_io=int8_io, batch_size=batch_size
        )


def transfer_weights(source_weights, model):
    """Assigns weights saved from a Keras 3 model into a tf-keras model of the same config, strictly.

    Args:
        source_weights: `{"layer_name/weight_name": array}`, as
            `{k: v.numpy() for k, v in keras_vits.backend.layer_weights(model).items()}` gives
            under either Keras (e.g. read back with `dict(np.load("weights.npz"))`).
        model: the float model to fill (under tf-keras, before `quantize_aware`).

    Raises:
        ValueError: keys missing or unexpected (counted, the first 10 of each named), or a
            shape that differs; no weight is assigned then.
    """
    pairs, missing, unexpected, mismatched = backend.compare_layer_weights(model, source_weights)
    if missing or unexpected:
        raise ValueError(
            f"The weights do not match {model.name}'s (same config?): "
            f"missing {len(missing)} {missing[:10]}{' ...' if len(missing) > 10 else ''}, "
            f"unexpected {len(unexpected)} {unexpected[:10]}{' ...' if len(unexpected) > 10 else ''}."
        )
    if mismatched:
        key, shape, expected = mismatched[0]
        raise ValueError(f"Weight {key} has shape {shape}; {model.name} expects {expected}.")
    for variable, value in pairs.values():
        variable.assign(value.astype(tf.as_dtype(variable.dtype).as_numpy_dtype))
