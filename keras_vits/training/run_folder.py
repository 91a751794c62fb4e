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

import contextlib
import fcntl
import json
import os
import pathlib

RECIPE_FILE = "recipe.json"
LABELS_FILE = "labels.txt"
MODEL_FILE = "model.keras"
HISTORY_FILE = "history.json"
STEPS_FILE = "steps.json"
RESULT_FILE = "result.json"
CURVES_FILE = "curves.png"
CHECKPOINT_DIR = "checkpoints"
TENSORBOARD_DIR = "tensorboard"
LOCK_FILE = ".lock"


class FolderInUseError(ValueError):
    """Another process is writing to this folder (a run or an export); the message names its pid."""


@contextlib.contextmanager
def folder_lock(folder):
    """Holds an exclusive lock on `folder` for the block; a second holder gets `FolderInUseError`.

    An `fcntl.flock` on `<folder>/.lock`, which holds the holder's pid. The kernel drops the
    lock when its process dies, so a killed run leaves no stale lock behind.
    """
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / LOCK_FILE, "a+") as handle:  # closing the file releases the lock
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise FolderInUseError(
                f"{folder} is in use by another process (pid {holder}); wait for it to finish, "
                f"or choose another output folder."
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{os.getpid()}\n")
        handle.flush()
        yield


def atomic_write_text(path, text):
    """Writes `text` to `path` through a temporary file in the same folder, so a kill leaves old or new."""
    path = pathlib.Path(path)
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    partial.write_text(text)
    os.replace(partial, path)


def save_model_atomically(model, path):
    """`model.save(path)` through a temporary `.keras` file in the same folder."""
    path = pathlib.Path(path)
    partial = path.with_name(f".partial-{os.getpid()}-{path.name}")
    model.save(partial)
    os.replace(partial, path)


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
