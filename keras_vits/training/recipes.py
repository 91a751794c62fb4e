"""Training recipes: the `Recipe` type, the recipes shipped with the package, and recipe files.

    keras-vits train --recipe fmnist_deit_hard --set epochs=2 --set batch_size=128
    keras-vits train --config my_recipe.py      # a file that defines RECIPE (or a .json of fields)

Each recipe states its data, model, optimizer, schedule, augmentation and
distillation, and what it is expected to reach (measured numbers are in
docs/RESULTS.md with their commands).
"""

import dataclasses
import difflib
import importlib.util
import json
import os
import pathlib
from collections.abc import Sequence

from keras_vits.compile_modes import COMPILE_MODES
from keras_vits.finetune import parse_trainable
from keras_vits.variants import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD

#: Training precisions: Keras dtype policy names. Variables stay float32 in all three.
PRECISIONS = ("float32", "mixed_float16", "mixed_bfloat16")

#: Allowed range of each numeric field: (lowest, highest, whether each bound itself is allowed).
#: A smoothing of 1 would leave no label (DistillationModel refuses it), an EMA momentum of 1 never moves.
FIELD_RANGES = {
    "image_size": (1, 4096, True, True),
    "eval_crop_fraction": (0.0, 1.0, False, True),
    "drop_path_rate": (0.0, 1.0, True, True),
    "epochs": (1, None, True, True),
    "batch_size": (1, None, True, True),
    "base_lr": (0.0, None, False, True),
    "min_lr": (0.0, None, True, True),
    "warmup_epochs": (0.0, None, True, True),
    "weight_decay": (0.0, None, True, True),
    "clip_norm": (0.0, None, False, True),
    "ema_momentum": (0.0, 1.0, False, False),
    "label_smoothing": (0.0, 1.0, True, False),
    "crop_padding": (0, None, True, True),
    "mixup_alpha": (0.0, None, True, True),
    # CutMix's Beta(alpha, alpha) as Keras's CutMix takes it (a factor range within [0, 1]); DeiT uses 1.0.
    "cutmix_alpha": (0.0, 1.0, True, True),
    "random_erasing": (0.0, 1.0, True, True),
    "unaugmented_final_epochs": (0, None, True, True),
    "alpha": (0.0, 1.0, True, True),
    "tau": (0.0, None, False, True),
    "teacher_label_smoothing": (0.0, 1.0, True, False),
    "initial_loss_scale": (0.0, None, False, True),
    "seed": (0, None, True, True),
    "checkpoint_every": (1, None, True, True),
    "steps_per_execution": (1, None, True, True),
    "layer_decay": (0.0, 1.0, False, True),
    "head_init_scale": (0.0, None, False, True),
}
_OPTIONAL = {"data_dir", "manual_dir", "clip_norm", "ema_momentum", "randaugment", "teacher", "initial_weights"}


#: A `dataset` of image folders: "folder:PATH".
FOLDER_PREFIX = "folder:"


def absolute_dataset(dataset: str) -> str:
    """`"folder:PATH"` with PATH absolute (a run is evaluated from other folders); any other data set as it is."""
    path = dataset[len(FOLDER_PREFIX) :] if isinstance(dataset, str) and dataset.startswith(FOLDER_PREFIX) else ""
    return f"{FOLDER_PREFIX}{pathlib.Path(path).expanduser().absolute()}" if path else dataset


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _check_field(name, annotation, value):
    """Type and range of one recipe field; raises with the field, the value and what it takes."""
    if value is None and name in _OPTIONAL:
        return
    expected = {"str": str, "int": int, "float": (int, float), "bool": bool, "tuple": tuple, "dict": dict}
    kind = annotation if isinstance(annotation, str) else annotation.__name__
    wanted = expected[kind]
    if not isinstance(value, wanted) or (kind in ("int", "float") and isinstance(value, bool)):
        article = "an" if kind[0] in "aeiou" else "a"
        raise TypeError(f"Recipe field {name} takes {article} {kind}, got {value!r} ({type(value).__name__}).")
    if name in FIELD_RANGES:
        low, high, low_allowed, high_allowed = FIELD_RANGES[name]
        too_low = value < low or (value == low and not low_allowed)
        too_high = high is not None and (value > high or (value == high and not high_allowed))
        if too_low or too_high:
            bound = f">= {low}" if low_allowed else f"> {low}"
            bound += (f" and <= {high}" if high_allowed else f" and < {high}") if high is not None else ""
            raise ValueError(f"Recipe field {name} must be {bound}, got {value!r}.")


@dataclasses.dataclass(frozen=True)
class Recipe:
    """One experiment. Learning rates are per 512 images: lr = base_lr * global_batch / 512."""

    name: str
    description: str = ""
    # data
    dataset: str = "fashion_mnist"  # "fashion_mnist", a tfds name, or "folder:/path/to/class/folders"
    train_split: str = "train"
    eval_split: str = "test"
    data_dir: str = None  # tfds data_dir
    manual_dir: str = None  # tfds manual_dir (ImageNet's tar files)
    download: bool = False  # let tfds download and prepare the data set
    image_size: int = 28
    mean: tuple = (0.2860,)  # per-channel, images scaled to [0, 1] first
    std: tuple = (0.3530,)
    eval_crop_fraction: float = 1.0  # evaluation: resize to image_size / fraction, centre-crop (0.875 on ImageNet)
    # model: a registry name (with overrides) or a teacher from keras_vits.training.teachers
    model: str = "deit_tiny_distilled_patch16_224"
    model_overrides: dict = dataclasses.field(default_factory=dict)
    drop_path_rate: float = 0.0
    # Start from these weights instead of a random init (a resumed run restores its checkpoint instead):
    # a `.keras` file, e.g. an earlier run's model.keras for a second stage, whose weights must fit the
    # model exactly; or, for registry models, what create_model(weights=...) takes (a timm .safetensors
    # file or a Hub id), where a head of another size is left fresh.
    initial_weights: str = None
    # fine-tuning (keras_vits.finetune): each layer's learning rate is scaled by layer_decay ** (top - its depth),
    # the head at the top; trainable is "all", "head" (a linear probe) or "freeze:N" (the stem and the first N
    # stages, a ViT's blocks, frozen); a head initialised afresh because initial_weights has another class count
    # is scaled by head_init_scale.
    layer_decay: float = 1.0
    trainable: str = "all"
    head_init_scale: float = 1.0
    # optimisation
    epochs: int = 10
    batch_size: int = 256  # global, over all replicas
    base_lr: float = 5e-4
    min_lr: float = 1e-5
    warmup_epochs: float = 1.0
    weight_decay: float = 0.05
    clip_norm: float = None  # global gradient norm
    ema_momentum: float = None  # e.g. 0.9998 keeps an EMA of the weights
    label_smoothing: float = 0.1
    # augmentation (training only)
    augment: bool = True  # False: training batches are only shuffled and normalised
    crop_padding: int = 0  # pad then random-crop back (small images); 0 uses random resized crop
    crop_scale: tuple = (0.08, 1.0)  # random resized crop area range
    horizontal_flip: bool = True
    randaugment: tuple = None  # (num_ops, magnitude in [0, 1]), e.g. (2, 0.9)
    mixup_alpha: float = 0.0
    cutmix_alpha: float = 0.0
    random_erasing: float = 0.0  # probability per image
    # The last epochs train on unaugmented images (shuffled and normalised only), so the model
    # ends on the distribution it is evaluated on; 0 augments every epoch.
    unaugmented_final_epochs: int = 0
    # distillation
    distillation: str = "none"  # "none", "soft", "hard"
    teacher: str = None  # path to a `.keras` teacher
    alpha: float = 0.5
    tau: float = 1.0
    teacher_label_smoothing: float = 0.0
    # how the step runs (not what it learns, so a resumed run may change them):
    compile_mode: str = "auto"  # "graph", "xla", or "auto": keras_vits.compile_modes.XLA_TRAINING, measured per device
    steps_per_execution: int = 16  # training steps per tf.function call (fewer host round trips)
    # "float32", "mixed_float16" (GPUs; dynamic loss scaling) or "mixed_bfloat16" (TPUs, recent CPUs)
    precision: str = "float32"
    initial_loss_scale: float = 32768.0  # mixed_float16 only: the dynamic loss scale's start (Keras's default)
    # bookkeeping
    seed: int = 0
    checkpoint_every: int = 500  # steps; also at every epoch end
    expected: str = ""

    def __post_init__(self):
        for field in dataclasses.fields(self):
            _check_field(field.name, field.type, getattr(self, field.name))
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}, got {self.precision!r}.")
        if self.compile_mode not in COMPILE_MODES:
            raise ValueError(f"compile_mode must be one of {COMPILE_MODES}, got {self.compile_mode!r}.")
        parse_trainable(self.trainable)
        if self.distillation not in ("none", "soft", "hard"):
            raise ValueError(f"distillation must be 'none', 'soft' or 'hard', got {self.distillation!r}.")
        if self.unaugmented_final_epochs > self.epochs:
            raise ValueError(
                f"unaugmented_final_epochs ({self.unaugmented_final_epochs}) cannot exceed epochs ({self.epochs})."
            )
        scale = self.crop_scale
        if len(scale) != 2 or not all(map(_is_number, scale)) or not 0 < scale[0] <= scale[1] <= 1:
            raise ValueError(f"crop_scale takes (low, high) with 0 < low <= high <= 1, got {scale!r}.")
        ops = self.randaugment
        if ops is not None and (
            len(ops) != 2 or not _is_number(ops[0]) or not isinstance(ops[0], int) or ops[0] < 1
            or not _is_number(ops[1]) or not 0 <= ops[1] <= 1
        ):  # fmt: skip
            raise ValueError(f"randaugment takes (num_ops >= 1, magnitude in [0, 1]), e.g. (2, 0.9); got {ops!r}.")
        if len(self.mean) != len(self.std) or not self.mean:
            raise ValueError(f"mean {self.mean} and std {self.std} need one entry per channel each.")
        if not all(map(_is_number, (*self.mean, *self.std))):
            raise TypeError(f"mean and std must be numbers, got mean={self.mean!r}, std={self.std!r}.")
        if any(v <= 0 for v in self.std):
            raise ValueError(f"std entries must be > 0, got {self.std}.")

    def replace(self, **changes):
        """A copy with `changes`, checked against the fields."""
        known = sorted(f.name for f in dataclasses.fields(self))
        unknown = sorted(set(changes) - set(known))
        if unknown:
            close = {name: difflib.get_close_matches(name, known, n=1) for name in unknown}
            hints = [f"{match[0]!r} for {name!r}" for name, match in close.items() if match]
            hint = f" Did you mean {', '.join(hints)}?" if hints else ""
            raise ValueError(f"Unknown recipe fields {unknown}.{hint} Known: {known}.")
        return dataclasses.replace(self, **changes)

    def to_dict(self):
        return dataclasses.asdict(self)


FMNIST_STUDENT = {
    "patch_size": 4,
    "embed_dim": 96,
    "depth": 4,
    "num_heads": 3,
}
# The distillation table's and the demo's student: patch 7 gives 16 tokens (3x fewer than patch
# 4), so the same minutes buy about 2.5x the epochs, and the patch-4 student underfit at 5 epochs
# (82-84%, still rising). FMNIST_STUDENT stays the speed benchmark's case (keras_vits.benchmark).
FMNIST_STUDENT_PATCH7 = dict(FMNIST_STUDENT, patch_size=7)

# The table's students say where the table differs from them: its precision and its teacher.
_TABLE_OF_RECORD = (
    "The DeiT table of record (docs/benchmarks/deit_fmnist.json) ran this student in mixed_bfloat16; its "
    "teacher was the 30-epoch convnet_medium of training/deit_fmnist/teacher.py, not fmnist_teacher. "
    "training/deit_fmnist/{file}.py is that experiment, with its results."
)

_FMNIST_DEIT = Recipe(
    name="fmnist_deit_none",
    description="Small DeiT (patch 7, 96 wide, 4 deep) on Fashion-MNIST from scratch, labels only.",
    model="deit_tiny_distilled_patch16_224",
    model_overrides=FMNIST_STUDENT_PATCH7,
    drop_path_rate=0.0,
    epochs=8,
    batch_size=128,
    base_lr=8e-3,
    warmup_epochs=0.5,
    weight_decay=0.05,
    clip_norm=1.0,
    label_smoothing=0.0,
    # DeiT's gain needs crops the label no longer describes: under 2-pixel shifts the teacher's
    # argmax equals the label on 95% of training images and hard distillation gained nothing;
    # under these crops and erasing it agrees on 75%, and hard gains 2 points (docs/RESULTS.md).
    crop_padding=0,
    crop_scale=(0.25, 1.0),
    random_erasing=0.25,
    horizontal_flip=True,
    expected=_TABLE_OF_RECORD.format(file="none"),
)

_FMNIST_TEACHER = Recipe(
    name="fmnist_teacher",
    description="A quick convnet teacher for Fashion-MNIST (the DeiT table's is training/deit_fmnist/teacher.py).",
    model="convnet_small",
    epochs=5,
    batch_size=128,
    base_lr=4e-3,
    warmup_epochs=0.5,
    weight_decay=0.01,
    label_smoothing=0.0,
    crop_padding=2,
    expected="93.6% top-1 in 5 epochs (docs/RESULTS.md).",
)

RECIPES = {
    "fmnist_teacher": _FMNIST_TEACHER,
    "fmnist_deit_none": _FMNIST_DEIT,
    "fmnist_deit_soft": _FMNIST_DEIT.replace(
        name="fmnist_deit_soft",
        description="The same student, soft distillation (alpha 0.5, tau 1) from the convnet teacher.",
        distillation="soft",
        teacher="runs/fmnist_teacher/model.keras",
        alpha=0.5,
        tau=1.0,
        expected=_TABLE_OF_RECORD.format(file="soft"),
    ),
    "fmnist_deit_hard": _FMNIST_DEIT.replace(
        name="fmnist_deit_hard",
        description="The same student, hard distillation from the convnet teacher.",
        distillation="hard",
        teacher="runs/fmnist_teacher/model.keras",
        expected=_TABLE_OF_RECORD.format(file="hard"),
    ),
    "fmnist_deit_hard_ls": _FMNIST_DEIT.replace(
        name="fmnist_deit_hard_ls",
        description="The same student, hard distillation with label smoothing 0.1 on the teacher's label.",
        distillation="hard",
        teacher="runs/fmnist_teacher/model.keras",
        teacher_label_smoothing=0.1,
        expected=_TABLE_OF_RECORD.format(file="hard_ls"),
    ),
    "demo_teacher": _FMNIST_TEACHER.replace(
        name="demo_teacher",
        description="A few-minute convnet teacher for the README demo.",
        epochs=1,
        warmup_epochs=0.2,
        expected="87% top-1 after its one epoch in a `make demo` run.",
    ),
    "demo_deit_hard": _FMNIST_DEIT.replace(
        name="demo_deit_hard",
        description="A few-minute small-DeiT hard distillation for the README demo.",
        # Four epochs fit the demo's time; a run that short underfits, so no augmentation. With three,
        # the average head ended 0.02 points under 85% on one host (86.87% teacher, 2026-12-04).
        distillation="hard",
        teacher="runs/demo_teacher/model.keras",
        epochs=4,
        warmup_epochs=0.3,
        augment=False,
        expected="86.0% top-1 (average head; cls 86.3, dist 85.2) after its 4 epochs from an 86.9% demo teacher.",
    ),
    "imagenet_deit_small": Recipe(
        name="imagenet_deit_small",
        description="DeiT-S/16, hard distillation on ImageNet-1k: the paper's recipe (Touvron et al. 2021, table 9).",
        dataset="imagenet2012",
        eval_split="validation",
        image_size=224,
        mean=IMAGENET_DEFAULT_MEAN,
        std=IMAGENET_DEFAULT_STD,
        eval_crop_fraction=0.875,
        model="deit_small_distilled_patch16_224",
        drop_path_rate=0.1,
        epochs=300,
        batch_size=1024,
        base_lr=5e-4,
        min_lr=1e-5,
        warmup_epochs=5,
        weight_decay=0.05,
        label_smoothing=0.1,
        crop_scale=(0.08, 1.0),
        randaugment=(2, 0.9),
        mixup_alpha=0.8,
        cutmix_alpha=1.0,
        random_erasing=0.25,
        ema_momentum=0.99996,
        distillation="hard",
        teacher="regnety_160.keras",
        expected="81.2% top-1 (cls+dist average) in the paper with a RegNetY-16GF teacher.",
    ),
}


def format_recipe(recipe: Recipe) -> str:
    """Every field of `recipe` and its value, one a line, each value as `--set FIELD=VALUE` takes it (JSON)."""
    fields = recipe.to_dict()
    width = max(map(len, fields))
    lines = [f"Recipe {recipe.name} (override a field with --set FIELD=VALUE):"]
    lines += [f"  {name:<{width}}  {json.dumps(value)}" for name, value in fields.items()]
    return "\n".join(lines)


# Fine-tuning on a user's own images, then DeiT's distillation of the result into a small student:
#   keras-vits train --recipe finetune_folder --dataset folder:PATH --set initial_weights=deit_small.safetensors
#   keras-vits train --recipe distil_folder --dataset folder:PATH --set initial_weights=deit_tiny_distilled.safetensors
_FOLDER_FINE_TUNING = dict(
    dataset=FOLDER_PREFIX,  # names no folder: the run asks for --dataset folder:PATH (class folders)
    image_size=224,
    mean=IMAGENET_DEFAULT_MEAN,
    std=IMAGENET_DEFAULT_STD,
    eval_crop_fraction=0.875,
    drop_path_rate=0.1,
    epochs=30,
    batch_size=64,
    base_lr=1e-3,  # per 512 images: 1.25e-4 at batch 64, the head's rate; each layer below takes layer_decay less
    min_lr=1e-6,
    warmup_epochs=2,
    weight_decay=0.05,
    clip_norm=1.0,
    label_smoothing=0.1,
    crop_scale=(0.25, 1.0),
    randaugment=(2, 0.5),
    random_erasing=0.25,
    # MAE's and BEiT's fine-tuning of ImageNet ViTs; on the Fashion-MNIST transfer table (docs/RESULTS.md) 0.65
    # cost 2 points against none at the same peak rate: compare with --set layer_decay=1 on your own data.
    layer_decay=0.75,
    head_init_scale=0.001,  # a fresh head starts near zero, so its first steps do not upset the pretrained body
)

RECIPES["finetune_folder"] = Recipe(
    name="finetune_folder",
    description="Fine-tune DeiT-S/16 from timm's ImageNet checkpoint on a folder of images (layer decay 0.75).",
    model="deit_small_patch16_224",
    initial_weights="timm/deit_small_patch16_224.fb_in1k",
    expected="Not measured on a user's folder; the transfer table in docs/RESULTS.md measures fine-tuning, layer "
    "decay and a linear probe against training from scratch on Fashion-MNIST with a small ViT.",
    **_FOLDER_FINE_TUNING,
)
RECIPES["distil_folder"] = Recipe(
    name="distil_folder",
    description="Distil the finetune_folder model into DeiT-Ti/16 (hard distillation) on the same folder.",
    model="deit_tiny_distilled_patch16_224",
    initial_weights="timm/deit_tiny_distilled_patch16_224.fb_in1k",
    distillation="hard",
    teacher="runs/finetune_folder/model.keras",
    expected="Not measured on a user's folder: DeiT's workflow (a fine-tuned teacher, a small distilled student).",
    **_FOLDER_FINE_TUNING,
)


def get_recipe(name: str, **overrides) -> Recipe:
    """The named recipe with `overrides` applied."""
    if name not in RECIPES:
        raise ValueError(f"Unknown recipe {name!r}; known: {sorted(RECIPES)}.")
    return RECIPES[name].replace(**overrides) if overrides else RECIPES[name]


def parse_overrides(assignments: Sequence[str] | None) -> dict:
    """`["epochs=2", "mean=[0.5]", "teacher=t.keras"]` -> dict; values are JSON where they parse, else strings."""
    overrides = {}
    for item in assignments or ():
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"Overrides are key=value, got {item!r}.")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError:
            parsed = value
        overrides[key.strip()] = tuple(parsed) if isinstance(parsed, list) else parsed
    return overrides


def load_recipe_file(path: str | os.PathLike) -> Recipe:
    """The `Recipe` in a recipe file: a `.py` file that defines `RECIPE`, or a `.json` object of fields.

    A `.py` file is the user's own code and is executed, as big_vision's configs are;
    a `.json` file is only parsed. A `.json` without `name` is named after the file.

    Raises:
        FileNotFoundError: no file at `path`.
        ValueError: another suffix, no `RECIPE`, or unknown fields.
    """
    path = pathlib.Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No recipe file at {path}; expected a .py file defining RECIPE or a .json file.")
    if path.suffix == ".json":
        try:
            fields = json.loads(path.read_text())
        except json.JSONDecodeError as error:
            raise ValueError(f"{path} is not valid JSON ({error}).") from error
        if not isinstance(fields, dict):
            raise ValueError(f"{path} must hold a JSON object of recipe fields, got {type(fields).__name__}.")
        fields = {k: tuple(v) if isinstance(v, list) else v for k, v in fields.items()}
        return Recipe(name=fields.pop("name", path.stem)).replace(**fields)
    if path.suffix != ".py":
        raise ValueError(f"Recipe files are .py (defining RECIPE) or .json, got {path}.")
    spec = importlib.util.spec_from_file_location(f"keras_vits_recipe_{path.stem}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    recipe = getattr(module, "RECIPE", None)
    if not isinstance(recipe, Recipe):
        raise ValueError(f"{path} must define RECIPE = keras_vits.training.Recipe(...), got {type(recipe).__name__}.")
    return recipe
