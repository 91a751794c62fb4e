"""The public API on whichever Keras backend runs the tests: TensorFlow, JAX or PyTorch.

`make test` runs this module on all three (JAX and PyTorch in a venv without TensorFlow).
The parity fixtures hold timm's logits for each family; every backend must give them
within 1e-5, so any two backends agree within 2e-5 of each other (TensorFlow itself is
within about 1e-6 of timm on these fixtures).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest
from harness import tiny_model
from safetensors.numpy import load_file

import keras_vits
from keras_vits.backend import BACKEND, IS_KERAS_3, keras
from keras_vits.weights import load_timm_weights

pytestmark = pytest.mark.skipif(not IS_KERAS_3, reason="Keras 3 backends only")

PARITY_TOLERANCE = 1e-5


def _cases(fixtures_dir, file_name):
    cases = json.loads((fixtures_dir / file_name).read_text())
    return {name: case for name, case in cases.items() if not name.startswith("_")}


def _vit_model(case, **overrides):
    config = dict(case["config"], **overrides)
    if case["family"] == "deit":
        for key in ("global_pool", "class_token", "fc_norm"):  # fixed in timm's distilled ViT
            config.pop(key)
        return keras_vits.DeiT(**config)
    return keras_vits.VisionTransformer(**config)


def _pvt_model(case, **overrides):
    model_cls = (
        keras_vits.PyramidVisionTransformerV2 if case["family"] == "pvt_v2" else keras_vits.PyramidVisionTransformer
    )
    return model_cls(**case["config"], **overrides)


def _swin_model(case, **overrides):
    return keras_vits.SwinTransformer(**case["config"], pad_before_shift=False, **overrides)


#: `(cases file, case, io file, builder)` for one parity fixture of each family and variant.
PARITY = [
    ("cases.json", "vit_token", "vit_token_io", _vit_model),
    ("cases.json", "vit_avg_ls", "vit_avg_ls_io", _vit_model),
    ("cases.json", "deit_distilled", "deit_distilled_io", _vit_model),
    ("cases.json", "vit_token_resample48", "vit_token_resample48_io", _vit_model),
    ("swin_cases.json", "tiny4", "swin_tiny4_io", _swin_model),
    ("swin_cases.json", "pad", "swin_pad_io", _swin_model),
    ("swin_cases.json", "window_resample", "swin_window_resample_io", _swin_model),
    ("pvt_cases.json", "v2_tiny", "pvt_v2_tiny_io", _pvt_model),
    ("pvt_cases.json", "v2_linear", "pvt_v2_linear_io", _pvt_model),
    ("pvt_cases.json", "v1_tiny", "pvt_v1_tiny_io", _pvt_model),
    ("pvt_cases.json", "v1_resize", "pvt_v1_resize_io", _pvt_model),
]


def _max_error(got, expected):
    return float(np.max(np.abs(keras.ops.convert_to_numpy(got) - expected)))


@pytest.mark.parametrize("cases_file, case_name, io_name, build", PARITY, ids=[p[2] for p in PARITY])
def test_logits_match_the_reference_on_this_backend(cases_file, case_name, io_name, build, fixtures_dir):
    case = _cases(fixtures_dir, cases_file)[case_name]
    model = build(case)
    load_timm_weights(model, fixtures_dir / case["checkpoint"])
    io = load_file(str(fixtures_dir / f"{io_name}.safetensors"))
    assert _max_error(model(io["images"]), io["logits"]) < PARITY_TOLERANCE
    if "logits_cls" in io:  # DeiT: both heads in training mode
        cls_logits, dist_logits = model(io["images"], training=True)
        assert _max_error(cls_logits, io["logits_cls"]) < PARITY_TOLERANCE
        assert _max_error(dist_logits, io["logits_dist"]) < PARITY_TOLERANCE


def test_stage_maps_match_the_reference(fixtures_dir):
    for cases_file, case_name, io_name, build in (
        ("swin_cases.json", "features", "swin_features_io", _swin_model),
        ("pvt_cases.json", "v2_features", "pvt_v2_features_io", _pvt_model),
        ("pvt_cases.json", "v1_features", "pvt_v1_features_io", _pvt_model),
    ):
        case = _cases(fixtures_dir, cases_file)[case_name]
        model = build(case, features_only=True)
        load_timm_weights(model, fixtures_dir / case["checkpoint"])
        io = load_file(str(fixtures_dir / f"{io_name}.safetensors"))
        for index, stage in enumerate(model(io["images"])):
            assert _max_error(stage, io[f"stage_{index}"]) < PARITY_TOLERANCE, (case_name, index)


def test_create_model_loads_a_checkpoint_path(fixtures_dir):
    case = _cases(fixtures_dir, "cases.json")["deit_distilled"]
    config = {k: v for k, v in case["config"].items() if k not in ("global_pool", "class_token", "fc_norm")}
    model = keras_vits.create_model(
        "deit_tiny_distilled_patch16_224", weights=fixtures_dir / case["checkpoint"], **config
    )
    io = load_file(str(fixtures_dir / "deit_distilled_io.safetensors"))
    assert _max_error(model(io["images"]), io["logits"]) < PARITY_TOLERANCE


_TINY_PVT = dict(image_size=64, embed_dims=(8, 16, 16, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2))
_TINY_PVT["sr_ratios"] = (2, 2, 1, 1)  # with 64 px, every stage attends over more than one key


#: What the backend checks change in the battery's tiny models (`harness.TINY_FAMILIES`), besides RGB
#: input and 5 classes: ViT and DeiT two blocks deep, PVT reducing keys in its first two stages only.
_BACKEND_OVERRIDES = {
    "vit": dict(depth=2),
    "deit": dict(depth=2),
    "pvt_v1": dict(sr_ratios=(2, 2, 1, 1)),
    "pvt_v2": dict(sr_ratios=(2, 2, 1, 1)),
}


def _tiny(family, **overrides):
    keras.utils.set_random_seed(0)
    return tiny_model(family, **{"in_chans": 3, "num_classes": 5, **_BACKEND_OVERRIDES.get(family, {}), **overrides})


FAMILIES = ("vit", "deit", "swin", "pvt_v1", "pvt_v2")


def _images(batch=2, size=32, seed=0):
    return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype("float32")


@pytest.mark.parametrize("family", FAMILIES)
def test_keras_file_round_trip_and_config(family, tmp_path):
    model = _tiny(family, drop_path_rate=0.1)
    images = _images(size=model.input_shape[1])
    expected = keras.ops.convert_to_numpy(model(images))
    path = tmp_path / "model.keras"
    model.save(path)
    restored = keras.models.load_model(path, safe_mode=True)
    assert type(restored) is type(model)
    assert _max_error(restored(images), expected) < 1e-6
    rebuilt = type(model).from_config(json.loads(json.dumps(model.get_config())))
    assert rebuilt.count_params() == model.count_params()


@pytest.mark.parametrize("family", FAMILIES)
def test_a_keras_file_saved_by_tensorflow_loads_with_its_logits(family, fixtures_dir):
    """tools/reference/make_keras_file_fixtures.py saved these under the TensorFlow backend."""
    folder = fixtures_dir / "keras_files"
    model = keras.models.load_model(folder / f"{family}.keras", safe_mode=True)
    io = load_file(str(folder / f"{family}_io.safetensors"))
    assert _max_error(model(io["images"]), io["logits"]) < PARITY_TOLERANCE


@pytest.mark.parametrize(
    "family", [f if f in ("vit", "deit") else pytest.param(f, marks=pytest.mark.slow) for f in FAMILIES]
)
def test_one_fit_step_trains_every_weight_under_mixed_precision(family):
    keras.config.set_dtype_policy("mixed_bfloat16")
    try:
        model = _tiny(family, drop_path_rate=0.1)
    finally:
        keras.config.set_dtype_policy("float32")
    if family == "deit":  # its two training heads train through DistillationModel
        trainer = keras_vits.DistillationModel(model)
        trainer.compile(optimizer=keras.optimizers.AdamW(1e-2))
    else:
        trainer = model
        model.compile(optimizer=keras.optimizers.AdamW(1e-2), loss=keras.losses.SparseCategoricalCrossentropy(True))
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    images, labels = _images(4, size=model.input_shape[1]), np.arange(4) % 5
    trainer.fit(images, labels, batch_size=4, epochs=1, verbose=0)
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    # A key bias gets no gradient at all (softmax is shift-invariant), and in the 2x2-token last stage of
    # a tiny PVT a query bias can get none either; whether they move then depends on rounding noise.
    unchanged = [
        v.path
        for v, b, a in zip(model.trainable_variables, before, after)
        if np.array_equal(b, a) and not v.path.endswith(("attn_k/bias", "attn_q/bias"))
    ]
    assert not unchanged, unchanged
    assert keras.ops.convert_to_numpy(model(images)).dtype == np.float32  # the head computes in float32


def test_features_only_and_dynamic_image_size():
    maps = _tiny("swin", num_classes=0, features_only=True)(_images())
    assert [tuple(m.shape) for m in maps] == [(2, 16, 16, 16), (2, 8, 8, 32)]
    dynamic = _tiny("vit", dynamic_img_size=True)
    fixed = dynamic.fixed_size_copy((48, 40))
    images = _images(size=48)[:, :, :40]
    assert _max_error(dynamic(images), keras.ops.convert_to_numpy(fixed(images))) < 1e-5


def test_count_macs_is_the_same_on_every_backend():
    # Counted from layer shapes alone; the figure is timm's (fvcore) for deit_tiny_patch16_224.
    model = keras_vits.create_model("deit_tiny_patch16_224")
    assert keras_vits.count_macs(model) == pytest.approx(1.26e9, rel=0.02)


@pytest.mark.skipif(BACKEND == "tensorflow", reason="JAX and PyTorch only: their venv holds no TensorFlow")
def test_import_keras_vits_needs_no_tensorflow():
    code = "import sys, keras_vits; keras_vits.create_model('vit_tiny_patch16_224'); print('tensorflow' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ), check=True)
    assert out.stdout.strip().splitlines()[-1] == "False"


@pytest.mark.skipif(BACKEND == "tensorflow", reason="the TensorFlow-only features run on TensorFlow")
@pytest.mark.parametrize(
    "statement, feature",
    [
        ("import keras_vits.export", "keras_vits.export"),
        ("keras_vits.compile_for_inference", "keras_vits.inference"),
        ("from keras_vits.training import train", "keras_vits.training.loop"),
    ],
)
def test_tensorflow_only_features_name_the_backend(statement, feature):
    code = f"import keras_vits\n{statement}"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=dict(os.environ))
    assert out.returncode != 0
    message = out.stderr.strip().splitlines()[-1]
    assert feature in message and repr(BACKEND) in message and "KERAS_BACKEND=tensorflow" in message, message


# ----------------------------------------------------------------------------- Keras conventions


# Every family in bfloat16; mixed_float16 takes the same path, so one family shows it.
@pytest.mark.parametrize("family, dtype", [(f, "bfloat16") for f in FAMILIES] + [("swin", "mixed_float16")])
def test_a_models_own_dtype_reaches_every_sublayer_and_round_trips(family, dtype, tmp_path):
    model = _tiny(family, dtype=dtype)
    assert keras.config.dtype_policy().name == "float32"  # the global policy is left as it was
    expected = keras.dtype_policies.get(dtype).compute_dtype
    # The heads compute in float32 by design, so that logits are float32.
    computing = {layer.compute_dtype for layer in model.layers if layer.weights and not layer.name.startswith("head")}
    assert computing == {expected}
    images = _images(size=model.input_shape[1])
    assert keras.ops.convert_to_numpy(model(images)).dtype == np.float32
    model.save(tmp_path / "model.keras")
    restored = keras.models.load_model(tmp_path / "model.keras", safe_mode=True)
    assert restored.dtype_policy.name == dtype
    assert {
        layer.compute_dtype for layer in restored.layers if layer.weights and not layer.name.startswith("head")
    } == {expected}


@pytest.mark.parametrize("family", FAMILIES)
def test_compute_output_spec_takes_arrays(family):
    model = _tiny(family)
    images = _images(size=model.input_shape[1])
    spec = model.compute_output_spec(images)
    assert tuple(spec.shape) == (2, 5) and spec.dtype == "float32"
    if family == "deit":
        assert [tuple(s.shape) for s in model.compute_output_spec(images, training=True)] == [(2, 5), (2, 5)]


# Every family in int8; float8 quantizes the same Dense layers, so two families show it.
@pytest.mark.parametrize(
    "family, mode",
    [(f, "int8") if f == "vit" else pytest.param(f, "int8", marks=pytest.mark.slow) for f in FAMILIES]
    + [("vit", "float8"), ("pvt_v2", "float8")],
)
def test_a_quantized_model_saves_and_reloads(family, mode, tmp_path):
    model = _tiny(family)
    images = _images(size=model.input_shape[1])
    model.quantize(mode)
    assert {layer.quantization_mode for layer in model.layers if isinstance(layer, keras.layers.Dense)} == {mode}
    expected = keras.ops.convert_to_numpy(model(images))
    model.save(tmp_path / "quantized.keras")
    restored = keras.models.load_model(tmp_path / "quantized.keras", safe_mode=True)
    dense = [layer for layer in restored.layers if isinstance(layer, keras.layers.Dense)]
    assert {layer.quantization_mode for layer in dense} == {mode}
    assert _max_error(restored(images), expected) < 1e-6


def test_a_dtype_policy_map_quantizes_the_layers_it_names():
    policy_map = keras.dtype_policies.DTypePolicyMap(
        default_policy="float32", policy_map={"blocks_0_attn_qkv": "int8_from_float32"}
    )
    model = _tiny("vit", dtype=policy_map)
    modes = {layer.name: layer.quantization_mode for layer in model.layers if isinstance(layer, keras.layers.Dense)}
    assert modes.pop("blocks_0_attn_qkv") == "int8"
    assert set(modes.values()) == {None}
    assert keras.ops.convert_to_numpy(model(_images())).shape == (2, 5)


def test_an_unknown_backend_is_keras_own_error():
    env = dict(os.environ, KERAS_BACKEND="no_such_backend")
    env.pop("TF_USE_LEGACY_KERAS", None)
    out = subprocess.run([sys.executable, "-c", "import keras_vits"], capture_output=True, text=True, env=env)
    assert out.returncode != 0
    last = out.stderr.strip().splitlines()[-1]
    assert last.startswith("ValueError") and "no_such_backend" in last, last


def test_layer_decay_moves_each_layer_by_its_rate_on_this_backend():
    """Adam's first step moves a weight by its learning rate: here `1e-2 * 0.5 ** (top - depth)`."""
    from keras_vits.finetune import layer_decay_optimizer

    model = _tiny("swin")
    optimizer = layer_decay_optimizer(model, 1e-2, layer_decay=0.5, weight_decay=0.0)
    depths = model.layer_depths()
    top = max(depths.values())
    variables = model.trainable_variables
    before = [keras.ops.convert_to_numpy(v) for v in variables]
    optimizer.apply_gradients([(keras.ops.ones(v.shape), v) for v in variables])
    owner = {id(v): layer.name for layer in model.layers for v in layer.trainable_weights}
    for variable, old in zip(variables, before):
        expected = 1e-2 * 0.5 ** (top - depths[owner[id(variable)]])
        moved = np.abs(keras.ops.convert_to_numpy(variable) - old)
        np.testing.assert_allclose(moved, expected, rtol=1e-3, err_msg=variable.path)
