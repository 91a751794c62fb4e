"""Training and evaluation under a tf.distribute strategy, with checkpoints that survive a kill.

    from keras_vits.training import get_recipe, train
    result = train(get_recipe("fmnist_deit_hard"), output_dir="runs/fmnist_deit_hard", strategy="mirrored")

The loop is written out rather than `Model.fit` because Keras 3.15's `fit` fails
under MultiWorkerMirroredStrategy (keras-team/keras#20585); each step still runs
`DistillationModel.train_step`, so the losses live in one place.

`output_dir` receives: `checkpoints/` (model weights, optimizer state and step, keyed by
name, see `training_checkpoint`; the newest two kept, written by tf.train.CheckpointManager,
whose index file is replaced atomically),
`tensorboard/`, `history.json`, `curves.png`, `recipe.json`, `labels.txt` and the trained
student as `model.keras` (`keras-vits export <run>/model.keras` reads the last three).

TensorFlow only (tf.distribute, tf.data, tf.train.Checkpoint); on JAX and PyTorch, train with
`DistillationModel.fit`.
"""

from keras_vits.backend import require_tensorflow_backend

require_tensorflow_backend("keras_vits.training.loop (train, evaluate; keras-vits train and evaluate)")

import contextlib
import dataclasses
import errno
import functools
import json
import os
import pathlib
import time
import warnings
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

import keras_vits
from keras_vits import finetune
from keras_vits._io import DiskFullError, as_path
from keras_vits.backend import compare_layer_weights, keras, layer_weights, load_keras_file
from keras_vits.compile_modes import choose_jit_compile
from keras_vits.distillation import DistillationModel, renormalize
from keras_vits.finetune import no_weight_decay_variables
from keras_vits.registry import resolve_checkpoint
from keras_vits.training import run_folder, teachers
from keras_vits.training.data import load_source, naming_undecodable_images
from keras_vits.training.pipeline import make_dataset
from keras_vits.training.recipes import RECIPES, Recipe, absolute_dataset
from keras_vits.training.strategies import STRATEGIES, is_chief, make_strategy  # noqa: F401 (STRATEGIES: API)
from keras_vits.weights.loader import checkpoint_num_classes

SUMMARY_EVERY = 50  # steps between TensorBoard scalars
#: Recipe fields that say how the step runs, not what it learns: a resumed run may change them.
EXECUTION_FIELDS = ("compile_mode", "steps_per_execution")


def build_model(recipe, num_classes, channels, initial_weights=None):
    """The recipe's model: a teacher from `keras_vits.training.teachers` or a registry name with overrides.

    A registry model with `model_overrides` is named after the recipe (its registry name would
    describe another model); without them it keeps the registry name.
    `initial_weights` (None: a random init) is a `.keras` file whose weights must fit the model
    exactly, or, for registry models, a timm checkpoint as `create_model(weights=...)` takes it.
    """
    from_keras_file = initial_weights is not None and str(initial_weights).endswith(".keras")
    if recipe.model in teachers.TEACHERS:
        if initial_weights is not None and not from_keras_file:
            raise ValueError(
                f"{recipe.model} is a keras_vits.training teacher with no timm checkpoints: initial_weights "
                f"takes a .keras file for it, got {initial_weights!r}."
            )
        ignored = {"model_overrides": recipe.model_overrides, "drop_path_rate": recipe.drop_path_rate}
        ignored = {name: value for name, value in ignored.items() if value}
        if ignored:
            raise ValueError(
                f"{recipe.model} is a keras_vits.training teacher, which takes no {sorted(ignored)} "
                f"(got {ignored}); those settings apply to registry models."
            )
        model = teachers.TEACHERS[recipe.model](recipe.image_size, channels, num_classes)
    else:
        fixed = {"num_classes", "image_size", "in_chans", "drop_path_rate"} & set(recipe.model_overrides)
        if fixed:
            raise ValueError(
                f"model_overrides may not set {sorted(fixed)}: they come from the data and the recipe's own fields."
            )
        model = keras_vits.create_model(
            recipe.model,
            weights=None if from_keras_file else initial_weights,
            num_classes=num_classes,
            image_size=recipe.image_size,
            in_chans=channels,
            drop_path_rate=recipe.drop_path_rate,
            **recipe.model_overrides,
        )
        if recipe.model_overrides:  # no longer the registry's model: named after what built it
            model.name = recipe.name
    if from_keras_file:
        copy_weights_from_keras_file(model, initial_weights)
    return model


def copy_weights_from_keras_file(model, path):
    """Assigns every weight of `model` from the `.keras` file at `path` (safe mode), matched by layer name.

    Raises:
        ValueError: the file's weights do not fit `model` (names missing either side, or shapes);
            `model` is left unchanged.
    """
    source = {key: v.numpy() for key, v in layer_weights(load_keras_file(path, "initial weights")).items()}
    pairs, missing, unexpected, mismatched = compare_layer_weights(model, source)
    problems = [f"not in the file: {key}" for key in missing] + [f"not in the model: {key}" for key in unexpected]
    problems += [f"{key}: {shape} in the file, {expected} in the model" for key, shape, expected in mismatched]
    if problems:
        shown = "; ".join(problems[:6]) + (f"; and {len(problems) - 6} more" if len(problems) > 6 else "")
        raise ValueError(
            f"The initial weights {path} do not fit {model.name} ({len(problems)} differences: {shown}). "
            f"They must come from the same model, classes and image size."
        )
    for variable, value in pairs.values():
        variable.assign(value)


def learning_rate_schedule(recipe, steps_per_epoch, global_batch_size):
    """Linear warm-up to base_lr * batch / 512, then cosine decay to min_lr.

    A `min_lr` above that peak leaves the cosine nowhere to decay to: the rate then stays at the
    peak, with a warning. Small batches meet this with the default `min_lr`, so it is not an error.
    """
    peak = recipe.base_lr * global_batch_size / 512
    if recipe.min_lr > peak:
        warnings.warn(
            f"Recipe field min_lr ({recipe.min_lr:g}) is above the peak learning rate {peak:g} "
            f"(base_lr {recipe.base_lr:g} x global batch {global_batch_size} / 512): the learning rate stays "
            f"at {peak:g} after the warm-up instead of decaying. Set min_lr <= {peak:g} for a cosine decay.",
            stacklevel=2,
        )
    total = max(1, int(recipe.epochs * steps_per_epoch))
    warmup = min(int(recipe.warmup_epochs * steps_per_epoch), total - 1)
    return keras.optimizers.schedules.CosineDecay(
        initial_learning_rate=0.0 if warmup else peak,
        decay_steps=total - warmup,
        alpha=min(recipe.min_lr / peak, 1.0),
        warmup_target=peak if warmup else None,
        warmup_steps=warmup,
    )


def make_optimizer(recipe, model, steps_per_epoch, global_batch_size):
    """AdamW with the recipe's schedule, clipping and EMA; no decay on `no_weight_decay_variables`.

    Under `precision="mixed_float16"` it is wrapped in Keras's `LossScaleOptimizer` (dynamic
    loss scaling: a step whose gradients overflow is skipped and the scale halves).
    """
    optimizer = _adamw_class(recipe, model)(
        learning_rate=learning_rate_schedule(recipe, steps_per_epoch, global_batch_size),
        weight_decay=recipe.weight_decay,
        global_clipnorm=recipe.clip_norm,
        use_ema=recipe.ema_momentum is not None,
        ema_momentum=recipe.ema_momentum or 0.99,
    )
    optimizer.exclude_from_weight_decay(var_list=no_weight_decay_variables(model))
    if recipe.precision == "mixed_float16":
        optimizer = keras.optimizers.LossScaleOptimizer(optimizer, initial_scale=recipe.initial_loss_scale)
    return optimizer


def _adamw_class(recipe, model):
    """AdamW, or `finetune.LayerDecayAdamW` with each layer's rate scale when the recipe's layer_decay is below 1."""
    if recipe.layer_decay == 1:
        return keras.optimizers.AdamW
    scales = finetune.layer_rate_scales(model, recipe.layer_decay)
    return lambda **kwargs: finetune.LayerDecayAdamW(rate_scales=scales, **kwargs)


def _warn_if_normalised_unlike_the_weights(recipe):
    """Warns when a run from a registry model's timm checkpoint normalises its images unlike those weights.

    A warning, not an error: fine-tuning can adapt, and a recipe may mean it; but most often
    the recipe kept another model's mean and std (`--set model=...` on a shipped recipe).
    """
    if recipe.model in teachers.TEACHERS:
        return
    pretrained = keras_vits.get_pretrained_cfg(recipe.model)
    mean, std = tuple(pretrained["mean"]), tuple(pretrained["std"])
    if len(mean) == len(recipe.mean) and (mean, std) != (tuple(recipe.mean), tuple(recipe.std)):
        compact = functools.partial(json.dumps, separators=(",", ":"))
        warnings.warn(
            f"The recipe normalises images with mean={list(recipe.mean)}, std={list(recipe.std)}, but "
            f"{recipe.model}'s weights were trained with mean={list(mean)}, std={list(std)}; to match them: "
            f"--set mean={compact(mean)} std={compact(std)}",
            UserWarning,
            stacklevel=5,  # the caller of train()
        )


def _check_fine_tuning_before_data(recipe, output_dir):
    """Refuses, before any data is read, initial weights of another family or size, and a `trainable` or
    `layer_decay` the model cannot take: the model is built once here, with the initial weights' own head.
    A resumed run (a checkpoint in `output_dir`) does not read its initial weights again."""
    resuming = tf.train.latest_checkpoint(str(output_dir / run_folder.CHECKPOINT_DIR)) is not None
    weights = None if resuming else recipe.initial_weights
    if weights is not None and not str(weights).endswith(".keras"):
        _warn_if_normalised_unlike_the_weights(recipe)
    if weights is None and recipe.trainable == "all" and recipe.layer_decay == 1:
        return
    num_classes = 1  # any head: only the body is checked here
    if weights is not None and str(weights).endswith(".keras"):
        num_classes = int(load_keras_file(weights, "initial weights").outputs[0].shape[-1])
    elif weights is not None and recipe.model not in teachers.TEACHERS:
        num_classes = None  # create_model takes the checkpoint's head
    model = build_model(recipe, num_classes, len(recipe.mean), weights)
    finetune.frozen_depth(model, recipe.trainable)
    if recipe.layer_decay != 1:
        finetune.layer_rate_scales(model, recipe.layer_decay)


def _prepare_fine_tuning(run, resuming):
    """Freezes what the recipe's `trainable` names; on a fresh start from a timm checkpoint with another
    class count, scales the fresh head by `head_init_scale` and says so."""
    recipe = run.recipe
    finetune.set_trainable(run.student, recipe.trainable)
    weights = recipe.initial_weights
    if resuming or weights is None or str(weights).endswith(".keras"):
        return  # a .keras file fits the model exactly, head included
    checkpoint_classes = checkpoint_num_classes(resolve_checkpoint(weights), run.student.weight_map)
    if checkpoint_classes == run.source.num_classes or not run.student.classifier_layers():
        return
    head = finetune.rescale_head(run.student, recipe.head_init_scale)
    if run.shows_progress:
        print(
            f"Head {', '.join(head)} initialised afresh and scaled by head_init_scale={recipe.head_init_scale:g}: "
            f"{run.source.num_classes} classes here, {checkpoint_classes or 'none'} in {weights}."
        )


def loss_scale(optimizer):
    """The current dynamic loss scale of a `LossScaleOptimizer`, else None."""
    scale = getattr(optimizer, "dynamic_scale", None)
    return None if scale is None else float(scale.numpy())


def training_checkpoint(student, optimizer, batches_done=None, train_seconds=None):
    """A `tf.train.Checkpoint` of every student weight and optimizer variable, keyed by name.

    `batches_done` (an int64 variable, stored as `progress/batches_done`) counts the training
    batches consumed. The optimizer's `iterations` cannot: a LossScaleOptimizer leaves it
    unchanged on the steps it skips, so a resumed run would repeat them. `train_seconds` (a
    float64 variable, `progress/train_seconds`) is the training time of those batches, summed
    over every process of the run.

    Keys are `student/<layer>/<weight>`, `optimizer/<variable name>` and, under mixed_float16,
    `loss_scale/dynamic_scale` and `loss_scale/step_counter`, rather than the
    attribute paths `tf.train.Checkpoint(student=..., optimizer=...)` would record
    (`student/_operations/7/_kernel`, `optimizer/_trainable_variables/3`): those name Keras
    internals, which can change between Keras versions, and say nothing to a reader.
    """
    student_state = {}
    for key, variable in layer_weights(student).items():
        layer_name, weight_name = key.split("/")
        student_state.setdefault(layer_name, {})[weight_name] = variable
    inner = getattr(optimizer, "inner_optimizer", None)
    optimizer_state = {}
    for variable in (inner or optimizer).variables:
        if variable.name in optimizer_state:
            raise ValueError(
                f"Two optimizer variables share the name {variable.name!r}; cannot checkpoint them by name."
            )
        optimizer_state[variable.name] = variable
    groups = {"student": student_state, "optimizer": optimizer_state}
    if inner is not None:  # a LossScaleOptimizer's own variables (the scale, its step counter)
        inner_ids = {id(variable) for variable in inner.variables}
        groups["loss_scale"] = {v.name: v for v in optimizer.variables if id(v) not in inner_ids}
    progress = {"batches_done": batches_done, "train_seconds": train_seconds}
    progress = {name: variable for name, variable in progress.items() if variable is not None}
    if progress:
        groups["progress"] = progress
    return tf.train.Checkpoint(**groups)


def restore_checkpoint(checkpoint, path):
    """Restores every variable of `checkpoint` from `path`; raises if any is missing or left over."""
    status = checkpoint.restore(path)
    try:
        status.assert_consumed()
    except AssertionError as error:
        raise ValueError(
            f"The checkpoint {path} does not hold exactly this run's model and optimizer variables "
            f"(a run of another model, optimizer setting or Keras (Keras 3 / tf-keras) wrote it?); "
            f"choose another output folder. {error}"
        ) from error


@contextlib.contextmanager
def dtype_policy(precision):
    """Sets Keras's global dtype policy to `precision` (`"float32"`, `"mixed_float16"`, ...) inside the block."""
    previous = keras.mixed_precision.dtype_policy()
    keras.mixed_precision.set_dtype_policy(precision)
    try:
        yield
    finally:
        keras.mixed_precision.set_dtype_policy(previous)


def warn_if_slow_precision(precision):
    """float16 has no fast kernels on CPUs: allowed (for testing a GPU recipe), but said."""
    if precision == "mixed_float16" and not tf.config.list_physical_devices("GPU"):
        warnings.warn(
            "precision='mixed_float16' without a GPU: CPUs have no float16 matmul kernels, so training "
            "runs several times slower than float32 here. It is meant for GPUs.",
            RuntimeWarning,
            stacklevel=3,
        )


def with_precision(model, precision):
    """`model` rebuilt with every layer in the dtype policy `precision`, its weights copied; or `model` itself.

    A teacher saved in float32 runs in the student's mixed precision this way, and one saved in a
    mixed policy runs in float32. Its outputs are cast to float32 before any loss. Models whose
    layers cannot be cloned this way, and subclasses of the functional model, are kept as they are:
    `clone_model` rebuilds a DeiT as a plain functional model, whose two outputs (class and
    distillation heads) replace the averaged head its own `call` returns.
    """
    if all(layer.dtype_policy.name == precision for layer in model.layers if layer.weights):
        return model
    if type(model).__name__ not in ("Functional", "Sequential"):
        return model

    def clone(layer):
        return layer.__class__.from_config({**layer.get_config(), "dtype": precision})

    try:
        rebuilt = keras.models.clone_model(model, clone_function=clone)
    except (TypeError, ValueError, NotImplementedError):
        return model
    rebuilt.set_weights(model.get_weights())
    return rebuilt


def load_teacher(path, num_classes):
    """A `.keras` teacher, loaded in safe mode."""
    return load_keras_file(pathlib.Path(path), "teacher")


def missing_teacher_message(recipe):
    """Why `recipe.teacher` is missing and the fixes: the recipe that trains it, another teacher, none.

    A teacher at `runs/<name>/model.keras`, where `<name>` is a shipped recipe, is that recipe's
    default output; the command to train it keeps this recipe's data set where the two differ.
    """
    path = pathlib.Path(recipe.teacher)
    parts = path.parts
    trains_it = None
    if len(parts) >= 3 and parts[-3:-2] == ("runs",) and parts[-1] == run_folder.MODEL_FILE:
        trains_it = RECIPES.get(parts[-2])
    if trains_it is not None:
        data = f" --dataset {recipe.dataset}" if recipe.dataset != trains_it.dataset else ""
        first = f"train it first (keras-vits train --recipe {trains_it.name}{data} --output {path.parent})"
    else:
        first = "train a teacher on the same data first"
    return (
        f"Teacher {path} does not exist: {first}, pass another with --teacher PATH (teacher=...), "
        f"or train without one (--distillation none)."
    )


def _check_teacher_channels(recipe, teacher, source):
    """Raises unless the teacher takes images of the data's channels (a Fashion-MNIST teacher on colour images)."""
    teacher_channels = teacher.inputs[0].shape[-1] if teacher.inputs else None
    if teacher_channels is not None and teacher_channels != source.channels:
        raise ValueError(
            f"The teacher {recipe.teacher} takes {teacher_channels}-channel images but {source.name} has "
            f"{source.channels}: distil from a teacher trained on this data (--teacher PATH), or train without "
            f"one (--distillation none)."
        )


def teacher_normalisation(recipe):
    """`(mean, std)` of the teacher's own run (its folder's recipe.json) when they differ from `recipe`'s, else None.

    The student's images are renormalised to them before the teacher sees them. A teacher
    without a recipe.json beside it is taken to share the student's normalisation;
    `DistillationModel` still refuses one that scales raw pixels itself.
    """
    if recipe.teacher is None:
        return None
    teacher_recipe = pathlib.Path(recipe.teacher).parent / run_folder.RECIPE_FILE
    if not teacher_recipe.is_file():
        return None
    saved = json.loads(teacher_recipe.read_text())
    mean, std = tuple(saved.get("mean", recipe.mean)), tuple(saved.get("std", recipe.std))
    return None if (mean, std) == (tuple(recipe.mean), tuple(recipe.std)) else (mean, std)


def _check_teacher(recipe):
    """A teacher exactly when the recipe distils, and its file there: checked before any data is read."""
    if recipe.distillation == "none" and recipe.teacher is not None:
        raise ValueError(
            f"teacher={recipe.teacher!r} was given but distillation is 'none', so it would be ignored: "
            f"set distillation to 'soft' or 'hard', or drop the teacher (--set teacher=null)."
        )
    if recipe.distillation != "none" and recipe.teacher is None:
        raise ValueError(
            f"distillation={recipe.distillation!r} needs a teacher: set teacher to a .keras file "
            f"(keras-vits train --teacher PATH), or distillation to 'none'."
        )
    if recipe.teacher is not None and not pathlib.Path(recipe.teacher).is_file():
        raise FileNotFoundError(missing_teacher_message(recipe))


def _check_inputs(recipe, source, eval_source):
    expected_channels = source.channels
    if eval_source.channels != expected_channels or eval_source.num_classes != source.num_classes:
        raise ValueError(
            f"Training and evaluation splits disagree: {source.channels} vs {eval_source.channels} channels, "
            f"{source.num_classes} vs {eval_source.num_classes} classes."
        )
    if list(source.class_names) != list(eval_source.class_names):
        raise ValueError(
            f"{source.name}'s {recipe.train_split!r} and {recipe.eval_split!r} splits name other classes: "
            f"{list(source.class_names)[:12]} against {list(eval_source.class_names)[:12]}. Set eval_split to the "
            f"split that holds the same classes (a folder data set takes train/ and test/ subfolders)."
        )
    check_normalisation_channels(recipe.mean, recipe.std, expected_channels, source.name)


def check_normalisation_channels(mean, std, channels, data_name):
    """Raises unless `mean` and `std` have one entry per channel of the data, with the `--set` that fits."""
    if len(mean) == channels and len(std) == channels:
        return

    def fitted(values):  # the recipe's own values where they fit, else their average on every channel
        per_channel = list(values) if len(values) == channels else [round(sum(values) / len(values), 3)] * channels
        return json.dumps(per_channel, separators=(",", ":"))

    kind = {1: "grayscale ", 3: "colour "}.get(channels, "")
    raise ValueError(
        f"{data_name} images have {channels} channels but the recipe normalises {len(mean)} (mean={tuple(mean)}, "
        f"std={tuple(std)}); {kind}data takes one mean and std entry per channel, e.g. "
        f"--set mean={fitted(mean)} std={fitted(std)}."
    )


def _settings_differences(saved, current):
    """Training fields (not prose) where a run folder's recipe.json and this recipe differ.

    A field missing from `saved` (written before the field existed) counts as its default.
    """
    defaults = Recipe(name="defaults").to_dict()
    differences = []
    for field, value in current.items():
        if field in ("description", "expected", *EXECUTION_FIELDS):
            continue
        before = saved.get(field, defaults.get(field))
        if field == "dataset" and isinstance(before, str):  # written before paths were stored absolute
            before = absolute_dataset(before)
        if before != value:
            differences.append(f"{field}: {before!r} there, {value!r} now")
    return differences


def _check_count(value, argument, optional=False):
    """An int >= 1 (or None when `optional`), else a TypeError or ValueError naming `argument`."""
    if value is None and optional:
        return
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"{argument} must be an int >= 1{' or None' if optional else ''}, got {value!r}.")
    if value < 1:
        raise ValueError(f"{argument} must be >= 1, got {value}.")


@contextlib.contextmanager
def _evaluated_weights(optimizer, variables, ema):
    """Inside the block `variables` hold their moving averages when `ema`, as the saved model will;
    after it, the live values training goes on from."""
    if not ema:
        yield
        return
    live = [tf.identity(variable) for variable in variables]
    optimizer.finalize_variable_values(variables)
    try:
        yield
    finally:
        for variable, value in zip(variables, live):
            variable.assign(value)


def _save_checkpoint(manager, step):
    """`manager.save`, with a full disk said in one sentence (TensorFlow writes checkpoints itself, not `_io`)."""
    try:
        manager.save(checkpoint_number=step)
    except (tf.errors.OpError, OSError) as error:
        if "No space left on device" not in str(error) and getattr(error, "errno", None) != errno.ENOSPC:
            raise
        raise DiskFullError(
            f"No space left on device writing the step-{step} checkpoint in {manager.directory}. Free some space and "
            f"run the same command again: it resumes from {manager.latest_checkpoint or 'the start'}."
        ) from error


class NaNLossError(FloatingPointError):
    """The loss became NaN or infinite; the last good checkpoint is kept."""


def _shard_by_data():
    # Workers shard batches, not files: in-memory and single-file sources have no files to split.
    options = tf.data.Options()
    options.experimental_distribute.auto_shard_policy = tf.data.experimental.AutoShardPolicy.DATA
    return options


def evaluate_model(model, dataset, strategy):
    """Evaluation logs (`loss`, `top1_cls`/`top1_dist`/`top1_avg` or `top1`) over one pass of `dataset`."""
    for metric in model.metrics:
        metric.reset_state()

    @tf.function
    def eval_step(batch):
        strategy.run(model.test_step, args=(batch,))

    for batch in strategy.experimental_distribute_dataset(dataset.with_options(_shard_by_data())):
        eval_step(batch)
    return {metric.name: float(metric.result()) for metric in model.eval_metrics}


def _plot_curves(history, step_log, path):
    """Loss per logged step and per evaluation (left), top-1 per evaluation (right), against steps."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = [h["step"] for h in history]
    fig, (ax_loss, ax_acc) = plt.subplots(1, 2, figsize=(10, 4))
    if step_log:
        ax_loss.plot(
            [s["step"] for s in step_log], [s["loss"] for s in step_log], "-", label="train (epoch mean so far)"
        )
        ax_acc.plot([s["step"] for s in step_log], [100 * s["top1"] for s in step_log], "-", label="train_top1")
    ax_loss.plot(steps, [h["eval_loss"] for h in history], "o-", label="eval")
    ax_loss.set(xlabel="step", ylabel="loss", title="loss")
    for key in ("top1_cls", "top1_dist", "top1_avg", "top1"):
        if history and key in history[0]:
            ax_acc.plot(steps, [100 * h[key] for h in history], "o-", label=key)
    ax_acc.set(xlabel="step", ylabel="top-1 (%)", title="accuracy")
    for ax in (ax_loss, ax_acc):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _built_model_name(recipe):
    """The registry name, marked when `model_overrides` changed what was built from it."""
    if not recipe.model_overrides:
        return recipe.model
    overrides = ", ".join(f"{key}={value}" for key, value in sorted(recipe.model_overrides.items()))
    return f"{recipe.model} with {overrides}"


def _distillation_row(recipe):
    """The mode, the teacher, and the teacher's own normalisation where the student's images are converted to it."""
    if recipe.teacher is None:
        return recipe.distillation
    row = f"{recipe.distillation} from {recipe.teacher}"
    normalisation = teacher_normalisation(recipe)
    if normalisation is not None:
        row += f" (its inputs renormalised to its recipe's mean={list(normalisation[0])}, std={list(normalisation[1])})"
    return row


def summary_table(recipe, result):
    """The final table of one run, as text."""
    rows = [
        ("recipe", recipe.name),
        ("model", f"{_built_model_name(recipe)} ({result['parameters']:,} parameters)"),
        ("distillation", _distillation_row(recipe)),
        ("epochs / steps", f"{result['epochs']} / {result['steps']}"),
        ("global batch / replicas", f"{result['global_batch_size']} / {result['replicas']}"),
        ("train time", f"{result['train_seconds'] / 60:.1f} min ({result['images_per_second']:.0f} images/s)"),
    ]
    rows += [(name, f"{100 * value:.2f}%") for name, value in result["final"].items() if name.startswith("top1")]
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows)


@dataclasses.dataclass
class _Run:
    """What the steps of `train` share: the settings, the data, the models and their state, the logs.

    `step` counts the training batches consumed so far (`batches_done` holds it for the checkpoint);
    `train_seconds` and `trained_images` count this call's training only, `earlier_seconds` the
    training time of every earlier process of the run.
    """

    recipe: Recipe
    output_dir: pathlib.Path
    strategy: tf.distribute.Strategy
    chief: bool
    verbose: int
    source: object
    eval_source: object
    steps_per_epoch: int
    last_step: int
    student: object = None
    model: DistillationModel = None
    optimizer: object = None
    batches_done: tf.Variable = None
    saved_seconds: tf.Variable = None
    manager: tf.train.CheckpointManager = None
    writer: object = None
    history: list = dataclasses.field(default_factory=list)
    step_log: list = dataclasses.field(default_factory=list)
    log_every: int = 1
    step: int = 0
    earlier_seconds: float = 0.0
    train_seconds: float = 0.0
    trained_images: int = 0

    @property
    def global_batch(self):
        return self.recipe.batch_size

    @property
    def shows_progress(self):
        return bool(self.verbose and self.chief)


def train(
    recipe: Recipe,
    output_dir: str | os.PathLike,
    strategy: str | tf.distribute.Strategy = "default",
    tpu: str | None = None,
    max_steps: int | None = None,
    verbose: int = 1,
) -> dict:
    """Trains `recipe`, resuming from `output_dir`'s last checkpoint when there is one.

    Args:
        recipe: a `keras_vits.training.Recipe`.
        output_dir: where checkpoints, logs, curves and the final `model.keras` go.
        strategy: `"default"`, `"mirrored"`, `"multi_worker"` or `"tpu"`, or a tf.distribute.Strategy.
        tpu: TPU address for `strategy="tpu"`.
        max_steps: stop after this many optimizer steps in total (for smoke tests); None runs all epochs.
        verbose: 1 shows a progress bar and the final table.

    Returns:
        dict with the trained `student`, `final` evaluation logs, `history`, `steps`, timing and sizes.

    Raises:
        ValueError / FileNotFoundError: bad data, labels, channels, teacher, before any step.
        NaNLossError: the loss became NaN; the message names the step, checkpoints are kept.
    """
    if isinstance(recipe, Recipe):  # the run's recipe.json names its data wherever it is read from
        recipe = recipe.replace(dataset=absolute_dataset(recipe.dataset))
    run = _check_and_load_data(recipe, output_dir, strategy, tpu, max_steps, verbose)
    run.output_dir.mkdir(parents=True, exist_ok=True)
    with run_folder.folder_lock(run.output_dir) if run.chief else contextlib.nullcontext():
        recipe_json = _refuse_a_different_recipe(run)
        warn_if_slow_precision(recipe.precision)
        _build_and_restore(run)
        if run.chief:
            run_folder.atomic_write_text(run.output_dir / run_folder.RECIPE_FILE, recipe_json)
            run_folder.write_labels(run.output_dir, run.source.class_names)
        _read_the_logs_up_to_the_checkpoint(run)
        run.writer = (
            tf.summary.create_file_writer(str(run.output_dir / run_folder.TENSORBOARD_DIR))
            if run.chief
            else tf.summary.create_noop_writer()
        )
        eval_dataset = make_dataset(run.eval_source, recipe, run.global_batch, training=False)
        train_steps, steps_per_call = _compile_train_steps(run)
        run.earlier_seconds = float(run.saved_seconds.numpy())
        for epoch in range(run.step // run.steps_per_epoch, recipe.epochs):
            if run.step >= run.last_step:
                break
            _run_epoch(run, epoch, train_steps, steps_per_call)
            _evaluate_and_log(run, epoch, eval_dataset)
        return _finish(run, eval_dataset)


def _check_and_load_data(recipe, output_dir, strategy, tpu, max_steps, verbose):
    """Checks the arguments, makes the strategy and loads both splits: a `_Run` with no models yet."""
    if not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a keras_vits.training.Recipe, got {type(recipe).__name__}.")
    output_dir = as_path(output_dir, "output_dir")
    if output_dir.exists() and not output_dir.is_dir():
        raise ValueError(f"The output {output_dir} is a file, not a run folder: choose another output folder.")
    _check_count(max_steps, "max_steps", optional=True)
    keras.utils.set_random_seed(recipe.seed)
    strategy = make_strategy(strategy, tpu) if isinstance(strategy, str) else strategy
    replicas = strategy.num_replicas_in_sync
    if recipe.batch_size % replicas:
        raise ValueError(f"batch_size {recipe.batch_size} does not split over {replicas} replicas.")

    _check_teacher(recipe)
    _check_fine_tuning_before_data(recipe, output_dir)
    source_args = dict(
        data_dir=recipe.data_dir, manual_dir=recipe.manual_dir, download=recipe.download, seed=recipe.seed
    )
    source = load_source(recipe.dataset, recipe.train_split, **source_args)
    # A folder's evaluation images are decoded to the training images' channels (a grayscale test
    # folder of a colour data set is still read as colour).
    eval_source = load_source(recipe.dataset, recipe.eval_split, channels=source.channels, **source_args)
    _check_inputs(recipe, source, eval_source)
    steps_per_epoch = source.num_examples // recipe.batch_size
    if steps_per_epoch == 0:
        raise ValueError(
            f"{source.name} has {source.num_examples} examples, fewer than one batch of {recipe.batch_size}."
        )
    all_steps = recipe.epochs * steps_per_epoch
    return _Run(
        recipe=recipe,
        output_dir=output_dir,
        strategy=strategy,
        chief=is_chief(strategy),
        verbose=verbose,
        source=source,
        eval_source=eval_source,
        steps_per_epoch=steps_per_epoch,
        last_step=all_steps if max_steps is None else min(max_steps, all_steps),
    )


def _refuse_a_different_recipe(run):
    """The recipe as recipe.json text; raises if the folder's recipe.json trains something else."""
    recipe_file = run.output_dir / run_folder.RECIPE_FILE
    recipe_json = json.dumps(run.recipe.to_dict(), indent=1, sort_keys=True)
    if recipe_file.exists():
        differences = _settings_differences(json.loads(recipe_file.read_text()), json.loads(recipe_json))
        if differences:
            raise ValueError(
                f"{run.output_dir} holds a run of a different recipe ({recipe_file}: {'; '.join(differences)}); "
                f"a resumed run must keep its settings. Choose another output folder."
            )
    labels_file = run.output_dir / run_folder.LABELS_FILE
    trained_on = run_folder.read_labels(labels_file) if labels_file.is_file() else None
    if trained_on is not None and trained_on != list(run.source.class_names):
        raise ValueError(
            f"{run.output_dir} holds a run trained on the classes {trained_on[:12]} ({labels_file}), but "
            f"{run.source.name} now has {list(run.source.class_names)[:12]}: a resumed run must keep its data's "
            f"classes. Choose another output folder, or restore the data."
        )
    return recipe_json


def _build_and_restore(run):
    """Builds the student, teacher and optimizer, and restores them from the newest checkpoint if any."""
    recipe = run.recipe
    checkpoint_dir = run.output_dir / run_folder.CHECKPOINT_DIR
    if not run.chief:  # every worker saves (collectives), only the chief's copy is kept
        checkpoint_dir = run.output_dir / f".worker-{run.strategy.cluster_resolver.task_id}-checkpoints"
    resuming = tf.train.latest_checkpoint(str(checkpoint_dir)) is not None
    with run.strategy.scope(), dtype_policy(recipe.precision):
        # A resumed run restores every weight from its checkpoint: the initial weights are not read again.
        initial_weights = None if resuming else recipe.initial_weights
        run.student = build_model(recipe, run.source.num_classes, run.source.channels, initial_weights)
        _prepare_fine_tuning(run, resuming)
        teacher, teacher_preprocessing = None, None
        if recipe.distillation != "none":
            teacher = with_precision(load_teacher(recipe.teacher, run.source.num_classes), recipe.precision)
            _check_teacher_channels(recipe, teacher, run.source)
            normalisation = teacher_normalisation(recipe)
            if normalisation is not None:
                teacher_preprocessing = renormalize(recipe.mean, recipe.std, *normalisation)
        run.model = DistillationModel(
            run.student,
            teacher,
            teacher_preprocessing=teacher_preprocessing,
            mode=recipe.distillation,
            alpha=recipe.alpha,
            tau=recipe.tau,
            label_smoothing=recipe.label_smoothing,
            teacher_label_smoothing=recipe.teacher_label_smoothing,
        )
        run.optimizer = make_optimizer(recipe, run.student, run.steps_per_epoch, run.global_batch)
        run.model.compile(optimizer=run.optimizer)
        run.optimizer.build(run.student.trainable_variables)
        run.batches_done = tf.Variable(0, dtype=tf.int64, trainable=False, name="batches_done")
        run.saved_seconds = tf.Variable(0.0, dtype=tf.float64, trainable=False, name="train_seconds")
        checkpoint = training_checkpoint(run.student, run.optimizer, run.batches_done, run.saved_seconds)
    run.manager = tf.train.CheckpointManager(checkpoint, str(checkpoint_dir), max_to_keep=2)
    if run.manager.latest_checkpoint:
        _restore_any_checkpoint_format(run, checkpoint, run.manager.latest_checkpoint)
    run.step = int(run.batches_done.numpy())


def _restore_any_checkpoint_format(run, checkpoint, path):
    """Restores `path`, also as written by earlier versions: without `train_seconds`, or without `progress/`."""
    saved_keys = {key for key, _ in tf.train.list_variables(path)}
    if "progress/train_seconds/.ATTRIBUTES/VARIABLE_VALUE" in saved_keys:
        restore_checkpoint(checkpoint, path)
    elif "progress/batches_done/.ATTRIBUTES/VARIABLE_VALUE" in saved_keys:
        # written before train_seconds existed: the time counts from this checkpoint on
        restore_checkpoint(training_checkpoint(run.student, run.optimizer, run.batches_done), path)
    else:  # written before batches_done existed, by a float32 run: every batch was an iteration
        restore_checkpoint(training_checkpoint(run.student, run.optimizer), path)
        run.batches_done.assign(run.optimizer.iterations)


def _read_the_logs_up_to_the_checkpoint(run):
    """A resumed run's history and step log, without the entries written after its checkpoint."""
    resumed = run.manager.latest_checkpoint
    history_file = run.output_dir / run_folder.HISTORY_FILE
    history = json.loads(history_file.read_text()) if history_file.exists() and resumed else []
    start_epoch = run.step // run.steps_per_epoch
    run.history = [h for h in history if h["epoch"] <= start_epoch]
    steps_file = run.output_dir / run_folder.STEPS_FILE
    step_log = json.loads(steps_file.read_text()) if steps_file.exists() and resumed else []
    run.step_log = [s for s in step_log if s["step"] <= run.step]
    run.log_every = max(1, min(50, run.steps_per_epoch // 20))  # 20 points an epoch at least, for short runs too
    if run.verbose and run.step:
        print(f"Resumed from {resumed} at step {run.step} (epoch {start_epoch + 1}).")


def _compile_train_steps(run):
    """`(train_steps, steps_per_call)`: a tf.function running `count` steps, and a cap on `count` (None: none)."""
    jit_compile = choose_jit_compile(run.student, run.recipe.compile_mode, run.strategy)
    # Across processes, collectives inside the tf.range loop hung (the two-worker test, 600 s): one step a call.
    steps_per_call = 1 if isinstance(run.strategy, tf.distribute.MultiWorkerMirroredStrategy) else None
    one_step = tf.function(run.model.train_step, jit_compile=jit_compile)
    strategy, batches_done = run.strategy, run.batches_done

    @tf.function
    def train_steps(iterator, count):
        """`count` steps in one call: the host waits for the device once per call, not per step."""
        for _ in tf.range(count):
            strategy.run(one_step, args=(next(iterator),))
            batches_done.assign_add(1)

    return train_steps, steps_per_call


def _run_epoch(run, epoch, train_steps, steps_per_call):
    """Trains `epoch` from `run.step` to its end (or `run.last_step`), logging and checkpointing on the way."""
    recipe, model = run.recipe, run.model
    for metric in model.metrics:
        metric.reset_state()
    skip = run.step - epoch * run.steps_per_epoch
    augment = recipe.augment and epoch < recipe.epochs - recipe.unaugmented_final_epochs
    dataset = make_dataset(
        run.source, recipe, run.global_batch, training=True, epoch=epoch, skip_batches=skip, augment=augment
    )
    progress_names = [metric.name for metric in model.train_metrics]
    progress = keras.utils.Progbar(run.steps_per_epoch, stateful_metrics=progress_names, verbose=run.shows_progress)
    if run.shows_progress:
        print(f"Epoch {epoch + 1}/{recipe.epochs}")
    started = time.perf_counter()
    iterator = iter(run.strategy.experimental_distribute_dataset(dataset.with_options(_shard_by_data())))
    epoch_end = min((epoch + 1) * run.steps_per_epoch, run.last_step)
    while run.step < epoch_end:
        # A call ends where the host has work: a log point, a checkpoint, a summary, the epoch's end.
        count = min(
            steps_per_call or recipe.steps_per_execution,
            epoch_end - run.step,
            *(every - run.step % every for every in (run.log_every, recipe.checkpoint_every, SUMMARY_EVERY)),
        )
        with naming_undecodable_images(run.source):
            train_steps(iterator, tf.constant(count, tf.int64))
        run.step += count
        _after_steps(run, epoch, count, epoch_end, progress, started)
    run.train_seconds += time.perf_counter() - started
    run.trained_images += (run.step - epoch * run.steps_per_epoch - skip) * run.global_batch


def _after_steps(run, epoch, count, epoch_end, progress, started):
    """The host's work after `count` steps: stop on NaN, the progress bar, step log, checkpoint, summaries."""
    step, model = run.step, run.model
    loss = float(model.loss_tracker.result())
    if not np.isfinite(loss):
        where = f"at step {step}" if count == 1 else f"in steps {step - count + 1}-{step}"
        raise NaNLossError(
            f"The loss became {loss} {where} (epoch {epoch + 1}); stopped without saving. "
            f"The last good checkpoint is {run.manager.latest_checkpoint or 'none (no checkpoint yet)'}."
        )
    logs = [(m.name, float(m.result())) for m in model.train_metrics]
    progress.update(step - epoch * run.steps_per_epoch, values=logs)
    if step % run.log_every == 0:
        metrics = dict(logs)
        run.step_log.append({"step": step, "loss": metrics["loss"], "top1": metrics["top1"]})
    # At an epoch's end the checkpoint waits until the history entry is written (`_evaluate_and_log`).
    if step % run.recipe.checkpoint_every == 0 and step != epoch_end:
        if run.chief:  # the step log up to the checkpoint, so a resume from it has every point
            run_folder.atomic_write_text(run.output_dir / run_folder.STEPS_FILE, json.dumps(run.step_log))
        run.saved_seconds.assign(run.earlier_seconds + run.train_seconds + time.perf_counter() - started)
        _save_checkpoint(run.manager, step)
    if step % SUMMARY_EVERY == 0:
        with run.writer.as_default(step=step):
            for name, value in logs:
                tf.summary.scalar(f"train/{name}", value)
            tf.summary.scalar("train/learning_rate", float(run.optimizer.learning_rate))


def _evaluate_and_log(run, epoch, eval_dataset):
    """Evaluates after `epoch`, writes its history entry, TensorBoard scalars and curves, then checkpoints.

    The history entry is written before the epoch-end checkpoint: a kill between the two resumes
    from the previous checkpoint, inside this epoch, which drops the entry and writes it again;
    the other order lost the entry for good.
    """
    model, optimizer, student = run.model, run.optimizer, run.student
    train_logs = {f"train_{m.name}": float(m.result()) for m in model.train_metrics}
    # With an EMA, every evaluation scores the averaged weights, as the final one and model.keras do.
    with (
        naming_undecodable_images(run.eval_source),
        _evaluated_weights(optimizer, student.trainable_variables, run.recipe.ema_momentum is not None),
    ):
        eval_logs = evaluate_model(model, eval_dataset, run.strategy)
    entry = {"epoch": epoch + 1, "step": run.step, **train_logs, "eval_loss": eval_logs.pop("loss"), **eval_logs}
    scale = loss_scale(optimizer)
    if scale is not None:
        entry["loss_scale"] = scale
    run.history.append(entry)
    with run.writer.as_default(step=run.step):
        for name, value in entry.items():
            if name not in ("epoch", "step"):
                tf.summary.scalar(f"epoch/{name}", value)
    if run.chief:
        run_folder.atomic_write_text(run.output_dir / run_folder.HISTORY_FILE, json.dumps(run.history, indent=1))
        run_folder.atomic_write_text(run.output_dir / run_folder.STEPS_FILE, json.dumps(run.step_log))
        _plot_curves(run.history, run.step_log, run.output_dir / run_folder.CURVES_FILE)
    run.saved_seconds.assign(run.earlier_seconds + run.train_seconds)
    _save_checkpoint(run.manager, run.step)
    if run.shows_progress:
        print("  ".join(f"{k} {v:.4f}" for k, v in entry.items() if k not in ("epoch", "step")))


def _finish(run, eval_dataset):
    """The final evaluation (EMA weights, if any), `model.keras` and `result.json`: the result dict of `train`."""
    recipe, optimizer, student = run.recipe, run.optimizer, run.student
    if recipe.ema_momentum is not None:
        optimizer.finalize_variable_values(student.trainable_variables)
    with naming_undecodable_images(run.eval_source):
        final = evaluate_model(run.model, eval_dataset, run.strategy)
    if run.chief:
        run_folder.save_model_atomically(student, run.output_dir / run_folder.MODEL_FILE)
    result = {
        "student": student,
        "final": final,
        "history": run.history,
        "steps": run.step,
        "epochs": recipe.epochs,
        "replicas": run.strategy.num_replicas_in_sync,
        "global_batch_size": run.global_batch,
        "parameters": student.count_params(),
        "train_seconds": run.earlier_seconds + run.train_seconds,  # every process of the run
        "trained_images": run.trained_images,  # by this call: a resumed run counts from its checkpoint
        "images_per_second": run.trained_images / run.train_seconds if run.train_seconds else 0.0,  # this call's
        "precision": recipe.precision,
        "loss_scale": loss_scale(optimizer),
    }
    if run.chief:
        run_folder.atomic_write_text(
            run.output_dir / run_folder.RESULT_FILE,
            json.dumps({k: v for k, v in result.items() if k not in ("history", "student")}, indent=1),
        )
    if run.shows_progress:
        print(summary_table(recipe, result))
    return result


def evaluate(
    model_path: str | os.PathLike,
    dataset: str | None = None,
    split: str | None = None,
    image_size: int | None = None,
    mean: Sequence[float] | None = None,
    std: Sequence[float] | None = None,
    batch_size: int = 256,
    data_dir: str | None = None,
    recipe: Recipe | None = None,
) -> dict:
    """Top-1 of a saved student (`.keras`, safe mode): cls, dist and their average for DeiT, else one row.

    `dataset` and `split` default to the run's (its recipe's `dataset` and `eval_split`), else
    Fashion-MNIST's test split. The images are prepared as in training: the normalisation, image
    size and evaluation crop come from the run's `recipe.json` beside the model (or from `recipe`,
    or `mean`/`std` given here), and the data set's class names must match the run's `labels.txt`.

    Raises:
        ValueError: no normalisation to be found, other classes than the run's, other channels.
    """
    model_path = as_path(model_path, "model_path")
    _check_count(batch_size, "batch_size")
    _check_count(image_size, "image_size", optional=True)
    if recipe is not None and not isinstance(recipe, Recipe):
        raise TypeError(f"recipe must be a keras_vits.training.Recipe or None, got {type(recipe).__name__}.")
    student = load_keras_file(model_path)
    saved_recipe, saved_labels = run_folder.run_metadata(model_path)
    if recipe is None and saved_recipe is not None:
        known = {f.name for f in dataclasses.fields(Recipe)}
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in saved_recipe.items() if k in known}
        recipe = Recipe(**fields)
    if recipe is None and mean is None:
        raise ValueError(
            f"No {run_folder.RECIPE_FILE} beside {model_path}, so its normalisation is unknown: "
            f"pass mean and std (per channel, on [0, 1] pixels) or the run's recipe."
        )
    if (mean is None) != (std is None):
        raise ValueError(f"Pass mean and std together, got mean={mean!r}, std={std!r}.")
    size = image_size or int(student.inputs[0].shape[1])
    channels = int(student.inputs[0].shape[-1])
    from_the_run = dataset is None and recipe is not None
    dataset = dataset or (recipe.dataset if recipe is not None else "fashion_mnist")
    split = split or (recipe.eval_split if recipe is not None else "test")
    data_dir = data_dir or (recipe.data_dir if recipe is not None else None)
    changes = {"dataset": dataset, "eval_split": split, "image_size": size, "data_dir": data_dir}
    if mean is not None:
        changes.update(mean=tuple(mean), std=tuple(std))
    recipe = (recipe or Recipe(name="evaluate", mean=tuple(mean), std=tuple(std))).replace(**changes)
    if len(recipe.mean) != channels:
        raise ValueError(
            f"{model_path} takes {channels}-channel images but the normalisation has {len(recipe.mean)} "
            f"entries (mean={recipe.mean}, std={recipe.std})."
        )
    try:  # the run's seed: a folder without train/test folders is split 90/10 by it, as in training
        source = load_source(dataset, split, data_dir=data_dir, seed=recipe.seed)
    except FileNotFoundError as error:
        if not from_the_run:
            raise
        raise FileNotFoundError(
            f"{error} The data set {dataset} comes from the run's {run_folder.RECIPE_FILE} beside {model_path}; "
            f"pass the data's place now with --dataset (dataset=...)."
        ) from error
    if source.channels != channels:
        raise ValueError(
            f"{model_path} takes {channels}-channel images; {source.name} {split} has {source.channels}. "
            f"Evaluate it on data of its own kind."
        )
    model_classes = int(student.outputs[0].shape[-1])
    if source.num_classes != model_classes:
        raise ValueError(
            f"{source.name} {split} has {source.num_classes} classes (labels 0-{source.num_classes - 1}), but "
            f"{model_path} predicts {model_classes}; evaluate it on data with its own classes."
        )
    if saved_labels is not None and list(source.class_names) != list(saved_labels):
        raise ValueError(
            f"{source.name} {split} has the classes {list(source.class_names)[:12]}, but {model_path} was trained "
            f"on {saved_labels[:12]} ({run_folder.LABELS_FILE}); evaluate it on its own data set."
        )
    model = DistillationModel(student)
    with naming_undecodable_images(source):
        return evaluate_model(
            model, make_dataset(source, recipe, batch_size, training=False), tf.distribute.get_strategy()
        )
