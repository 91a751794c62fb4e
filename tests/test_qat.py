"""Quantization-aware training: every family under tfmot, one training step, full-int8 TFLite, weight transfer.

tfmot takes tf-keras models only, so this module runs in the tf-keras pass
(`TF_USE_LEGACY_KERAS=1`) and is skipped under Keras 3.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
from harness import TINY_FAMILIES, tiny_model

import keras_vits
from keras_vits import backend
from keras_vits.export import qat
from keras_vits.export.tflite import TFLiteModel
from keras_vits.layers import CUSTOM_LAYERS

if backend.IS_KERAS_3:
    pytest.skip("QAT needs tf-keras: this module runs with TF_USE_LEGACY_KERAS=1", allow_module_level=True)
tfmot = pytest.importorskip("tensorflow_model_optimization", reason="QAT needs tensorflow-model-optimization")

keras = backend.keras

# max |QAT - float| / max |float| of the untrained copy, calibrated on the 16 images compared, was
# 0.011 to 0.035 over seeds 0-2 of every tiny family (0.024 at most with seed 0): one 8-bit rounding
# costs up to 1/510 of a range, compounded over 6 to 33 fake-quantized tensors, worst logit of 160.
# Left at tfmot's [-6, 6] output prior instead of calibrated, it was 0.09 to 1.0.
INIT_TOLERANCE = 0.05

# Compute ops that must take int8 tensors in a full-int8 model.
INT8_COMPUTE_OPS = ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D", "BATCH_MATMUL", "ADD", "MUL", "SOFTMAX")


def _images(count=16, seed=0):
    return np.random.default_rng(seed).normal(size=(count, 32, 32, 1)).astype(np.float32)


@pytest.fixture(scope="module", params=sorted(TINY_FAMILIES))
def family(request):
    """`(name, float model, QAT model calibrated on the images, images, its untrained output)`, once per family.

    One test trains the QAT model; the untrained output is kept so that no test depends on the order.
    """
    keras.utils.set_random_seed(0)
    model = tiny_model(request.param)
    images = _images()
    qat_model = qat.quantize_aware(model, calibration_images=images)
    return request.param, model, qat_model, images, qat_model(images, training=False).numpy()


def _quantizable(model):
    return [layer for layer in model.layers if qat.quantized_kind(layer)]


# ----------------------------------------------------------------------------- quantize_aware


def test_every_dense_and_conv_is_wrapped_and_nothing_custom(family):
    _, model, qat_model, _, _ = family
    wrappers = {
        layer.layer.name: layer
        for layer in qat_model.layers
        if isinstance(layer, tfmot.quantization.keras.QuantizeWrapper)
    }
    expected = _quantizable(model)
    assert expected, "every family has Dense and Conv layers"
    for layer in expected:
        wrapper = wrappers.get(layer.name)
        assert wrapper is not None and type(wrapper.layer).__name__ == qat.quantized_kind(layer), layer.name
        assert wrapper.name == f"quant_{layer.name}"
        assert [weight for weight, _, _ in wrapper._weight_vars], f"{layer.name}: no weight quantizer"
    counts = qat.count_fake_quant_layers(qat_model)
    for kind in qat.QUANTIZED_LAYER_TYPES:
        assert counts.get(kind, 0) == sum(qat.quantized_kind(layer) == kind for layer in model.layers), kind
    # Custom layers and LayerNormalization have no tfmot config: they stay float, unwrapped.
    assert not [
        name for name, w in wrappers.items() if isinstance(w.layer, (*CUSTOM_LAYERS, keras.layers.LayerNormalization))
    ]
    assert [layer for layer in qat_model.layers if isinstance(layer, CUSTOM_LAYERS)]


def test_untrained_copy_stays_close_to_the_float_model(family):
    name, model, _, images, out = family
    reference = model(images).numpy()
    assert out.shape == reference.shape
    error = np.abs(out - reference).max() / np.abs(reference).max()
    assert error < INIT_TOLERANCE, (name, error)
    assert not np.array_equal(out, reference), "fake quantization is active"


def test_one_training_step_then_full_int8_tflite_with_builtin_ops(family):
    name, model, qat_model, images, _ = family
    # The unquantized variable: tfmot swaps `layer.kernel` for its fake-quantized tensor.
    kernel = qat_model.get_layer(f"quant_{_quantizable(model)[-1].name}")._weight_vars[0][0]
    before = kernel.numpy()
    qat_model.compile(keras.optimizers.Adam(1e-3), keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    history = qat_model.fit(images, np.arange(len(images)) % 10, batch_size=8, epochs=1, verbose=0)
    assert np.all(np.isfinite(history.history["loss"])), history.history
    assert not np.array_equal(kernel.numpy(), before), "the step updated the weights"

    runner = TFLiteModel(qat.convert_qat_tflite(qat_model, images))
    ops = runner.delegation()
    assert not [op for op in ops if "FLEX" in op.upper() or "CUSTOM" in op.upper()], ops
    assert "QUANTIZE" in ops and "FULLY_CONNECTED" in ops
    tensors = {t["index"]: t for t in runner.interpreter.get_tensor_details()}
    float_inputs = [
        (op["op_name"], tensors[i]["name"])
        for op in runner.interpreter._get_ops_details()
        if op["op_name"] in INT8_COMPUTE_OPS
        for i in op["inputs"]
        if i >= 0 and tensors[i]["dtype"] == np.float32
    ]
    assert not float_inputs, f"float tensors in a full-int8 {name} model: {float_inputs[:5]}"
    out = runner.predict(images[:4])
    assert out.shape == (4, 10) and np.all(np.isfinite(out))


def test_tflite_uses_the_trained_ranges():
    keras.utils.set_random_seed(0)
    images = _images()
    qat_model = qat.quantize_aware(tiny_model("vit"), calibration_images=images)
    head = qat_model.get_layer("quant_head")._quantize_activations[0]._post_activation_vars
    head["min_var"].assign(-3.0)
    head["max_var"].assign(5.0)
    runner = TFLiteModel(qat.convert_qat_tflite(qat_model, images, int8_io=True))
    assert runner.input["dtype"] == np.int8 and runner.output["dtype"] == np.int8
    scale, zero_point = runner.output["quantization"]
    np.testing.assert_allclose(scale, 8.0 / 255, rtol=1e-5)
    assert zero_point == -128 + round(3.0 / scale)
    assert runner.predict(images[:2]).shape == (2, 10)


def test_deit_copy_outputs_the_inference_head():
    keras.utils.set_random_seed(0)
    images = _images(4)
    averaged = qat.quantize_aware(tiny_model("deit"))
    (output,) = averaged.outputs
    assert output.node.layer.name == "head_avg"
    assert sorted(layer.name for layer in output.node.inbound_layers) == ["quant_head", "quant_head_dist"]
    for head, layer_name in (("cls", "quant_head"), ("dist", "quant_head_dist")):
        single = qat.quantize_aware(tiny_model("deit", head=head))
        assert single.outputs[0].node.layer.name == layer_name
        assert single(images).shape == (4, 10)


def test_uncalibrated_copy_sets_weight_ranges_from_the_weights():
    keras.utils.set_random_seed(0)
    model = tiny_model("vit")
    wrapper = qat.quantize_aware(model).get_layer("quant_head")
    ((_, _, ranges),) = wrapper._weight_vars
    bound = np.abs(model.get_layer("head").kernel.numpy()).max()
    assert float(ranges["max_var"].numpy()) == pytest.approx(bound, rel=1e-6)
    post = wrapper._quantize_activations[0]._post_activation_vars
    assert float(post["max_var"].numpy()) == 6.0, "output ranges keep tfmot's prior until trained"


def test_multi_output_models_are_refused_with_a_hint():
    model = keras_vits.SwinTransformer(
        image_size=32, embed_dim=8, depths=(1, 1), num_heads=(1, 1), window_size=4, in_chans=1, features_only=True
    )
    with pytest.raises(ValueError, match="one output"):
        qat.quantize_aware(model)


def test_keras_3_is_refused_naming_the_environment_variable(monkeypatch):
    model = tiny_model("vit")
    monkeypatch.setattr(backend, "IS_KERAS_3", True)
    with pytest.raises(RuntimeError, match="TF_USE_LEGACY_KERAS=1"):
        qat.quantize_aware(model)
    with pytest.raises(RuntimeError, match="TF_USE_LEGACY_KERAS=1"):
        qat.convert_qat_tflite(model, _images(2))


def test_conversion_refuses_a_model_without_fake_quant():
    with pytest.raises(ValueError, match="no QuantizeWrapper.*convert_tflite"):
        qat.convert_qat_tflite(tiny_model("vit"), _images(2))


# ----------------------------------------------------------------------------- transfer_weights


def _saved(model):
    return {key: variable.numpy() for key, variable in backend.layer_weights(model).items()}


def test_transfer_round_trip_then_quantize():
    keras.utils.set_random_seed(0)
    source = tiny_model("vit")
    keras.utils.set_random_seed(1)
    target = tiny_model("vit")
    images = _images(2)
    assert not np.allclose(source(images), target(images))
    qat.transfer_weights(_saved(source), target)
    np.testing.assert_array_equal(target(images).numpy(), source(images).numpy())
    qat_model = qat.quantize_aware(target, calibration_images=images)
    assert (
        np.abs(qat_model(images).numpy() - source(images).numpy()).max() < INIT_TOLERANCE * np.abs(source(images)).max()
    )


def test_transfer_names_missing_unexpected_and_misshapen_weights():
    model = tiny_model("vit")
    weights = _saved(model)
    before = model.get_layer("head").kernel.numpy()
    broken = dict(weights)
    del broken["head/bias"], broken["blocks_0_norm1/gamma"]
    broken["head_dist/kernel"] = weights["head/kernel"]
    with pytest.raises(
        ValueError, match=r"missing 2 \['blocks_0_norm1/gamma', 'head/bias'\].*unexpected 1 \['head_dist/kernel'\]"
    ):
        qat.transfer_weights(broken, model)
    wrong = dict(weights, **{"head/kernel": np.zeros((32, 7), np.float32)})
    with pytest.raises(ValueError, match=r"head/kernel has shape \(32, 7\).*\(32, 10\)"):
        qat.transfer_weights(wrong, model)
    np.testing.assert_array_equal(model.get_layer("head").kernel.numpy(), before)


def test_transfer_from_keras_3_in_another_process(tmp_path):
    # PVT v2 holds a DepthwiseConv2D, whose kernel Keras 3 names `kernel` and tf-keras `depthwise_kernel`.
    model_cls, kwargs = TINY_FAMILIES["pvt_v2"]
    script = (
        "import sys, numpy as np\n"
        f"sys.path.insert(0, {os.getcwd()!r})\n"
        "import keras_vits\n"
        "from keras_vits import backend\n"
        "assert backend.IS_KERAS_3\n"
        "backend.keras.utils.set_random_seed(3)\n"
        f"model = keras_vits.{model_cls.__name__}(**{kwargs!r})\n"
        "x = np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype('float32')\n"
        "weights = {k: v.numpy() for k, v in backend.layer_weights(model).items()}\n"
        f"np.savez({str(tmp_path / 'weights.npz')!r}, **weights)\n"
        f"np.save({str(tmp_path / 'out.npy')!r}, model(x).numpy())\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    subprocess.run([sys.executable, "-c", script], check=True, env=env, capture_output=True, text=True)
    weights = dict(np.load(tmp_path / "weights.npz"))
    assert any(key.endswith("dwconv/kernel") for key in weights)
    model = tiny_model("pvt_v2")
    qat.transfer_weights(weights, model)
    out = model(np.random.default_rng(0).normal(size=(2, 32, 32, 1)).astype("float32")).numpy()
    np.testing.assert_allclose(out, np.load(tmp_path / "out.npy"), atol=1e-6)
