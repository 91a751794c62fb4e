"""The files of a training run's output folder, named once, and how they are written.

A run folder holds:

    recipe.json      the recipe's fields (a resumed run must match them)
    labels.txt       one class name per line, in label order
    model.keras      the trained student (written last)
    history.json     one entry per evaluation
    steps.json       training loss and top-1 (epoch means so far) every few steps
    result.json      final evaluation, steps and timing
    curves.png       training loss per step and evaluation top-1 per evaluation
    checkpoints/     model, optimizer and loss-scale state (tf.train.CheckpointManager)
    tensorboard/     TensorBoard logs

`keras-vits evaluate` and `keras-vits export` read `recipe.json` and `labels.txt`
beside a `model.keras`, so a trained model is always used with its own normalisation.
"""

import json
import pathlib

from keras_vits._io import LOCK_FILE, FolderInUseError, atomic_write_text, folder_lock, write_atomically

__all__ = [
    "CHECKPOINT_DIR",
    "CURVES_FILE",
    "HISTORY_FILE",
    "LABELS_FILE",
    "LOCK_FILE",
    "MODEL_FILE",
    "RECIPE_FILE",
    "RESULT_FILE",
    "STEPS_FILE",
    "TENSORBOARD_DIR",
    "FolderInUseError",
    "atomic_write_text",
    "folder_lock",
    "read_labels",
    "run_metadata",
    "save_model_atomically",
    "write_labels",
]

RECIPE_FILE = "recipe.json"
LABELS_FILE = "labels.txt"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
STEPS_FILE = "steps.json"
RESULT_FILE = "result.json"
CURVES_FILE = "curves.png"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary `.keras` file in the same folder."""
    write_atomically(path, model.save, partial_suffix=".keras")


def write_labels(folder, class_names):
    atomic_write_text(pathlib.Path(folder) / LABELS_FILE, "".join(f"{name}\n" for name in class_names))


def read_labels(path):
    """Class names from a labels file, one per line, blank lines ignored."""
    return [line.strip() for line in pathlib.Path(path).read_text().splitlines() if line.strip()]


def run_metadata(model_path):
    """`(recipe_dict or None, labels or None)` of the run folder that holds `model_path`."""
    folder = pathlib.Path(model_path).parent
    recipe_file, labels_file = folder / RECIPE_FILE, folder / LABELS_FILE
    recipe = json.loads(recipe_file.read_text()) if recipe_file.is_file() else None
    labels = read_labels(labels_file) if labels_file.is_file() else None
    return recipe, labels
