"""DeiT's distillation as a Keras model: a student, a frozen teacher, and the paper's losses.

`DistillationModel(student, teacher, mode=...)` trains with `compile`/`fit`/`evaluate` on every
Keras 3 backend (TensorFlow, JAX, PyTorch): it supplies `compute_loss` and `compute_metrics`,
and Keras's own train and test steps do the rest (gradients, loss scaling, distribution).
`keras_vits.training.loop` runs the same `train_step` under `strategy.run` (TensorFlow only).

Losses (Touvron et al. 2021, section 4; Z_s student logits, Z_t teacher logits, y labels):
    none: CE(softmax(Z_s), y)   (a DeiT student's two heads both learn the labels, averaged)
    soft: (1 - alpha) CE(softmax(Z_s), y) + alpha tau^2 KL(softmax(Z_t / tau) || softmax(Z_s / tau))
    hard: (1 - alpha) CE(softmax(Z_s), y) + alpha CE(softmax(Z_s), y_t), y_t = argmax Z_t;
          alpha = 1/2 is the paper's hard distillation. With teacher label smoothing eps, y_t
          puts 1 - eps on the teacher's class and eps / (K - 1) on each of the K - 1 others, as
          the paper defines it (not Keras's 1 - eps + eps/K and eps/K).
A DeiT student sends the label term to its class-token head and the distillation
term to its distillation-token head; any other student sends both to its one head.
The KL term is summed over classes and averaged over images, as the paper writes it
(DeiT's reference code divides by images x classes instead, a 1/classes smaller weight).
"""

import numbers
from collections.abc import Callable

import numpy as np

from keras_vits.backend import BACKEND, IS_KERAS_3, keras
from keras_vits.models.base import check_image_values

ops = keras.ops if IS_KERAS_3 else None  # tf-keras builds the models for QAT only; DistillationModel refuses it

DISTILLATION_MODES = ("none", "soft", "hard")


def to_targets(labels, num_classes):
    """Labels as float targets `(B, num_classes)`: integer labels `(B,)` become one-hot; targets pass through.

    An integer label outside `[0, num_classes)` gives a row of NaN, so its loss is NaN rather than
    a silent zero (a compiled step cannot raise on a value; `DistillationModel.fit` checks arrays first).
    """
    labels = ops.convert_to_tensor(labels)
    rank = len(labels.shape)
    if rank == 1 or (rank == 2 and labels.shape[-1] == 1 and num_classes != 1):
        labels = ops.cast(ops.reshape(labels, (-1,)), "int32")
        in_range = ops.logical_and(labels >= 0, labels < num_classes)
        one_hot = ops.one_hot(ops.where(in_range, labels, 0), num_classes, dtype="float32")
        return ops.where(ops.expand_dims(in_range, -1), one_hot, float("nan"))
    if rank != 2 or labels.shape[-1] != num_classes:
        raise ValueError(
            f"Labels must be class indices (B,) or targets (B, {num_classes}); got shape {tuple(labels.shape)}."
        )
    return ops.cast(labels, "float32")


def check_label_array(labels, num_classes):
    """Raises for in-memory labels (NumPy or a tensor) that a model of `num_classes` classes cannot learn."""
    values = np.asarray(labels)
    if values.ndim == 2 and values.shape[-1] == num_classes and values.dtype.kind == "f":
        return  # targets: one-hot, smoothed or mixed
    if values.dtype.kind not in "iu" and not (values.dtype.kind == "f" and np.all(values == np.round(values))):
        raise ValueError(
            f"Labels must be integer class indices or float targets (B, {num_classes}); got {values.dtype} "
            f"of shape {values.shape}."
        )
    if values.size and (values.min() < 0 or values.max() >= num_classes):
        raise ValueError(
            f"Labels must be class indices in [0, {num_classes - 1}] for a model of {num_classes} classes; "
            f"got values from {values.min()} to {values.max()}."
        )


def split_heads_output(outputs):
    """`(label_logits, distillation_logits)` from a student's output: DeiT's pair, or one head used twice."""
    if isinstance(outputs, (tuple, list)):
        if len(outputs) != 2:
            raise ValueError(f"A student returns one logits tensor or a (cls, dist) pair; got {len(outputs)} outputs.")
        return outputs[0], outputs[1]
    return outputs, outputs


def teacher_targets(teacher_logits, smoothing=0.0):
    """The teacher's hard label `(B, K)`: 1 - smoothing on its argmax, smoothing / (K - 1) on each other class."""
    num_classes = teacher_logits.shape[-1]
    one_hot = ops.one_hot(ops.argmax(teacher_logits, axis=-1), num_classes, dtype="float32")
    if not smoothing or num_classes == 1:
        return one_hot
    return one_hot * (1.0 - smoothing) + (1.0 - one_hot) * (smoothing / (num_classes - 1))


def _cross_entropy(targets, logits, label_smoothing=0.0):
    return keras.losses.categorical_crossentropy(targets, logits, from_logits=True, label_smoothing=label_smoothing)


def distillation_losses(
    student_outputs,
    targets,
    teacher_logits=None,
    mode: str = "none",
    alpha: float = 0.5,
    tau: float = 1.0,
    label_smoothing: float = 0.0,
    teacher_label_smoothing: float = 0.0,
) -> dict:
    """Per-image losses of one batch, as the DeiT paper defines them (on any backend).

    Args:
        student_outputs: logits `(B, C)`, or DeiT's `(cls_logits, dist_logits)` pair.
        targets: float targets `(B, C)` (one-hot, smoothed or mixed).
        teacher_logits: `(B, C)`; needed unless `mode="none"`.
        mode: `"none"`, `"soft"` or `"hard"`.
        alpha: weight of the distillation term (lambda in the paper).
        tau: softmax temperature of soft distillation.
        label_smoothing: Keras's smoothing of the label term (1 - eps + eps/C on the label).
        teacher_label_smoothing: the paper's smoothing of the teacher's hard label (hard mode):
            1 - eps on the teacher's class, eps / (C - 1) on each other (`teacher_targets`).

    Returns:
        dict of `(B,)` float32 tensors: `loss`, `label_loss`, `distillation_loss` (zeros for `"none"`).
    """
    if mode not in DISTILLATION_MODES:
        raise ValueError(f"mode must be one of {DISTILLATION_MODES}, got {mode!r}.")
    label_logits, dist_logits = (ops.cast(t, "float32") for t in split_heads_output(student_outputs))
    targets = ops.cast(targets, "float32")
    label_loss = _cross_entropy(targets, label_logits, label_smoothing)
    if mode == "none":
        zeros = ops.zeros_like(label_loss)
        if isinstance(student_outputs, (tuple, list)):  # DeiT without a teacher: both heads learn the labels
            second = _cross_entropy(targets, dist_logits, label_smoothing)
            return {"loss": (label_loss + second) / 2, "label_loss": label_loss, "distillation_loss": zeros}
        return {"loss": label_loss, "label_loss": label_loss, "distillation_loss": zeros}
    if teacher_logits is None:
        raise ValueError(f"mode={mode!r} needs teacher logits.")
    teacher_logits = ops.stop_gradient(ops.cast(teacher_logits, "float32"))
    if mode == "soft":
        teacher_log_probs = ops.log_softmax(teacher_logits / tau, axis=-1)
        student_log_probs = ops.log_softmax(dist_logits / tau, axis=-1)
        # KL(p_t || p_s) = sum p_t (log p_t - log p_s); written out because keras.losses.kl_divergence
        # takes probabilities and clips them, which loses the log-softmax's precision.
        kl = ops.sum(ops.exp(teacher_log_probs) * (teacher_log_probs - student_log_probs), axis=-1)
        dist_loss = (tau**2) * kl
    else:
        dist_loss = _cross_entropy(teacher_targets(teacher_logits, teacher_label_smoothing), dist_logits)
    loss = (1.0 - alpha) * label_loss + alpha * dist_loss
    return {"loss": loss, "label_loss": label_loss, "distillation_loss": dist_loss}


def _replicas_in_sync():
    """Replicas whose gradients a `tf.distribute` strategy sums (1 on JAX and PyTorch, which average globally)."""
    if BACKEND != "tensorflow":
        return 1
    import tensorflow as tf

    return tf.distribute.get_strategy().num_replicas_in_sync


def _num_classes(model, what):
    output = model.outputs[0] if getattr(model, "outputs", None) else None
    if output is None or output.shape[-1] is None:
        raise ValueError(f"The {what} must be a built Keras model with a known number of output classes.")
    return int(output.shape[-1])


def _ends_in_softmax(model):
    """True for classifiers that output probabilities (keras.applications' default head)."""
    last = model.layers[-1] if getattr(model, "layers", None) else None
    activation = getattr(last, "activation", None)
    return activation is not None and getattr(activation, "__name__", "") == "softmax"


def _image_input_shape(model):
    """`(height, width, channels)` of a model's image input `(B, H, W, C)`, entries None where not fixed; else None."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs[0].shape) != 4:
        return None
    return tuple(None if d is None else int(d) for d in inputs[0].shape[1:])


def _image_size(model):
    """`(height, width)` a model fixes for its image input, else None."""
    shape = _image_input_shape(model)
    return None if shape is None or None in shape[:2] else shape[:2]


def _channels(model):
    """The channel count a model's image input `(B, H, W, C)` fixes, else None."""
    shape = _image_input_shape(model)
    return None if shape is None else shape[2]


def _check_teacher_channels(student, teacher):
    student_channels, teacher_channels = _channels(student), _channels(teacher)
    if None not in (student_channels, teacher_channels) and student_channels != teacher_channels:
        raise ValueError(
            f"The teacher takes {teacher_channels}-channel images and the student {student_channels}; pass "
            "teacher_preprocessing to convert them (for gray to RGB: lambda x: keras.ops.repeat(x, 3, axis=-1))."
        )


def _input_scaling_layer(model):
    """The first `Rescaling` or `Normalization` layer before any layer with weights, else None.

    keras.applications models (EfficientNet, ConvNeXt, MobileNetV3) begin with one:
    they take raw 0-255 pixels and normalise inside.
    """
    for layer in model._flatten_layers(include_self=False, recursive=True):
        if isinstance(layer, (keras.layers.Rescaling, keras.layers.Normalization)):
            return layer
        if layer.weights and not getattr(layer, "_layers", None):  # a leaf layer with weights: the model has begun
            return None
    return None


def _check_teacher_input_scale(teacher):
    layer = _input_scaling_layer(teacher)
    if layer is not None:
        raise ValueError(
            f"The teacher {teacher.name} scales its own input (its {type(layer).__name__} layer {layer.name!r}), "
            "as keras.applications models do: it takes raw 0-255 pixels, and the student takes normalised "
            "images. Pass teacher_preprocessing=keras_vits.distillation.renormalize(mean, std, 0.0, 1 / 255) "
            "with the student's mean and std, or teacher_preprocessing=lambda x: x if it was trained on the "
            "student's images."
        )


def _check_same_normalisation(student, teacher):
    """Raises when both models came with weights (`create_model(weights=...)`) trained under another mean or std."""
    configs = [getattr(model, "pretrained_cfg", None) for model in (student, teacher)]
    if None in configs:
        return
    (student_mean, student_std), (teacher_mean, teacher_std) = ((c["mean"], c["std"]) for c in configs)
    if (tuple(student_mean), tuple(student_std)) != (tuple(teacher_mean), tuple(teacher_std)):
        raise ValueError(
            f"The teacher {teacher.name}'s weights take images normalised with mean={list(teacher_mean)}, "
            f"std={list(teacher_std)}, and the student {student.name}'s with mean={list(student_mean)}, "
            f"std={list(student_std)}: pass teacher_preprocessing=keras_vits.distillation.renormalize("
            f"{tuple(student_mean)}, {tuple(student_std)}, {tuple(teacher_mean)}, {tuple(teacher_std)})."
        )


def renormalize(from_mean, from_std, to_mean, to_std):
    """A callable from images normalised with `(from_mean, from_std)` to the same images under `(to_mean, to_std)`.

    Both are on the [0, 1] pixel scale, per channel or one for all: `x * from_std + from_mean` is
    the [0, 1] image, and `(p - to_mean) / to_std` normalises it again. `to_mean=0, to_std=1/255`
    gives raw 0-255 pixels. Used as `DistillationModel(teacher_preprocessing=...)` for a teacher
    trained with another normalisation than the student's; maps `(B, H, W, C)` to `(B, H, W, C)`.
    """
    scale = np.asarray(from_std, np.float32) / np.asarray(to_std, np.float32)
    shift = (np.asarray(from_mean, np.float32) - np.asarray(to_mean, np.float32)) / np.asarray(to_std, np.float32)

    def teacher_images(images):
        dtype = keras.backend.standardize_dtype(images.dtype)
        return ops.add(ops.multiply(images, ops.cast(scale, dtype)), ops.cast(shift, dtype))

    return teacher_images


def _check_numbers(**arguments):
    for argument, value in arguments.items():
        if not isinstance(value, numbers.Real) or isinstance(value, bool):
            raise TypeError(f"{argument} must be a number, got {value!r} ({type(value).__name__}).")
    alpha, tau = arguments["alpha"], arguments["tau"]
    if not 0.0 <= alpha <= 1.0 or tau <= 0:
        raise ValueError(f"Need 0 <= alpha <= 1 and tau > 0, got alpha={alpha}, tau={tau}.")
    for argument in ("label_smoothing", "teacher_label_smoothing"):
        if not 0.0 <= arguments[argument] < 1.0:
            raise ValueError(f"{argument} must be in [0, 1), got {arguments[argument]}.")


class DistillationModel(keras.Model):
    """A student trained from labels and, optionally, a frozen teacher (DeiT distillation).

    Args:
        student: the model to train; a `keras_vits.DeiT` (two heads) or any classifier.
        teacher: a Keras classifier with the same classes; runs in inference mode, no gradients.
        mode: `"none"`, `"soft"` or `"hard"`. Defaults to `"none"`.
        alpha: weight of the distillation term. Defaults to 0.5 (the paper's hard distillation).
        tau: soft-distillation temperature. Defaults to 1.0.
        label_smoothing: Keras's smoothing of the label term. Defaults to 0.
        teacher_label_smoothing: the paper's smoothing of the teacher's argmax label in hard mode
            (0.1 is the paper's "hard + label smoothing"; see `teacher_targets`). Defaults to 0.
        teacher_preprocessing: callable from student images `(B, H, W, C)` to teacher
            inputs, for a teacher with its own normalisation (`renormalize(...)`). Student images
            are also resized to the teacher's input size when the teacher fixes one. Without it,
            a teacher of other channels, one that scales raw pixels itself (a keras.applications
            model), or one whose weights expect another mean and std than the student's (both
            from `create_model(weights=...)`, see `pretrained_cfg`) is refused.

    Calling it returns the student's heads: `(cls, dist)` logits for a DeiT student, in
    training and inference alike, else the one head's `(B, C)`; predict with the student itself.
    `fit` logs `loss`, `label_loss`, `distillation_loss` and `top1` (class head on
    the training targets). `evaluate` logs `loss` and, for a DeiT student, `top1_cls`,
    `top1_dist` and `top1_avg` (the DeiT paper's three rows); otherwise `top1`.
    `loss` includes the student's regularisation losses, if it has any.
    """

    def __init__(
        self,
        student,
        teacher=None,
        mode: str = "none",
        alpha: float = 0.5,
        tau: float = 1.0,
        label_smoothing: float = 0.0,
        teacher_label_smoothing: float = 0.0,
        teacher_preprocessing: Callable | None = None,
        **kwargs,
    ):
        if not IS_KERAS_3:
            raise RuntimeError(
                "DistillationModel needs Keras 3; tf-keras (TF_USE_LEGACY_KERAS=1) builds the models for QAT only."
            )
        super().__init__(**kwargs)
        if mode not in DISTILLATION_MODES:
            raise ValueError(f"mode must be one of {DISTILLATION_MODES}, got {mode!r}.")
        if mode != "none" and teacher is None:
            raise ValueError(f"mode={mode!r} needs a teacher model; pass teacher=... or use mode='none'.")
        _check_numbers(
            alpha=alpha, tau=tau, label_smoothing=label_smoothing, teacher_label_smoothing=teacher_label_smoothing
        )
        for argument, model in (("student", student), ("teacher", teacher)):
            if model is not None and not isinstance(model, keras.Model):
                raise TypeError(f"The {argument} must be a Keras model, got {type(model).__name__}.")
        if teacher_preprocessing is not None and not callable(teacher_preprocessing):
            raise TypeError(f"teacher_preprocessing must be callable or None, got {teacher_preprocessing!r}.")
        self.num_classes = _num_classes(student, "student")
        if teacher is not None:
            teacher_classes = _num_classes(teacher, "teacher")
            if teacher_classes != self.num_classes:
                raise ValueError(
                    f"The teacher predicts {teacher_classes} classes and the student {self.num_classes}; "
                    "they must predict the same classes."
                )
            if teacher_preprocessing is None:
                _check_teacher_channels(student, teacher)
                _check_teacher_input_scale(teacher)
                _check_same_normalisation(student, teacher)
            teacher.trainable = False
        self.teacher_outputs_probabilities = teacher is not None and _ends_in_softmax(teacher)
        self.teacher_image_size = _image_size(teacher) if teacher is not None else None
        self.student = student
        self.teacher = teacher
        self.mode = mode
        self.alpha = float(alpha)
        self.tau = float(tau)
        self.label_smoothing = float(label_smoothing)
        self.teacher_label_smoothing = float(teacher_label_smoothing)
        self.teacher_preprocessing = teacher_preprocessing
        self.two_heads = hasattr(student, "both_heads")
        # Keras's train and test steps update `_loss_tracker` with the total loss; it exists here
        # before `compile` too, for `keras_vits.training.loop`'s evaluation of an uncompiled model.
        self.loss_tracker = self._loss_tracker = keras.metrics.Mean(name="loss")
        self.label_loss_tracker = keras.metrics.Mean(name="label_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.train_top1 = keras.metrics.CategoricalAccuracy(name="top1")
        head_names = ("top1_cls", "top1_dist", "top1_avg") if self.two_heads else ("top1",)
        self.eval_top1 = {name: keras.metrics.CategoricalAccuracy(name=name) for name in head_names}
        self._logs_training_metrics = True

    @property
    def train_metrics(self):
        """What a training step logs: loss, label_loss, distillation_loss, top1."""
        return [self.loss_tracker, self.label_loss_tracker, self.distillation_loss_tracker, self.train_top1]

    @property
    def eval_metrics(self):
        """What a test step logs: loss and the top-1 of each head (or the one head)."""
        return [self.loss_tracker, *self.eval_top1.values()]

    @property
    def metrics(self):
        return [*self.train_metrics, *self.eval_top1.values()]

    def compile(self, optimizer="rmsprop", jit_compile="auto", **kwargs):
        """`keras.Model.compile`, with three differences.

        - There is no `loss` or `metrics` argument: the losses and metrics are DeiT's.
        - A mixed_float16 student's optimizer gets dynamic loss scaling. Keras wraps the optimizer
          in a `LossScaleOptimizer` only when this wrapper's own dtype policy is mixed_float16;
          here the student's policy decides, wherever the wrapper was built.
        - On TensorFlow, `jit_compile="auto"` is not Keras's "auto" (XLA wherever it can): it asks
          `keras_vits.compile_modes.choose_jit_compile`, which picks graph or XLA from measurements
          per device and model family. On JAX and PyTorch it is Keras's. Pass True or False to choose.
        """
        for argument in ("loss", "loss_weights", "metrics", "weighted_metrics"):
            if kwargs.get(argument) is not None:
                raise TypeError(
                    f"DistillationModel.compile takes no {argument}: its losses and metrics are DeiT's "
                    "(see distillation_losses); set mode, alpha, tau and the smoothings on the model."
                )
        student_policy = getattr(self.student, "dtype_policy", None)
        if getattr(student_policy, "name", None) == "mixed_float16":
            optimizer = keras.optimizers.get(optimizer)
            if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        if jit_compile == "auto" and BACKEND == "tensorflow":
            from keras_vits.compile_modes import choose_jit_compile

            jit_compile = choose_jit_compile(self.student)
        elif jit_compile != "auto" and not isinstance(jit_compile, bool):
            raise TypeError(f"jit_compile takes True, False or 'auto', got {jit_compile!r}.")
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)
        self._loss_tracker = self.loss_tracker  # compile made a new one

    def _check_arrays(self, x, y):
        """Labels given as an array against the student's classes; NumPy images for raw pixels and NaN."""
        if y is not None:
            check_label_array(y, self.num_classes)
        check_image_values(x, f"DistillationModel's student {self.student.name}")

    def fit(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.fit`; arrays are checked first (see `_check_arrays`)."""
        self._check_arrays(x, y)
        return super().fit(x, y, *args, **kwargs)

    def evaluate(self, x=None, y=None, *args, **kwargs):
        """`keras.Model.evaluate`; arrays are checked first (see `_check_arrays`)."""
        self._check_arrays(x, y)
        return super().evaluate(x, y, *args, **kwargs)

    def call(self, inputs, training=None):
        if self.two_heads:
            return self.student.both_heads(inputs, training=bool(training))
        return self.student(inputs, training=training)

    def student_heads(self, images):
        """Inference logits: `(cls, dist)` for a DeiT student, else the one head's `(B, C)`."""
        return self(images, training=False)

    def teacher_logits(self, images):
        """Teacher logits `(B, C)` for student images `(B, H, W, C)`, resized and preprocessed for the teacher."""
        size = self.teacher_image_size
        if size is not None and tuple(images.shape[1:3]) != size:
            images = ops.image.resize(images, size)
        if self.teacher_preprocessing is not None:
            images = self.teacher_preprocessing(images)
        outputs = self.teacher(images, training=False)
        if isinstance(outputs, (list, tuple, dict)):
            raise ValueError(
                f"The teacher {self.teacher.name} returns {len(outputs)} outputs; distillation needs one "
                f"(B, classes) tensor of logits or probabilities (a DeiT teacher returns its averaged head)."
            )
        outputs = ops.cast(outputs, "float32")
        if self.teacher_outputs_probabilities:  # log-probabilities are logits up to a constant
            outputs = ops.log(ops.maximum(outputs, 1e-12))
        return ops.stop_gradient(outputs)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        """The batch's mean loss (scalar), for Keras's train and test steps; updates the loss and top-1 metrics.

        On TensorFlow the mean is divided by the replicas in sync, as Keras's own losses are: a
        `tf.distribute` strategy sums the replicas' gradients.
        """
        if sample_weight is not None:
            raise ValueError("DistillationModel takes no sample weights; every image counts once.")
        targets = to_targets(y, self.num_classes)
        teacher_logits = self.teacher_logits(x) if self.mode != "none" else None
        losses = distillation_losses(
            y_pred,
            targets,
            teacher_logits,
            mode=self.mode,
            alpha=self.alpha,
            tau=self.tau,
            label_smoothing=self.label_smoothing,
            teacher_label_smoothing=self.teacher_label_smoothing,
        )
        self._update_metrics(losses, targets, y_pred, training)
        loss = ops.mean(losses["loss"])
        for extra in self.losses:  # regularisers, as Keras's own compute_loss adds them
            loss = loss + ops.cast(ops.sum(extra), "float32")
        return loss / _replicas_in_sync()

    def _update_metrics(self, losses, targets, outputs, training):
        # Replicas weight their batch means by their batch sizes: the mean over the global batch.
        batch = ops.cast(ops.shape(losses["loss"])[0], "float32")
        self.label_loss_tracker.update_state(ops.mean(losses["label_loss"]), sample_weight=batch)
        self.distillation_loss_tracker.update_state(ops.mean(losses["distillation_loss"]), sample_weight=batch)
        if training:
            self.train_top1.update_state(targets, split_heads_output(outputs)[0])
        elif self.two_heads:
            cls_out, dist_out = outputs
            self.eval_top1["top1_cls"].update_state(targets, cls_out)
            self.eval_top1["top1_dist"].update_state(targets, dist_out)
            self.eval_top1["top1_avg"].update_state(targets, (cls_out + dist_out) / 2)
        else:
            self.eval_top1["top1"].update_state(targets, outputs)
        # Read by `compute_metrics`, which Keras calls after `compute_loss` in the same step: set and
        # read while one step function is traced, so each traced step logs its own kind of metrics.
        self._logs_training_metrics = bool(training)

    def compute_metrics(self, x, y, y_pred, sample_weight=None):
        """The step's logs: `train_metrics` after a training step, `eval_metrics` after a test step."""
        logged = self.train_metrics if self._logs_training_metrics else self.eval_metrics
        return {metric.name: metric.result() for metric in logged}
