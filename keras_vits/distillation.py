"""DeiT's distillation as a Keras model: a student, a frozen teacher, and the paper's losses.

`DistillationModel(student, teacher, mode=...)` trains with `compile`/`fit`/`evaluate`
(its own `train_step` and `test_step`) or inside a custom `tf.distribute` loop
(`keras_vits.training.loop` calls the same `train_step` under `strategy.run`).

Losses (Touvron et al. 2021, section 4; Z_s student logits, Z_t teacher logits, y labels):
    none: CE(softmax(Z_s), y)   (a DeiT student's two heads both learn the labels, averaged)
    soft: (1 - alpha) CE(softmax(Z_s), y) + alpha tau^2 KL(softmax(Z_t / tau) || softmax(Z_s / tau))
    hard: (1 - alpha) CE(softmax(Z_s), y) + alpha CE(softmax(Z_s), y_t), y_t = argmax Z_t,
          with optional label smoothing of y_t; alpha = 1/2 is the paper's hard distillation.
A DeiT student sends the label term to its class-token head and the distillation
term to its distillation-token head; any other student sends both to its one head.
The KL term is summed over classes and averaged over images, as the paper writes it
(DeiT's reference code divides by images x classes instead, a 1/classes smaller weight).
"""

from keras_vits.backend import require_tensorflow_backend

require_tensorflow_backend("keras_vits.distillation (DistillationModel, distillation_losses)")

import numbers
from collections.abc import Callable

import tensorflow as tf

from keras_vits.backend import IS_KERAS_3, keras
from keras_vits.compile_modes import choose_jit_compile

DISTILLATION_MODES = ("none", "soft", "hard")


def to_targets(labels, num_classes):
    """Labels as float targets `(B, num_classes)`: integer labels `(B,)` become one-hot; targets pass through."""
    labels = tf.convert_to_tensor(labels)
    if labels.shape.rank == 1 or (labels.shape.rank == 2 and labels.shape[-1] == 1 and num_classes != 1):
        return tf.one_hot(tf.cast(tf.reshape(labels, [-1]), tf.int32), num_classes, dtype=tf.float32)
    return tf.cast(labels, tf.float32)


def split_heads_output(outputs):
    """`(label_logits, distillation_logits)` from a student's output: DeiT's pair, or one head used twice."""
    if isinstance(outputs, (tuple, list)):
        if len(outputs) != 2:
            raise ValueError(f"A student returns one logits tensor or a (cls, dist) pair; got {len(outputs)} outputs.")
        return outputs[0], outputs[1]
    return outputs, outputs


def distillation_losses(
    student_outputs: tf.Tensor | tuple[tf.Tensor, tf.Tensor],
    targets: tf.Tensor,
    teacher_logits: tf.Tensor | None = None,
    mode: str = "none",
    alpha: float = 0.5,
    tau: float = 1.0,
    label_smoothing: float = 0.0,
    teacher_label_smoothing: float = 0.0,
) -> dict[str, tf.Tensor]:
    """Per-image losses of one batch, as the DeiT paper defines them.

    Args:
        student_outputs: logits `(B, C)`, or DeiT's `(cls_logits, dist_logits)` pair.
        targets: float targets `(B, C)` (one-hot, smoothed or mixed).
        teacher_logits: `(B, C)`; needed unless `mode="none"`.
        mode: `"none"`, `"soft"` or `"hard"`.
        alpha: weight of the distillation term (lambda in the paper).
        tau: softmax temperature of soft distillation.
        label_smoothing: smoothing of the label term.
        teacher_label_smoothing: smoothing of the teacher's hard label (hard mode).

    Returns:
        dict of `(B,)` float32 tensors: `loss`, `label_loss`, `distillation_loss` (zeros for `"none"`).
    """
    if mode not in DISTILLATION_MODES:
        raise ValueError(f"mode must be one of {DISTILLATION_MODES}, got {mode!r}.")
    label_logits, dist_logits = (tf.cast(t, tf.float32) for t in split_heads_output(student_outputs))
    targets = tf.cast(targets, tf.float32)
    label_loss = keras.losses.categorical_crossentropy(
        targets, label_logits, from_logits=True, label_smoothing=label_smoothing
    )
    if mode == "none":
        zeros = tf.zeros_like(label_loss)
        if isinstance(student_outputs, (tuple, list)):  # DeiT without a teacher: both heads learn the labels
            second = keras.losses.categorical_crossentropy(
                targets, dist_logits, from_logits=True, label_smoothing=label_smoothing
            )
            return {"loss": (label_loss + second) / 2, "label_loss": label_loss, "distillation_loss": zeros}
        return {"loss": label_loss, "label_loss": label_loss, "distillation_loss": zeros}
    if teacher_logits is None:
        raise ValueError(f"mode={mode!r} needs teacher logits.")
    teacher_logits = tf.stop_gradient(tf.cast(teacher_logits, tf.float32))
    if mode == "soft":
        teacher_probs = tf.nn.softmax(teacher_logits / tau)
        student_log_probs = tf.nn.log_softmax(dist_logits / tau)
        # KL(p_t || p_s) = sum p_t (log p_t - log p_s); written out because keras.losses.kl_divergence
        # takes probabilities and clips them, which loses the log-softmax's precision.
        kl = tf.reduce_sum(teacher_probs * (tf.nn.log_softmax(teacher_logits / tau) - student_log_probs), axis=-1)
        dist_loss = (tau**2) * kl
    else:
        teacher_labels = tf.one_hot(tf.argmax(teacher_logits, axis=-1), tf.shape(teacher_logits)[-1])
        dist_loss = keras.losses.categorical_crossentropy(
            teacher_labels, dist_logits, from_logits=True, label_smoothing=teacher_label_smoothing
        )
    loss = (1.0 - alpha) * label_loss + alpha * dist_loss
    return {"loss": loss, "label_loss": label_loss, "distillation_loss": dist_loss}


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


def _image_size(model):
    """`(height, width)` a model fixes for its image input, else None."""
    inputs = getattr(model, "inputs", None)
    if not inputs or len(inputs[0].shape) != 4 or None in tuple(inputs[0].shape[1:3]):
        return None
    return tuple(int(d) for d in inputs[0].shape[1:3])


class DistillationModel(keras.Model):
    """A student trained from labels and, optionally, a frozen teacher (DeiT distillation).

    Args:
        student: the model to train; a `keras_vits.DeiT` (two heads) or any classifier.
        teacher: a Keras classifier with the same classes; runs in inference mode, no gradients.
        mode: `"none"`, `"soft"` or `"hard"`. Defaults to `"none"`.
        alpha: weight of the distillation term. Defaults to 0.5 (the paper's hard distillation).
        tau: soft-distillation temperature. Defaults to 1.0.
        label_smoothing: smoothing of the label term. Defaults to 0.
        teacher_label_smoothing: smoothing of the teacher's argmax label in hard mode
            (0.1 is the paper's "hard + label smoothing"). Defaults to 0.
        teacher_preprocessing: callable from student images `(B, H, W, C)` to teacher
            inputs, for a teacher with its own normalisation. Student images are also
            resized to the teacher's input size when the teacher fixes one.

    `fit` logs `loss`, `label_loss`, `distillation_loss` and `top1` (class head on
    the training targets). `evaluate` logs `loss` and, for a DeiT student, `top1_cls`,
    `top1_dist` and `top1_avg` (the DeiT paper's three rows); otherwise `top1`.
    """

    def __init__(
        self,
        student: keras.Model,
        teacher: keras.Model | None = None,
        mode: str = "none",
        alpha: float = 0.5,
        tau: float = 1.0,
        label_smoothing: float = 0.0,
        teacher_label_smoothing: float = 0.0,
        teacher_preprocessing: Callable[[tf.Tensor], tf.Tensor] | None = None,
        **kwargs,
    ):
        super().__init__(**kwargs)
        if mode not in DISTILLATION_MODES:
            raise ValueError(f"mode must be one of {DISTILLATION_MODES}, got {mode!r}.")
        if mode != "none" and teacher is None:
            raise ValueError(f"mode={mode!r} needs a teacher model; pass teacher=... or use mode='none'.")
        for argument, value in (
            ("alpha", alpha),
            ("tau", tau),
            ("label_smoothing", label_smoothing),
            ("teacher_label_smoothing", teacher_label_smoothing),
        ):
            if not isinstance(value, numbers.Real) or isinstance(value, bool):
                raise TypeError(f"{argument} must be a number, got {value!r} ({type(value).__name__}).")
        if not 0.0 <= alpha <= 1.0 or tau <= 0:
            raise ValueError(f"Need 0 <= alpha <= 1 and tau > 0, got alpha={alpha}, tau={tau}.")
        smoothings = {"label_smoothing": label_smoothing, "teacher_label_smoothing": teacher_label_smoothing}
        for argument, value in smoothings.items():
            if not 0.0 <= value < 1.0:
                raise ValueError(f"{argument} must be in [0, 1), got {value}.")
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
        self.two_heads = hasattr(student, "select_head")
        self.loss_tracker = keras.metrics.Mean(name="loss")
        self.label_loss_tracker = keras.metrics.Mean(name="label_loss")
        self.distillation_loss_tracker = keras.metrics.Mean(name="distillation_loss")
        self.train_top1 = keras.metrics.CategoricalAccuracy(name="top1")
        head_names = ("top1_cls", "top1_dist", "top1_avg") if self.two_heads else ("top1",)
        self.eval_top1 = {name: keras.metrics.CategoricalAccuracy(name=name) for name in head_names}

    @property
    def train_metrics(self):
        """What `train_step` logs: loss, label_loss, distillation_loss, top1."""
        return [self.loss_tracker, self.label_loss_tracker, self.distillation_loss_tracker, self.train_top1]

    @property
    def eval_metrics(self):
        """What `test_step` logs: loss and the top-1 of each head (or the one head)."""
        return [self.loss_tracker, *self.eval_top1.values()]

    @property
    def metrics(self):
        return [*self.train_metrics, *self.eval_top1.values()]

    def compile(self, optimizer="rmsprop", jit_compile="auto", **kwargs):
        """`keras.Model.compile`, with two differences.

        - A mixed_float16 student's optimizer gets dynamic loss scaling. Keras wraps the optimizer
          in a `LossScaleOptimizer` only when this wrapper's own dtype policy is mixed_float16;
          here the student's policy decides, wherever the wrapper was built.
        - `jit_compile="auto"` is not Keras's "auto" (XLA wherever it can): it asks
          `keras_vits.compile_modes.choose_jit_compile`, which picks graph or XLA from measurements
          per device and model family. Pass True or False to choose yourself.
        """
        student_policy = getattr(self.student, "dtype_policy", None)
        if IS_KERAS_3 and getattr(student_policy, "name", None) == "mixed_float16":
            optimizer = keras.optimizers.get(optimizer)
            if not isinstance(optimizer, keras.optimizers.LossScaleOptimizer):
                optimizer = keras.optimizers.LossScaleOptimizer(optimizer)
        if jit_compile == "auto":
            jit_compile = choose_jit_compile(self.student)
        elif not isinstance(jit_compile, bool):
            raise TypeError(f"jit_compile takes True, False or 'auto', got {jit_compile!r}.")
        super().compile(optimizer=optimizer, jit_compile=jit_compile, **kwargs)

    def call(self, inputs, training=None):
        return self.student(inputs, training=training)

    def teacher_logits(self, images):
        """Teacher logits `(B, C)` for student images `(B, H, W, C)`, resized and preprocessed for the teacher."""
        size = self.teacher_image_size
        if size is not None and tuple(images.shape[1:3]) != size:
            images = tf.image.resize(images, size)
        if self.teacher_preprocessing is not None:
            images = self.teacher_preprocessing(images)
        outputs = self.teacher(images, training=False)
        if isinstance(outputs, (list, tuple, dict)):
            raise ValueError(
                f"The teacher {self.teacher.name} returns {len(outputs)} outputs; distillation needs one "
                f"(B, classes) tensor of logits or probabilities (a DeiT teacher returns its averaged head)."
            )
        outputs = tf.cast(outputs, tf.float32)
        if self.teacher_outputs_probabilities:  # log-probabilities are logits up to a constant
            outputs = tf.math.log(tf.maximum(outputs, 1e-12))
        return tf.stop_gradient(outputs)

    def student_heads(self, images):
        """Inference logits: `(cls, dist)` for a DeiT student, else the one head's `(B, C)`."""
        if self.two_heads:
            return self.student.both_heads(images)
        return self.student(images, training=False)

    def _compute_losses(self, student_outputs, targets, teacher_logits):
        return distillation_losses(
            student_outputs,
            targets,
            teacher_logits,
            mode=self.mode,
            alpha=self.alpha,
            tau=self.tau,
            label_smoothing=self.label_smoothing,
            teacher_label_smoothing=self.teacher_label_smoothing,
        )

    def _track_losses(self, losses):
        # Each replica adds its own batch mean weighted by its batch size, so the
        # metric is the mean over the global batch whatever the number of replicas.
        batch = tf.cast(tf.shape(losses["loss"])[0], tf.float32)
        self.loss_tracker.update_state(tf.reduce_mean(losses["loss"]), sample_weight=batch)
        self.label_loss_tracker.update_state(tf.reduce_mean(losses["label_loss"]), sample_weight=batch)
        self.distillation_loss_tracker.update_state(tf.reduce_mean(losses["distillation_loss"]), sample_weight=batch)

    def train_step(self, data):
        images, labels = data[0], data[1]
        targets = to_targets(labels, self.num_classes)
        teacher_logits = self.teacher_logits(images) if self.mode != "none" else None
        variables = self.student.trainable_variables
        with tf.GradientTape() as tape:
            outputs = self.student(images, training=True)
            losses = self._compute_losses(outputs, targets, teacher_logits)
            # Averaged over the global batch: replicas' gradients are summed when applied.
            loss = tf.nn.compute_average_loss(losses["loss"])
            if self.student.losses:
                loss += tf.nn.scale_regularization_loss(tf.add_n(self.student.losses))
            scaled = self.optimizer.scale_loss(loss) if hasattr(self.optimizer, "scale_loss") else loss
        grads = tape.gradient(scaled, variables)
        self.optimizer.apply_gradients(zip(grads, variables))
        self._track_losses(losses)
        self.train_top1.update_state(targets, split_heads_output(outputs)[0])
        return {m.name: m.result() for m in self.train_metrics}

    def test_step(self, data):
        images, labels = data[0], data[1]
        targets = to_targets(labels, self.num_classes)
        outputs = self.student_heads(images)
        teacher_logits = self.teacher_logits(images) if self.mode != "none" else None
        self._track_losses(self._compute_losses(outputs, targets, teacher_logits))
        if self.two_heads:
            cls_out, dist_out = outputs
            self.eval_top1["top1_cls"].update_state(targets, cls_out)
            self.eval_top1["top1_dist"].update_state(targets, dist_out)
            self.eval_top1["top1_avg"].update_state(targets, (cls_out + dist_out) / 2)
        else:
            self.eval_top1["top1"].update_state(targets, outputs)
        return {m.name: m.result() for m in self.eval_metrics}
