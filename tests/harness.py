"""The battery every model family runs: subclass `ModelBattery`, declare tiny configs.

Each test method runs once per entry of `configs` (see `conftest.py`). A family
module only states its model class, its configs and, where the model returns
more than one output in training, how to turn that into a loss.

Also one tiny classifier per family (`TINY_FAMILIES`, `tiny_model`), which the
export and QAT tests run.

With `pytest --one-config-per-family` (`make test-fast`), each battery runs on its first
config only (`is_extra_battery_config`): conversions, XLA and `fit` on every config are
what makes the battery slow. `make test` runs every config.
"""

import json

import numpy as np
import pytest

import keras_vits
from keras_vits import ops
from keras_vits.backend import BACKEND, IS_KERAS_3, dtype_name, keras
from keras_vits.layers import CUSTOM_LAYERS

_TINY_VIT = dict(image_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2, num_classes=10, in_chans=1)
_TINY_SWIN = dict(
    image_size=32,
    patch_size=2,
    embed_dim=16,
    depths=(2, 2),
    num_heads=(1, 2),
    window_size=4,
    num_classes=10,
    in_chans=1,
)
_TINY_PVT = dict(
    image_size=32, embed_dims=(8, 16, 16, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2), num_classes=10, in_chans=1
)
#: `{family: (model class, constructor kwargs)}`: one tiny 32x32 one-channel classifier of 10 classes per family.
TINY_FAMILIES = {
    "vit": (keras_vits.VisionTransformer, _TINY_VIT),
    "deit": (keras_vits.DeiT, _TINY_VIT),
    "swin": (keras_vits.SwinTransformer, _TINY_SWIN),
    "pvt_v1": (keras_vits.PyramidVisionTransformer, _TINY_PVT),
    "pvt_v2": (keras_vits.PyramidVisionTransformerV2, _TINY_PVT),
    "pvt_v2_li": (keras_vits.PyramidVisionTransformerV2, dict(_TINY_PVT, linear=True)),
}


def tiny_model(family, **overrides):
    """The tiny model of `family` (a key of `TINY_FAMILIES`), with constructor `overrides`."""
    model_cls, kwargs = TINY_FAMILIES[family]
    return model_cls(**{**kwargs, **overrides})


def is_extra_battery_config(item):
    """True for a pytest item that runs a battery test on any config but its battery's first."""
    battery = getattr(item, "cls", None)
    if battery is None or not issubclass(battery, ModelBattery) or not battery.configs:
        return False
    first_config = next(iter(battery.configs))
    return item.callspec.params.get("config_name") != first_config


def to_numpy(tensor):
    """A tensor of any backend (or tf-keras) as a NumPy array, detached from any gradient."""
    return keras.ops.convert_to_numpy(tensor) if IS_KERAS_3 else np.asarray(tensor)


def trainable_gradients(model, loss_of_outputs, images):
    """Gradients of `loss_of_outputs(model(images, training=True))` for each trainable variable, as
    NumPy arrays (None where it gets none), by the backend's own autodiff."""
    if BACKEND == "tensorflow":
        import tensorflow as tf

        with tf.GradientTape() as tape:
            loss = loss_of_outputs(model(images, training=True))
        grads = tape.gradient(loss, model.trainable_variables)
        return [None if g is None else to_numpy(tf.convert_to_tensor(g)) for g in grads]
    if BACKEND == "jax":
        import jax

        non_trainable = [v.value for v in model.non_trainable_variables]

        def loss_of(trainable):
            outputs, _ = model.stateless_call(trainable, non_trainable, images, training=True)
            return loss_of_outputs(outputs)

        return [np.asarray(g) for g in jax.grad(loss_of)([v.value for v in model.trainable_variables])]
    loss = loss_of_outputs(model(images, training=True))
    loss.backward()
    return [None if v.value.grad is None else to_numpy(v.value.grad) for v in model.trainable_variables]


def random_images(shape, seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def as_list(outputs):
    return list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]


class ModelBattery:
    """Checks every keras_vits model must pass, on tiny configs.

    Subclasses set:
        model_cls: the model class.
        configs: `{id: constructor kwargs}`; keep them tiny.
        second_image_sizes: `{id: another image_size}` for the non-default-size test.
    """

    model_cls = None
    configs = {}
    second_image_sizes = {}
    batch_size = 2

    # ------------------------------------------------------------------ helpers

    def build(self, config_name, **overrides):
        keras.utils.set_random_seed(0)
        return self.model_cls(**{**self.configs[config_name], **overrides})

    def input_shape(self, model):
        return (self.batch_size,) + tuple(model.inputs[0].shape[1:])

    def expected_output_shape(self, model):
        config = model.get_config()
        width = config["num_classes"] or self.feature_width(config)
        return (self.batch_size, width)

    def feature_width(self, config):
        return config["embed_dim"]

    def training_loss(self, outputs, labels):
        """Mean cross-entropy over every output the model returns in training."""
        losses = [
            keras.losses.sparse_categorical_crossentropy(labels, ops.cast(logits, "float32"), from_logits=True)
            for logits in as_list(outputs)
        ]
        return ops.mean(sum(losses))

    def custom_layers(self, model):
        return [layer for layer in model.layers if isinstance(layer, CUSTOM_LAYERS)]

    # ------------------------------------------------------------------ battery

    def test_output_shape_eager_and_predict(self, config_name):
        model = self.build(config_name)
        images = random_images(self.input_shape(model))
        eager = model(images)
        assert tuple(eager.shape) == self.expected_output_shape(model)
        predicted = model.predict(np.concatenate([images, images]), batch_size=self.batch_size, verbose=0)
        assert predicted.shape == (2 * self.batch_size,) + self.expected_output_shape(model)[1:]
        np.testing.assert_allclose(predicted[: self.batch_size], to_numpy(eager), atol=1e-5)

    def test_config_round_trip(self, config_name):
        model = self.build(config_name)
        config = model.get_config()
        rebuilt = self.model_cls.from_config(json.loads(json.dumps(config)))
        assert json.loads(json.dumps(rebuilt.get_config())) == json.loads(json.dumps(config))
        assert [layer.name for layer in rebuilt.layers] == [layer.name for layer in model.layers]
        assert rebuilt.count_params() == model.count_params()

    def test_custom_layers_round_trip_alone(self, config_name):
        model = self.build(config_name)
        layers = self.custom_layers(model)
        assert layers, "every ViT-family model holds custom layers"
        for layer in layers:
            config = layer.get_config()
            clone = type(layer).from_config(json.loads(json.dumps(config)))
            assert clone.get_config() == config, type(layer).__name__
            inputs = [random_images((1,) + tuple(t.shape[1:]), seed=i) for i, t in enumerate(as_list(layer.input))]
            inputs = inputs if isinstance(layer.input, (list, tuple)) else inputs[0]
            clone(inputs)  # builds the clone
            clone.set_weights(layer.get_weights())
            np.testing.assert_allclose(to_numpy(clone(inputs)), to_numpy(layer(inputs)), atol=1e-6)

    def test_keras_save_and_load(self, config_name, tmp_path):
        model = self.build(config_name)
        images = random_images(self.input_shape(model))
        path = str(tmp_path / "model.keras")
        model.save(path)
        loaded = keras.models.load_model(path, safe_mode=True) if IS_KERAS_3 else keras.models.load_model(path)
        assert type(loaded) is type(model)
        np.testing.assert_allclose(to_numpy(loaded(images)), to_numpy(model(images)), atol=1e-5)

    def test_mixed_precision(self, config_name):
        for policy in ("mixed_float16", "mixed_bfloat16"):
            keras.mixed_precision.set_global_policy(policy)
            try:
                model = self.build(config_name)
                images = random_images(self.input_shape(model))
                outputs = as_list(model(images, training=True)) + [model(images)]
            finally:
                keras.mixed_precision.set_global_policy("float32")
            assert all(dtype_name(v.dtype) == "float32" for v in model.weights), policy
            for out in outputs:
                assert np.all(np.isfinite(to_numpy(ops.cast(out, "float32")))), policy
            if model.get_config()["num_classes"]:
                assert all(dtype_name(out.dtype) == "float32" for out in outputs), f"{policy}: logits must be float32"

    def test_jit_compile_matches_graph(self, config_name):
        """XLA against the eager (or graph) call: tf.function's jit_compile, or jax.jit."""
        model = self.build(config_name)
        images = random_images(self.input_shape(model))
        if BACKEND == "tensorflow":
            import tensorflow as tf

            compiled = tf.function(lambda x: model(x, training=False), jit_compile=True)
        elif BACKEND == "jax":
            import jax

            compiled = jax.jit(lambda x: model(x, training=False))
        else:
            pytest.skip(f"no XLA compilation on the {BACKEND} backend")
        np.testing.assert_allclose(to_numpy(compiled(images)), to_numpy(model(images)), atol=1e-4)

    def test_training_step_reaches_every_variable(self, config_name):
        model = self.build(config_name)
        images = random_images(self.input_shape(model))
        labels = np.arange(self.batch_size) % max(1, model.get_config()["num_classes"])

        def loss_of(outputs):
            if model.get_config()["num_classes"]:
                return self.training_loss(outputs, labels)
            return sum(ops.mean(ops.cast(out, "float32") ** 2) for out in as_list(outputs))

        grads = trainable_gradients(model, loss_of, images)
        names = [v.name for v in model.trainable_variables]
        no_grad = [n for n, g in zip(names, grads) if g is None or not np.any(g)]
        assert not no_grad, f"variables without gradient: {no_grad}"

    def test_fit_one_step(self, config_name):
        """`fit` on the model; DeiT's two training heads go through DistillationModel under Keras 3.

        On PyTorch, Keras 3 builds a compiled loss from the inference output (DeiT's one averaged
        head), so under Keras 3 a two-output model trains through DistillationModel, as users train DeiT.
        """
        model = self.build(config_name)
        if not model.get_config()["num_classes"]:
            pytest.skip("a model without a head has no loss to fit")
        images = random_images(self.input_shape(model))
        labels = np.arange(self.batch_size) % model.get_config()["num_classes"]
        num_outputs = len(model.outputs)
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
        trainer, targets = model, labels
        if num_outputs > 1 and IS_KERAS_3:
            trainer = keras_vits.DistillationModel(model)
            trainer.compile(optimizer=keras.optimizers.SGD(0.01))
        elif num_outputs > 1:
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss=[loss] * num_outputs)
            targets = tuple([labels] * num_outputs)
        else:
            model.compile(optimizer=keras.optimizers.SGD(0.01), loss=loss)
        history = trainer.fit(images, targets, batch_size=self.batch_size, epochs=1, verbose=0)
        assert np.isfinite(history.history["loss"][0])

    def test_inference_is_deterministic(self, config_name):
        model = self.build(config_name, drop_rate=0.1, attn_drop_rate=0.1, drop_path_rate=0.1)
        images = random_images(self.input_shape(model))
        np.testing.assert_array_equal(to_numpy(model(images)), to_numpy(model(images)))
        predicted = model.predict(images, verbose=0)
        np.testing.assert_array_equal(model.predict(images, verbose=0), predicted)
        # predict may run another compiled graph (Keras picks XLA for an uncompiled model), whose
        # kernels round differently from the eager call's: equal within float32 rounding, not bit for bit.
        np.testing.assert_allclose(predicted, to_numpy(model(images)), rtol=1e-5, atol=1e-6)
        training_a = to_numpy(as_list(model(images, training=True))[0])
        training_b = to_numpy(as_list(model(images, training=True))[0])
        assert not np.array_equal(training_a, training_b), "dropout and drop path must act in training"

    def test_second_image_size(self, config_name):
        size = self.second_image_sizes[config_name]
        model = self.build(config_name, image_size=size)
        height, width = (size, size) if isinstance(size, int) else size
        assert tuple(model.inputs[0].shape[1:3]) == (height, width)
        assert tuple(model(random_images(self.input_shape(model))).shape) == self.expected_output_shape(model)

    def test_tflite_builtin_only_conversion_matches_keras(self, config_name):
        if BACKEND != "tensorflow":
            pytest.skip("TFLite converts TensorFlow models")
        from keras_vits.export.tflite import TFLiteModel, convert_tflite

        model = self.build(config_name)
        images = random_images((1,) + self.input_shape(model)[1:])
        # The shipped path: float32 mode converts with builtin ops only, at batch 1.
        runner = TFLiteModel(convert_tflite(model, "float32"))
        ops = runner.delegation()
        assert not [op for op in ops if "FLEX" in op.upper() or "CUSTOM" in op.upper()], ops
        (expected,) = as_list(model(images))
        got = runner(images)
        assert got.shape == tuple(expected.shape)
        np.testing.assert_allclose(
            got, to_numpy(expected), rtol=1e-5, atol=1e-4, err_msg=f"TFLite against Keras (ops: {sorted(ops)})"
        )

    def test_bad_inputs_raise_clear_errors(self, config_name):
        model = self.build(config_name)
        shape = self.input_shape(model)
        wrong_channels = shape[:-1] + (shape[-1] + 2,)
        for bad, message in (
            (random_images(shape[1:]), "rank"),
            (random_images(wrong_channels), "channels"),
            (np.zeros(shape, np.uint8), "float"),
        ):
            try:
                model(bad)
            except (ValueError, TypeError) as error:
                assert message in str(error), str(error)
            else:
                raise AssertionError(f"no error for input {bad.shape} {bad.dtype}")
