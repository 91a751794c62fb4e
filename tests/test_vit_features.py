"""ViT and DeiT as dense backbones: block maps, any input size, ViTDet's simple feature pyramid.

The shared battery runs on features-only and `dynamic_img_size` configs; parity with
timm's `forward_intermediates` and `dynamic_img_size=True` on fixtures from
tools/reference/make_vit_features_fixtures.py; the in-graph resampler against the load-time one.
"""

import json
import pathlib
import re
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from harness import ModelBattery, as_list, random_images
from safetensors.numpy import load_file

import keras_vits
from keras_vits import DeiT, VisionTransformer, load_timm_weights
from keras_vits.backend import IS_KERAS_3, keras
from keras_vits.export.tflite import TFLiteModel, convert_tflite
from keras_vits.layers import (
    DynamicPositionEmbedding,
    SliceTokens,
    TokensToMap,
    simple_feature_pyramid,
    with_simple_feature_pyramid,
)
from keras_vits.weights.resample import (
    resample_abs_pos_embed,
    resample_abs_pos_embed_in_graph,
    resize_matrix,
)

TINY = dict(image_size=32, patch_size=8, embed_dim=48, depth=3, num_heads=3, num_classes=0)
README = pathlib.Path(__file__).resolve().parent.parent / "README.md"


def _load(path):
    return keras.models.load_model(path, safe_mode=True) if IS_KERAS_3 else keras.models.load_model(path)


# ----------------------------------------------------------------------------- the shared battery


class FeaturesBattery(ModelBattery):
    """The battery on `features_only` models with one output map (the TFLite check runs one output)."""

    def expected_output_shape(self, model):
        config = model.get_config()
        patch = config["patch_size"]
        patch = (patch, patch) if isinstance(patch, int) else tuple(patch)
        height, width = self.input_shape(model)[1:3]
        return (self.batch_size, height // patch[0], width // patch[1], config["embed_dim"])


class TestViTFeatures(FeaturesBattery):
    model_cls = VisionTransformer
    configs = {
        "last_block": dict(TINY, features_only=True),
        "middle_normed_nonsquare": dict(
            TINY, features_only=True, out_indices=(-2,), features_norm=True, image_size=(32, 48), patch_size=(8, 4)
        ),
        "no_class_token_layer_scale": dict(
            TINY, features_only=True, out_indices=(1,), class_token=False, global_pool="avg", init_values=0.1
        ),
    }
    second_image_sizes = {"last_block": 48, "middle_normed_nonsquare": (16, 24), "no_class_token_layer_scale": 40}


class TestDeiTFeatures(FeaturesBattery):
    model_cls = DeiT
    configs = {"first_block_normed": dict(TINY, features_only=True, out_indices=(0,), features_norm=True)}
    second_image_sizes = {"first_block_normed": (48, 64)}


class DynamicBattery(ModelBattery):
    """The battery on `dynamic_img_size` models, called at `call_sizes` (not the stored size)."""

    call_sizes = {}

    def input_shape(self, model):
        return (self.batch_size, *self.call_sizes[self._config_name], model.inputs[0].shape[-1])

    def build(self, config_name, **overrides):
        self._config_name = config_name
        return super().build(config_name, **overrides)

    def test_custom_layers_round_trip_alone(self, config_name):
        # Every layer takes dynamic shapes here, which the harness cannot feed: the same layers at the
        # stored size (DynamicPositionEmbedding alone is in test_dynamic_layers_round_trip_alone).
        model = self.build(config_name, dynamic_img_size=False)
        has_maps = any(isinstance(layer, TokensToMap) for layer in model.layers)
        assert has_maps == bool(model.get_config()["features_only"])
        original, self.build = self.build, lambda name, **kw: original(name, dynamic_img_size=False, **kw)
        try:
            super().test_custom_layers_round_trip_alone(config_name)
        finally:
            del self.build

    def test_second_image_size(self, config_name):
        model = self.build(config_name)
        assert tuple(model.inputs[0].shape[1:3]) == (None, None)
        for size in ((16, 24), self.call_sizes[config_name], (40, 40)):
            out = model(random_images((1, *size, model.inputs[0].shape[-1])))
            assert tuple(as_list(out)[0].shape)[0] == 1

    def test_tflite_builtin_only_conversion_matches_keras(self, config_name):
        model = self.build(config_name)
        with pytest.raises(ValueError, match=r"fixed input size.*fixed_size_copy"):
            convert_tflite(model, "float32")
        size = self.call_sizes[config_name]
        fixed = model.fixed_size_copy(size)
        images = random_images((1, *size, model.inputs[0].shape[-1]))
        np.testing.assert_allclose(as_list(fixed(images))[0], as_list(model(images))[0], atol=1e-5)
        runner = TFLiteModel(convert_tflite(fixed, "float32"))
        ops = runner.delegation()
        assert not [op for op in ops if "FLEX" in op.upper() or "CUSTOM" in op.upper()], ops
        np.testing.assert_allclose(runner(images), as_list(model(images))[0].numpy(), rtol=1e-5, atol=1e-4)


class TestViTDynamic(DynamicBattery):
    model_cls = VisionTransformer
    configs = {
        "token": dict(TINY, num_classes=10, dynamic_img_size=True),
        "avg_no_class_token": dict(TINY, num_classes=10, dynamic_img_size=True, class_token=False, global_pool="avg"),
    }
    call_sizes = {"token": (48, 64), "avg_no_class_token": (24, 40)}


class TestDeiTDynamic(DynamicBattery):
    model_cls = DeiT
    configs = {"avg": dict(TINY, num_classes=10, dynamic_img_size=True, init_values=0.1)}
    call_sizes = {"avg": (40, 56)}


class TestViTDynamicFeatures(DynamicBattery, FeaturesBattery):
    model_cls = VisionTransformer
    configs = {"last_block": dict(TINY, features_only=True, dynamic_img_size=True)}
    call_sizes = {"last_block": (40, 24)}


# ----------------------------------------------------------------------------- features


def test_out_indices_pick_blocks_in_order_with_prefix_tokens_and_feature_info():
    model = DeiT(**TINY, features_only=True, out_indices=(0, -1), return_prefix_tokens=True)
    outputs = model(random_images((1, 32, 32, 3)))
    assert [tuple(o.shape) for o in outputs] == [(1, 4, 4, 48), (1, 2, 48), (1, 4, 4, 48), (1, 2, 48)]
    assert model.get_config()["out_indices"] == (0, 2)
    assert [dict(i) for i in model.feature_info] == [
        dict(num_chs=48, reduction=8, module="blocks_0"),
        dict(num_chs=48, reduction=8, module="blocks_2"),
    ]
    # Only the blocks up to the last one asked for are built, as timm prunes them.
    assert not [layer.name for layer in model.layers if layer.name.startswith("blocks_3")]
    assert len(VisionTransformer(**TINY, features_only=True, out_indices=(0,)).layers) < len(model.layers)


def test_every_family_has_feature_info_in_one_schema():
    vit = keras_vits.create_model("vit_tiny_patch16_224", features_only=True, out_indices=(2, 5, -1))
    swin = keras_vits.create_model("swin_tiny_patch4_window7_224", features_only=True, depths=(1, 1, 1, 1))
    assert [tuple(o.shape[1:]) for o in vit.outputs] == [(14, 14, 192)] * 3
    assert {tuple(sorted(i)) for i in vit.feature_info} == {tuple(sorted(i)) for i in swin.feature_info}
    assert [i["module"] for i in vit.feature_info] == ["blocks_2", "blocks_5", "blocks_11"]
    assert (
        keras_vits.create_model("deit_tiny_distilled_patch16_224", features_only=True).feature_info[0]["reduction"]
        == 16
    )


def _cases(fixtures_dir):
    cases = json.loads((fixtures_dir / "vit_features_cases.json").read_text())
    return {name: case for name, case in cases.items() if not name.startswith("_")}


FEATURE_CASES = ["vit_token", "vit_avg_ls", "deit_distilled", "vit_noprefix"]


def test_fixtures_cover_every_case(fixtures_dir):
    assert sorted(_cases(fixtures_dir)) == sorted(FEATURE_CASES)


def _model(case, **overrides):
    config = dict(case["config"])
    if case["family"] == "deit":
        assert (config.pop("global_pool"), config.pop("class_token"), config.pop("fc_norm")) == ("token", True, None)
        return DeiT(**{**config, **overrides})
    return VisionTransformer(**{**config, **overrides})


def _max_error(got, expected):
    return float(np.abs(np.asarray(got) - expected).max())


@pytest.mark.parametrize("norm", [False, True], ids=["before_norm", "normed"])
@pytest.mark.parametrize("case_name", FEATURE_CASES)
def test_block_maps_match_timm_forward_intermediates(case_name, norm, fixtures_dir):
    case = _cases(fixtures_dir)[case_name]
    depth, prefix = case["config"]["depth"], case["config"]["class_token"]
    model = _model(
        case,
        num_classes=0,
        features_only=True,
        out_indices=tuple(range(depth)),
        features_norm=norm,
        return_prefix_tokens=prefix,
    )
    skipped = load_timm_weights(model, fixtures_dir / case["checkpoint"])
    assert all(key.startswith(("head", "fc_norm", "norm")) for key in skipped), skipped
    # timm's final norm: `norm` over tokens, or none (Identity) when the model pools first (`fc_norm`).
    has_token_norm = case["config"]["global_pool"] == "token"
    assert any(key.startswith("norm.") for key in skipped) == (has_token_norm and not norm)
    io = load_file(str(fixtures_dir / case["features_io"]))
    outputs = as_list(model(io["images"]))
    suffix = "_norm" if norm else ""
    step = 2 if prefix else 1
    for block in range(depth):
        assert _max_error(outputs[step * block], io[f"block{block}{suffix}"]) <= 1e-4, block
        if prefix:
            assert _max_error(outputs[2 * block + 1], io[f"prefix{block}{suffix}"]) <= 1e-4, block
    # One block, by a negative index: the later blocks are not built and their weights are left unused.
    first = _model(case, num_classes=0, features_only=True, out_indices=(-depth,), features_norm=norm)
    skipped = load_timm_weights(first, fixtures_dir / case["checkpoint"])
    assert any(key.startswith(f"blocks.{depth - 1}.") for key in skipped)
    assert _max_error(as_list(first(io["images"]))[0], io[f"block0{suffix}"]) <= 1e-4


@pytest.mark.parametrize("case_name", FEATURE_CASES)
def test_dynamic_img_size_matches_timm_at_another_size(case_name, fixtures_dir):
    case = _cases(fixtures_dir)[case_name]
    io = load_file(str(fixtures_dir / case["dynamic_io"]))
    assert tuple(io["images"].shape[1:3]) == tuple(case["dynamic_image_size"]) != tuple(np.broadcast_to(0, 2))
    model = _model(case, dynamic_img_size=True)
    load_timm_weights(model, fixtures_dir / case["checkpoint"])
    assert _max_error(model(io["images"]), io["logits"]) <= 1e-4
    depth = case["config"]["depth"]
    features = _model(case, num_classes=0, dynamic_img_size=True, features_only=True, out_indices=tuple(range(depth)))
    load_timm_weights(features, fixtures_dir / case["checkpoint"])
    for block, out in enumerate(as_list(features(io["images"]))):
        assert _max_error(out, io[f"block{block}"]) <= 1e-4, block


@pytest.mark.parametrize("case_name", ["vit_token", "deit_distilled", "vit_noprefix"])
def test_dynamic_model_matches_a_model_built_for_that_size(case_name, fixtures_dir):
    case = _cases(fixtures_dir)[case_name]
    checkpoint = fixtures_dir / case["checkpoint"]
    size = (56, 40)
    dynamic = _model(case, dynamic_img_size=True)
    load_timm_weights(dynamic, checkpoint)
    fixed = _model(case, image_size=size)
    load_timm_weights(fixed, checkpoint)  # resampled at load time
    images = random_images((2, *size, case["config"]["in_chans"]))
    assert _max_error(dynamic(images), fixed(images).numpy()) <= 1e-4
    # At the stored size the embedding is added as stored: the same as the fixed-size model.
    stored = _model(case)
    load_timm_weights(stored, checkpoint)
    at_stored = random_images((2, 32, 32, case["config"]["in_chans"]))
    np.testing.assert_allclose(dynamic(at_stored), stored(at_stored), atol=1e-6)
    # The dynamic model's fixed-size copy is that model again.
    assert _max_error(dynamic.fixed_size_copy(size)(images), fixed(images).numpy()) <= 1e-5


def test_in_graph_resampling_matches_load_time_resampling():
    rng = np.random.default_rng(0)
    for old, new in [((4, 4), (6, 8)), ((14, 14), (64, 64)), ((8, 6), (3, 5)), ((7, 7), (2, 9)), ((5, 5), (5, 5))]:
        pos_embed = rng.normal(size=(1, 2 + old[0] * old[1], 16)).astype("float32")
        load_time = resample_abs_pos_embed(pos_embed, new, 2, old_grid=old)

        @tf.function(input_signature=[tf.TensorSpec((2,), tf.int32)])
        def in_graph(grid, pos_embed=pos_embed, old=old):
            return resample_abs_pos_embed_in_graph(pos_embed, tf.unstack(grid), 2, old)

        for got in (in_graph(tf.constant(new)), resample_abs_pos_embed_in_graph(pos_embed, new, 2, old)):
            got = np.asarray(got)
            assert got.shape == load_time.shape
            np.testing.assert_array_equal(got[:, :2], pos_embed[:, :2])
            assert _max_error(got, load_time) <= 1e-5, (old, new)


def test_resize_matrices_are_tensorflows_resize():
    """The NumPy matrices behind every resize equal tf.image.resize (bicubic antialiased; half-pixel bilinear)."""
    for method, antialias in (("bicubic", True), ("bilinear", False)):
        for old, new in ((5, 9), (9, 5), (14, 24), (24, 7), (6, 6)):
            identity = np.eye(old, dtype="float32")[None, :, None, :]  # (1, old, 1, old): column j is input j
            expected = tf.image.resize(identity, (new, 1), method=method, antialias=antialias).numpy()[0, :, 0, :]
            matrix = resize_matrix(old, new, method)
            np.testing.assert_allclose(matrix, expected, atol=2e-6, err_msg=f"{method} {old}->{new}")
            np.testing.assert_allclose(matrix.sum(axis=1), 1.0, atol=1e-6)


def test_dynamic_model_saves_as_a_saved_model_with_a_dynamic_size(tmp_path):
    model = VisionTransformer(**dict(TINY, num_classes=10), dynamic_img_size=True)
    serve = tf.function(lambda images: model(images, training=False))
    signature = serve.get_concrete_function(tf.TensorSpec((None, None, None, 3), tf.float32, name="images"))
    module = tf.Module()
    module.model = model
    tf.saved_model.save(module, str(tmp_path / "saved"), signatures={"serving_default": signature})
    loaded = tf.saved_model.load(str(tmp_path / "saved")).signatures["serving_default"]
    for size in ((32, 32), (48, 64)):
        images = random_images((2, *size, 3))
        (out,) = loaded(images=tf.constant(images)).values()
        np.testing.assert_allclose(out.numpy(), model(images).numpy(), atol=1e-5)
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiples of the patch"):
        loaded(images=tf.constant(random_images((1, 36, 32, 3))))


# ----------------------------------------------------------------------------- bad inputs


@pytest.mark.parametrize(
    "overrides, error, message",
    [
        (
            dict(out_indices=(3,)),
            ValueError,
            r"out_indices \(3,\) has \[3\] outside the 3 blocks: expected .*\[-3, 3\)",
        ),
        (dict(out_indices=(-4, 0)), ValueError, r"\[-4\] outside the 3 blocks"),
        (dict(out_indices=(1, 1)), ValueError, r"names a block twice"),
        (dict(out_indices=(2, -1)), ValueError, r"\(2, -1\) names a block twice \(as blocks \(2, 2\)"),
        (dict(out_indices=(2, 0)), ValueError, r"increasing block order"),
        (dict(out_indices=()), TypeError, r"one or more int block indices"),
        (dict(out_indices=2), TypeError, r"sequence of block indices.*got 2"),
        (dict(out_indices=(0.5,)), TypeError, r"int block indices, got \(0.5,\)"),
        (dict(num_classes=10), ValueError, r"features_only=True .* no head, got num_classes=10: pass num_classes=0"),
        (dict(class_token=False, global_pool="avg", return_prefix_tokens=True), ValueError, r"no class token"),
    ],
)
def test_features_reject_bad_arguments(overrides, error, message):
    with pytest.raises(error, match=message):
        VisionTransformer(**{**TINY, "features_only": True, **overrides})


def test_feature_arguments_need_features_only_and_dynamic_needs_a_learned_embedding():
    with pytest.raises(ValueError, match=r"out_indices=\(1,\), features_norm=True apply only with features_only"):
        VisionTransformer(**TINY, out_indices=(1,), features_norm=True)
    with pytest.raises(ValueError, match="pos_embed must be 'learned' or 'none', got 'sincos2d'"):
        DeiT(**TINY, dynamic_img_size=True, pos_embed="sincos2d")
    with pytest.raises(TypeError, match="dynamic_img_size must be True or False, got 'yes'"):
        VisionTransformer(**TINY, dynamic_img_size="yes")


def test_create_model_refuses_features_only_with_num_classes():
    with pytest.raises(ValueError, match=r"features_only=True\) .* got num_classes=10: leave num_classes out"):
        keras_vits.create_model("vit_tiny_patch16_224", features_only=True, num_classes=10)
    assert keras_vits.create_model("deit_tiny_patch16_224", features_only=True, num_classes=0, depth=2).outputs


def test_dynamic_size_that_is_not_a_multiple_of_the_patch_is_refused():
    model = DeiT(**TINY, dynamic_img_size=True)
    with pytest.raises(ValueError, match=r"multiples of patch_size \(8, 8\), got images of shape \(1, 36, 32, 3\)"):
        model(random_images((1, 36, 32, 3)))
    with pytest.raises(ValueError, match="multiples of patch_size"):
        model.predict(random_images((1, 32, 20, 3)), verbose=0)
    unknown = tf.function(lambda x: model(x), input_signature=[tf.TensorSpec((None, None, None, 3))])
    with pytest.raises(tf.errors.InvalidArgumentError, match="multiples of the patch"):
        unknown(random_images((1, 32, 44, 3)))


# ----------------------------------------------------------------------------- the new layers alone


@pytest.mark.parametrize(
    "layer, inputs",
    [
        (DynamicPositionEmbedding((2, 3), 4, num_prefix_tokens=1), [(1, 1 + 3 * 4, 8), (1, 12, 16, 3)]),
        (SliceTokens(1, 3), [(2, 5, 4)]),
        (SliceTokens(2), [(2, 5, 4)]),
        (TokensToMap((4, 2), num_prefix_tokens=2), [(2, 2 + 3 * 5, 6), (2, 12, 10, 1)]),
    ],
    ids=lambda value: type(value).__name__ if isinstance(value, keras.layers.Layer) else "",
)
def test_dynamic_layers_round_trip_alone(layer, inputs):
    arrays = [random_images(shape, seed=i) for i, shape in enumerate(inputs)]
    arrays = arrays if len(arrays) > 1 else arrays[0]
    expected = layer(arrays)
    base = set(keras.layers.Layer().get_config())
    owner = type(layer).__init__
    import inspect

    assert set(layer.get_config()) - base == set(inspect.signature(owner).parameters) - {"self", "kwargs"}
    clone = type(layer).from_config(json.loads(json.dumps(layer.get_config())))
    clone(arrays)
    clone.set_weights(layer.get_weights())
    np.testing.assert_allclose(clone(arrays).numpy(), expected.numpy(), atol=1e-6)


def test_tokens_to_map_lays_patches_out_row_major():
    tokens = np.arange(2 * (1 + 6) * 1, dtype="float32").reshape(2, 7, 1)
    out = TokensToMap(2)([tokens, np.zeros((2, 4, 6, 3), "float32")]).numpy()
    np.testing.assert_array_equal(out[..., 0], tokens[:, 1:, 0].reshape(2, 2, 3))


# ----------------------------------------------------------------------------- the simple feature pyramid


def _pyramid_model(backbone_kwargs=None, **kwargs):
    keras.utils.set_random_seed(0)
    backbone = VisionTransformer(
        **{
            **dict(image_size=64, patch_size=16, embed_dim=32, depth=1, num_heads=2, num_classes=0),
            **(backbone_kwargs or {}),
        },
        features_only=True,
    )
    return with_simple_feature_pyramid(backbone, **kwargs)


def test_simple_feature_pyramid_gives_strides_4_to_32_with_documented_channels():
    model = _pyramid_model(out_channels=24)
    outputs = model(random_images((1, 64, 64, 3)))
    assert [tuple(o.shape) for o in outputs] == [(1, 16, 16, 24), (1, 8, 8, 24), (1, 4, 4, 24), (1, 2, 2, 24)]
    assert [(i["num_chs"], i["reduction"]) for i in model.feature_info] == [(24, 4), (24, 8), (24, 16), (24, 32)]
    names = {layer.name for layer in model.layers}
    assert {"simfp_2_deconv1", "simfp_2_deconv2", "simfp_3_deconv1", "simfp_5_pool", "simfp_4_conv3x3_norm"} <= names
    # With norm, the convolutions carry no bias (ViTDet's norm="LN").
    assert model.get_layer("simfp_4_conv1x1").bias is None
    assert model.get_layer("simfp_2_deconv1").kernel.shape == (2, 2, 16, 32)
    assert model.get_layer("simfp_2_deconv2").kernel.shape == (2, 2, 8, 16)


def test_simple_feature_pyramid_trains_one_step_reaching_every_variable():
    model = _pyramid_model(out_channels=8)
    images = random_images((2, 64, 64, 3))
    with tf.GradientTape() as tape:
        loss = tf.add_n([tf.reduce_mean(tf.square(out)) for out in model(images, training=True)])
    grads = tape.gradient(loss, model.trainable_variables)
    assert not [v.name for v, g in zip(model.trainable_variables, grads) if g is None or not np.any(g.numpy())]
    model.compile(optimizer=keras.optimizers.SGD(0.01), loss=["mse"] * 4)
    targets = [np.zeros(tuple(o.shape), "float32") for o in model(images)]
    history = model.fit(images, tuple(targets), batch_size=2, epochs=1, verbose=0)
    assert np.isfinite(history.history["loss"][0])


def test_simple_feature_pyramid_converts_to_builtin_tflite_and_round_trips_keras(tmp_path):
    model = _pyramid_model(out_channels=8)
    images = random_images((1, 64, 64, 3))
    expected = [o.numpy() for o in model(images)]
    runner = TFLiteModel(convert_tflite(model, "float32"))
    ops = runner.delegation()
    assert not [op for op in ops if "FLEX" in op.upper() or "CUSTOM" in op.upper()], ops
    interpreter = runner.interpreter
    interpreter.set_tensor(interpreter.get_input_details()[0]["index"], images)
    interpreter.invoke()
    got = sorted(
        (interpreter.get_tensor(d["index"]) for d in interpreter.get_output_details()), key=lambda a: -a.shape[1]
    )
    for out, want in zip(got, expected):
        np.testing.assert_allclose(out, want, rtol=1e-5, atol=1e-4)
    path = str(tmp_path / "vitdet.keras")
    model.save(path)
    for out, want in zip(_load(path)(images), expected):
        np.testing.assert_allclose(out.numpy(), want, atol=1e-5)


def test_simple_feature_pyramid_on_a_dynamic_backbone_and_on_plain_tensors():
    model = _pyramid_model(dict(dynamic_img_size=True), out_channels=8, norm=False)
    for size in ((64, 64), (96, 32)):
        shapes = [tuple(o.shape[1:3]) for o in model(random_images((1, *size, 3)))]
        assert shapes == [(size[0] // s, size[1] // s) for s in (4, 8, 16, 32)]
    assert model.get_layer("simfp_4_conv1x1").bias is not None
    inputs = keras.Input((6, 6, 16))
    assert [tuple(t.shape[1:]) for t in simple_feature_pyramid(inputs, out_channels=4)] == [
        (24, 24, 4),
        (12, 12, 4),
        (6, 6, 4),
        (3, 3, 4),
    ]


def test_simple_feature_pyramid_refuses_other_backbones():
    two_maps = VisionTransformer(**TINY, features_only=True, out_indices=(0, 1))
    with pytest.raises(ValueError, match="one NHWC output map, got 2 outputs"):
        with_simple_feature_pyramid(two_maps)
    with pytest.raises(ValueError, match="needs a stride-16 map, got reduction 8"):
        with_simple_feature_pyramid(VisionTransformer(**TINY, features_only=True))
    with pytest.raises(ValueError, match="divisible by 4"):
        simple_feature_pyramid(keras.Input((4, 4, 6)))


# ----------------------------------------------------------------------------- README


def _readme_block(marker):
    text = README.read_text()
    match = re.search(rf"<!-- {marker} -->\s*```python\n(.*?)```", text, re.S)
    assert match, f"README has no python block after <!-- {marker} -->"
    return match.group(1)


@pytest.mark.slow
def test_readme_vitdet_example_runs_and_prints_the_shapes_it_shows(tmp_path):
    code = _readme_block("vitdet-example")
    shown = re.findall(r"# -> (.*)", code)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    printed = [line for line in result.stdout.splitlines() if line.strip()]
    assert printed == shown, (printed, shown)
