"""keras_vits.distillation: the DeiT losses against their formulas, and the model under compile/fit/evaluate.

Backend-neutral: `make test` runs this module on TensorFlow, JAX and PyTorch (tests/test_backends.py
holds the rest of the cross-backend checks).
"""

import json
import os
import subprocess
import sys

import numpy as np
import pytest

import keras_vits
from keras_vits.backend import BACKEND, IS_KERAS_3, keras

pytestmark = [pytest.mark.keras3_only, pytest.mark.skipif(not IS_KERAS_3, reason="Keras 3 only")]

if IS_KERAS_3:
    from keras_vits.distillation import (
        DistillationModel,
        distillation_losses,
        renormalize,
        teacher_targets,
        to_targets,
    )

NUM_CLASSES = 5


def _numpy(tensor):
    return keras.ops.convert_to_numpy(tensor)


def _softmax(z):
    e = np.exp(z - z.max(-1, keepdims=True))
    return e / e.sum(-1, keepdims=True)


def _ce(targets, logits):
    return -(targets * np.log(_softmax(logits))).sum(-1)


@pytest.fixture
def batch():
    rng = np.random.default_rng(0)
    cls_logits = rng.normal(size=(6, NUM_CLASSES)).astype("float32") * 2
    dist_logits = rng.normal(size=(6, NUM_CLASSES)).astype("float32") * 2
    teacher = rng.normal(size=(6, NUM_CLASSES)).astype("float32") * 3
    labels = rng.integers(0, NUM_CLASSES, size=6)
    return cls_logits, dist_logits, teacher, np.eye(NUM_CLASSES, dtype="float32")[labels]


def test_no_distillation_is_cross_entropy(batch):
    cls_logits, dist_logits, _, y = batch
    single = distillation_losses(cls_logits, y, mode="none")
    np.testing.assert_allclose(single["loss"], _ce(y, cls_logits), rtol=1e-5)
    pair = distillation_losses((cls_logits, dist_logits), y, mode="none")
    np.testing.assert_allclose(pair["loss"], (_ce(y, cls_logits) + _ce(y, dist_logits)) / 2, rtol=1e-5)


@pytest.mark.parametrize("alpha, tau", [(0.5, 1.0), (0.3, 3.0)])
def test_soft_distillation_matches_the_paper(batch, alpha, tau):
    cls_logits, dist_logits, teacher, y = batch
    losses = distillation_losses((cls_logits, dist_logits), y, teacher, mode="soft", alpha=alpha, tau=tau)
    p_t, p_s = _softmax(teacher / tau), _softmax(dist_logits / tau)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(-1)
    expected = (1 - alpha) * _ce(y, cls_logits) + alpha * tau**2 * kl
    np.testing.assert_allclose(losses["loss"], expected, rtol=1e-5)
    np.testing.assert_allclose(losses["distillation_loss"], tau**2 * kl, rtol=1e-4)


@pytest.mark.parametrize("smoothing", [0.0, 0.1])
def test_hard_distillation_matches_the_paper(batch, smoothing):
    cls_logits, dist_logits, teacher, y = batch
    losses = distillation_losses((cls_logits, dist_logits), y, teacher, mode="hard", teacher_label_smoothing=smoothing)
    # The paper's smoothing: 1 - eps on the teacher's class, eps / (K - 1) on each of the others.
    one_hot = np.eye(NUM_CLASSES)[teacher.argmax(-1)]
    y_teacher = one_hot * (1 - smoothing) + (1 - one_hot) * smoothing / (NUM_CLASSES - 1)
    expected = 0.5 * _ce(y, cls_logits) + 0.5 * _ce(y_teacher, dist_logits)
    np.testing.assert_allclose(losses["loss"], expected, rtol=1e-5)


def test_usual_distillation_uses_the_one_head_twice(batch):
    cls_logits, _, teacher, y = batch
    losses = distillation_losses(cls_logits, y, teacher, mode="hard")
    y_teacher = np.eye(NUM_CLASSES)[teacher.argmax(-1)]
    np.testing.assert_allclose(losses["loss"], 0.5 * _ce(y, cls_logits) + 0.5 * _ce(y_teacher, cls_logits), rtol=1e-5)


def test_targets_from_integer_labels_and_passthrough():
    np.testing.assert_array_equal(to_targets(np.array([2, 0]), 3), [[0, 0, 1], [1, 0, 0]])
    mixed = np.array([[0.3, 0.7, 0.0]], "float32")
    np.testing.assert_array_equal(to_targets(mixed, 3), mixed)


def _gray_to_rgb(images):
    return keras.ops.repeat(images, 3, axis=-1)


def _student(num_classes=NUM_CLASSES, **overrides):
    return keras_vits.DeiT(
        image_size=16,
        patch_size=8,
        in_chans=1,
        num_classes=num_classes,
        embed_dim=16,
        depth=1,
        num_heads=2,
        **overrides,
    )


def _teacher(image_size=24, channels=3, num_classes=NUM_CLASSES, activation=None):
    inputs = keras.Input((image_size, image_size, channels))
    x = keras.layers.Conv2D(4, 3, strides=2)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(num_classes, activation=activation)(x))


def _data(n=16):
    rng = np.random.default_rng(1)
    return rng.normal(size=(n, 16, 16, 1)).astype("float32"), rng.integers(0, NUM_CLASSES, size=n)


@pytest.mark.parametrize("mode", ["none", "soft", "hard"])
def test_fit_and_evaluate_with_a_teacher_of_another_size_and_channels(mode):
    student = _student()
    teacher = _teacher() if mode != "none" else None
    model = DistillationModel(
        student, teacher, mode=mode, teacher_preprocessing=lambda x: keras.ops.repeat(x, 3, axis=-1) * 2.0
    )
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    teacher_before = [w.copy() for w in teacher.get_weights()] if teacher else []
    student_before = [w.copy() for w in student.get_weights()]
    x, y = _data()
    history = model.fit(x, y, batch_size=8, epochs=1, verbose=0)
    assert {"loss", "label_loss", "distillation_loss", "top1"} <= set(history.history)
    assert np.isfinite(history.history["loss"][0])
    if mode != "none":
        assert history.history["distillation_loss"][0] > 0
        for before, after in zip(teacher_before, teacher.get_weights()):
            np.testing.assert_array_equal(before, after)  # the teacher never learns
    changed = [not np.array_equal(b, a) for b, a in zip(student_before, student.get_weights())]
    assert all(changed), "every student weight gets a gradient (both heads)"
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert {"top1_cls", "top1_dist", "top1_avg"} <= set(logs)
    cls_out, dist_out = (_numpy(t) for t in student.both_heads(x))
    expected_avg = np.mean(np.argmax((cls_out + dist_out) / 2, -1) == y)
    assert logs["top1_avg"] == pytest.approx(expected_avg)


def test_teacher_loss_matches_a_hand_computed_step():
    student, teacher = _student(), _teacher(image_size=16, channels=1)
    model = DistillationModel(student, teacher, mode="soft", alpha=0.4, tau=2.0)
    model.compile(optimizer=keras.optimizers.SGD(0.0))
    x, y = _data(8)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    cls_out, dist_out = (_numpy(t) for t in student.both_heads(x))
    z_t = _numpy(teacher(x, training=False))
    p_t, p_s = _softmax(z_t / 2), _softmax(dist_out / 2)
    kl = (p_t * (np.log(p_t) - np.log(p_s))).sum(-1)
    expected = np.mean(0.6 * _ce(np.eye(NUM_CLASSES)[y], cls_out) + 0.4 * 4 * kl)
    assert logs["loss"] == pytest.approx(expected, rel=1e-5)


def test_other_students_get_one_top1_row():
    student = keras_vits.VisionTransformer(
        image_size=16, patch_size=8, in_chans=1, num_classes=NUM_CLASSES, embed_dim=16, depth=1, num_heads=2
    )
    model = DistillationModel(student, _teacher(image_size=16, channels=1), mode="hard")
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    x, y = _data()
    model.fit(x, y, batch_size=8, verbose=0)
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert "top1" in logs and "top1_cls" not in logs


def test_a_softmax_teacher_is_read_as_log_probabilities():
    teacher = _teacher(image_size=16, channels=1, activation="softmax")
    model = DistillationModel(_student(), teacher, mode="soft")
    x, _ = _data(4)
    probabilities = _numpy(teacher(x))
    np.testing.assert_allclose(_softmax(_numpy(model.teacher_logits(x))), probabilities, rtol=1e-4, atol=1e-6)


def test_bad_setups_fail_before_training():
    with pytest.raises(ValueError, match="teacher predicts 7 classes and the student 5"):
        DistillationModel(_student(), _teacher(num_classes=7), mode="hard")
    with pytest.raises(ValueError, match="needs a teacher"):
        DistillationModel(_student(), mode="soft")
    with pytest.raises(ValueError, match="mode must be one of"):
        DistillationModel(_student(), _teacher(), mode="medium")
    with pytest.raises(ValueError, match="alpha"):
        DistillationModel(_student(), _teacher(), mode="soft", alpha=1.5)
    with pytest.raises(
        ValueError, match="teacher takes 3-channel images and the student 1; pass teacher_preprocessing"
    ):
        DistillationModel(_student(), _teacher(), mode="hard")


@pytest.mark.parametrize(
    "arguments, error, message",
    [
        (dict(alpha="0.5"), TypeError, "alpha must be a number, got '0.5'"),
        (dict(tau=None), TypeError, "tau must be a number"),
        (dict(tau=0.0), ValueError, "tau > 0"),
        (dict(alpha=-0.1), ValueError, "0 <= alpha <= 1"),
        (dict(label_smoothing=1.0), ValueError, r"label_smoothing must be in \[0, 1\), got 1.0"),
        (dict(teacher_label_smoothing=-0.1), ValueError, "teacher_label_smoothing must be in"),
        (dict(teacher_label_smoothing=True), TypeError, "teacher_label_smoothing must be a number"),
        (dict(teacher="teacher.keras"), TypeError, "The teacher must be a Keras model, got str"),
        (dict(teacher_preprocessing=3), TypeError, "teacher_preprocessing must be callable"),
    ],
)
def test_each_bad_argument_is_named(arguments, error, message):
    with pytest.raises(error, match=message):
        DistillationModel(_student(), arguments.pop("teacher", _teacher()), mode="hard", **arguments)


def test_a_student_that_is_not_a_model_is_named():
    with pytest.raises(TypeError, match="The student must be a Keras model, got dict"):
        DistillationModel({"weights": 1})


def test_deit_both_heads_agree_with_inference_heads():
    student = _student()
    x, _ = _data(2)
    cls_out, dist_out = (_numpy(t) for t in student.both_heads(x))
    np.testing.assert_allclose(_numpy(student(x)), (cls_out + dist_out) / 2, atol=1e-6)


def test_a_keras_applications_convnet_teaches():
    teacher = keras.applications.MobileNetV3Small(
        weights=None, input_shape=(32, 32, 3), classes=NUM_CLASSES, include_preprocessing=False
    )
    model = DistillationModel(_student(), teacher, mode="soft", teacher_preprocessing=_gray_to_rgb)
    assert model.teacher_outputs_probabilities and model.teacher_image_size == (32, 32)
    model.compile(optimizer=keras.optimizers.AdamW(1e-3))
    x, y = _data(8)
    history = model.fit(x, y, batch_size=8, verbose=0)
    assert np.isfinite(history.history["distillation_loss"][0])


def test_teacher_label_smoothing_is_the_papers():
    targets = _numpy(teacher_targets(np.array([[0.1, 2.0, -1.0, 0.3, 0.0]], "float32"), 0.1))
    np.testing.assert_allclose(targets, [[0.025, 0.9, 0.025, 0.025, 0.025]], rtol=1e-6)


def test_losses_match_the_tensorflow_backends_within_1e_5(fixtures_dir):
    """The fixture holds the TensorFlow backend's losses (tools/reference/make_distillation_fixture.py)."""
    sys.path.insert(0, str(fixtures_dir.parents[1] / "tools" / "reference"))
    try:
        from make_distillation_fixture import losses_of
    finally:
        sys.path.pop(0)
    fixture = json.loads((fixtures_dir / "distillation_losses.json").read_text())
    for name, case in fixture["cases"].items():
        losses = losses_of(fixture["inputs"], case["arguments"])
        for key, expected in case["losses"].items():
            np.testing.assert_allclose(losses[key], expected, rtol=0, atol=1e-5, err_msg=f"{name}: {key}")


def test_labels_outside_the_classes_are_refused_or_poison_the_loss():
    model = DistillationModel(_student())
    model.compile(optimizer=keras.optimizers.SGD(0.1))
    x, y = _data(8)
    with pytest.raises(ValueError, match=r"class indices in \[0, 4\] for a model of 5 classes; got values from 1 to 7"):
        model.fit(x, np.where(y == 0, 7, y), batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"class indices in \[0, 4\]"):
        model.evaluate(x, y - 1, batch_size=8, verbose=0)
    with pytest.raises(ValueError, match=r"targets \(B, 5\); got shape \(8, 3\)"):
        to_targets(np.zeros((8, 3), "float32"), NUM_CLASSES)
    # Inside a compiled step a label cannot raise: it gives NaN targets, so the loss is NaN, not a silent 0.
    targets = _numpy(to_targets(np.array([1, 5, -1]), NUM_CLASSES))
    assert np.isfinite(targets[0]).all() and np.isnan(targets[1:]).all()


def test_compile_takes_no_loss_and_fit_no_sample_weights():
    model = DistillationModel(_student())
    with pytest.raises(TypeError, match="takes no loss"):
        model.compile(optimizer="sgd", loss="categorical_crossentropy")
    model.compile(optimizer="sgd")
    x, y = _data(8)
    with pytest.raises(ValueError, match="takes no sample weights"):
        model.fit(x, y, sample_weight=np.ones(8), batch_size=8, verbose=0)


@pytest.mark.parametrize("policy", ["mixed_float16", "mixed_bfloat16"])
def test_mixed_precision_student_trains_with_the_same_losses(policy):
    x, y = _data(8)
    reference = DistillationModel(_student(), _teacher(image_size=16, channels=1), mode="soft")
    reference.compile(optimizer=keras.optimizers.SGD(0.01))
    expected = reference.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    student = _student(dtype=policy)
    student.set_weights(reference.student.get_weights())
    model = DistillationModel(student, reference.teacher, mode="soft")
    model.compile(optimizer=keras.optimizers.SGD(0.01))
    assert isinstance(model.optimizer, keras.optimizers.LossScaleOptimizer) == (policy == "mixed_float16")
    logs = model.evaluate(x, y, batch_size=8, verbose=0, return_dict=True)
    assert logs["loss"] == pytest.approx(expected["loss"], rel=2e-2)
    before = [w.copy() for w in student.get_weights()]
    history = model.fit(x, y, batch_size=4, epochs=2, verbose=0).history
    assert all(np.isfinite(history["loss"]))
    assert any(not np.array_equal(b, a) for b, a in zip(before, student.get_weights()))


_DATA_PARALLEL_SCRIPT = """
import contextlib, json
import numpy as np, keras, keras_vits
from keras_vits.distillation import DistillationModel

devices = keras.distribution.list_devices("cpu")
assert len(devices) == 2, devices
rng = np.random.default_rng(1)
x, y = rng.normal(size=(32, 16, 16, 1)).astype("float32"), rng.integers(0, 5, size=32)

def train(distribution):
    keras.utils.set_random_seed(0)
    with distribution.scope() if distribution else contextlib.nullcontext():
        student = keras_vits.DeiT(image_size=16, patch_size=8, in_chans=1, num_classes=5, embed_dim=16, depth=1,
                                  num_heads=2)
        teacher = keras.Sequential([keras.Input((16, 16, 1)), keras.layers.Flatten(), keras.layers.Dense(5)])
        model = DistillationModel(student, teacher, mode="hard")
        model.compile(optimizer=keras.optimizers.SGD(0.1))
        history = model.fit(x, y, batch_size=8, epochs=2, shuffle=False, verbose=0).history
    devices_of_weights = len(student.trainable_variables[0].value.sharding.device_set)
    return {"history": history, "devices_of_weights": devices_of_weights}

print(json.dumps({"single": train(None), "data_parallel": train(keras.distribution.DataParallel(devices=devices))}))
"""


@pytest.mark.skipif(BACKEND != "jax", reason="keras.distribution's DataParallel runs on JAX")
def test_data_parallel_on_two_host_devices_matches_one_device():
    environ = dict(os.environ, XLA_FLAGS="--xla_force_host_platform_device_count=2", KERAS_BACKEND="jax")
    done = subprocess.run(
        [sys.executable, "-c", _DATA_PARALLEL_SCRIPT], env=environ, capture_output=True, text=True, timeout=600
    )
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["data_parallel"]["devices_of_weights"] == 2 and result["single"]["devices_of_weights"] == 1
    single, parallel = result["single"]["history"], result["data_parallel"]["history"]
    for key in ("loss", "label_loss", "distillation_loss", "top1"):
        np.testing.assert_allclose(parallel[key], single[key], rtol=1e-5, atol=1e-6, err_msg=key)


def test_raw_pixels_and_nan_images_are_refused_before_fit_or_evaluate():
    model = DistillationModel(_student(), mode="none")
    model.compile(optimizer="adam")
    x, y = _data(8)
    for bad, fragment in ((x * 0 + 255.0, "raw 0-255 pixels"), (x * np.nan, "NaN or infinite")):
        with pytest.raises(ValueError, match=f"DistillationModel's student .* {fragment}"):
            model.fit(bad, y, batch_size=8, verbose=0)
        with pytest.raises(ValueError, match=fragment):
            model.evaluate(bad, y, batch_size=8, verbose=0)


def _pixel_teacher(channels=1):
    """A teacher as keras.applications builds them: raw 0-255 pixels in, its own scaling first."""
    inputs = keras.Input((16, 16, channels))
    x = keras.layers.Rescaling(1 / 255)(inputs)
    x = keras.layers.Conv2D(4, 3)(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, keras.layers.Dense(NUM_CLASSES)(x))


def test_a_teacher_that_scales_raw_pixels_itself_needs_teacher_preprocessing():
    """It used to see normalised images (about -1 to 3) as pixels, nearly black, and taught from them."""
    teacher = _pixel_teacher()
    with pytest.raises(
        ValueError, match=r"scales its own input \(its Rescaling layer.*renormalize\(mean, std, 0.0, 1 / 255\)"
    ):
        DistillationModel(_student(), teacher, mode="hard")
    model = DistillationModel(
        _student(), teacher, mode="hard", teacher_preprocessing=renormalize(0.5, 0.25, 0.0, 1 / 255)
    )
    x, _ = _data(4)
    expected = teacher((x * 0.25 + 0.5) * 255, training=False)
    np.testing.assert_allclose(_numpy(model.teacher_logits(x)), _numpy(expected), rtol=1e-5, atol=1e-5)


def test_renormalize_maps_one_normalisation_to_another():
    pixels = np.random.default_rng(0).uniform(size=(2, 4, 4, 3)).astype("float32")
    mean_a, std_a = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    mean_b, std_b = (0.5, 0.5, 0.5), (0.5, 0.5, 0.5)
    under_a = (pixels - np.array(mean_a, "float32")) / np.array(std_a, "float32")
    under_b = (pixels - np.array(mean_b, "float32")) / np.array(std_b, "float32")
    np.testing.assert_allclose(_numpy(renormalize(mean_a, std_a, mean_b, std_b)(under_a)), under_b, atol=1e-5)
    np.testing.assert_allclose(_numpy(renormalize(mean_a, std_a, 0.0, 1 / 255)(under_a)), pixels * 255, atol=1e-3)


def test_teacher_and_student_weights_of_other_normalisations_need_teacher_preprocessing(fixtures_dir):
    """DeiT weights take ImageNet's mean and std, AugReg ViT weights [-1, 1]: one batch cannot suit both."""
    case = json.loads((fixtures_dir / "cases.json").read_text())["vit_token"]
    config = {k: v for k, v in case["config"].items() if k != "num_classes"}
    checkpoint = fixtures_dir / "vit_token.safetensors"
    student = keras_vits.create_model("deit_tiny_patch16_224", weights=checkpoint, **config)
    teacher = keras_vits.create_model("vit_tiny_patch16_224", weights=checkpoint, **config)
    assert student.pretrained_cfg == keras_vits.get_pretrained_cfg("deit_tiny_patch16_224")
    with pytest.raises(ValueError, match=r"renormalize\(\(0.485, 0.456, 0.406\), .*\(0.5, 0.5, 0.5\)\)"):
        DistillationModel(student, teacher, mode="hard")
    unloaded = keras_vits.create_model("vit_tiny_patch16_224", num_classes=10, **config)
    assert not hasattr(unloaded, "pretrained_cfg")
    DistillationModel(student, unloaded, mode="hard")  # a teacher without loaded weights is not compared
    DistillationModel(student, teacher, mode="hard", teacher_preprocessing=renormalize(0.5, 0.5, 0.5, 0.5))
