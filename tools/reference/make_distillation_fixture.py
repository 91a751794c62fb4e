"""Write tests/fixtures/distillation_losses.json: DeiT's losses on one batch, as the TensorFlow backend computes them.

`tests/test_distillation.py` checks every backend (JAX and PyTorch included) against these
values within 1e-5. Run from the repository root with the project's venv (TensorFlow)::

    KERAS_BACKEND=tensorflow python tools/reference/make_distillation_fixture.py
"""

import json
import pathlib

import numpy as np

import keras_vits  # noqa: F401  (turns oneDNN on before TensorFlow loads)
from keras_vits.backend import BACKEND
from keras_vits.distillation import distillation_losses

FIXTURE = pathlib.Path(__file__).resolve().parents[2] / "tests" / "fixtures" / "distillation_losses.json"

#: `{case: distillation_losses keyword arguments}`; `pair` sends (cls, dist) logits, else the cls logits alone.
CASES = {
    "none_pair": dict(mode="none", pair=True),
    "none_single_smoothed": dict(mode="none", pair=False, label_smoothing=0.1),
    "soft_tau1": dict(mode="soft", pair=True, alpha=0.5, tau=1.0),
    "soft_tau3": dict(mode="soft", pair=True, alpha=0.3, tau=3.0),
    "hard": dict(mode="hard", pair=True),
    "hard_teacher_smoothing": dict(mode="hard", pair=True, teacher_label_smoothing=0.1),
    "hard_single": dict(mode="hard", pair=False, alpha=0.7, label_smoothing=0.05),
}


def batch(seed=0, images=6, classes=5):
    """`{cls_logits, dist_logits, teacher_logits, targets}` as lists, seeded."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, classes, size=images)
    return {
        "cls_logits": (rng.normal(size=(images, classes)) * 2).astype("float32").tolist(),
        "dist_logits": (rng.normal(size=(images, classes)) * 2).astype("float32").tolist(),
        "teacher_logits": (rng.normal(size=(images, classes)) * 3).astype("float32").tolist(),
        "targets": np.eye(classes, dtype="float32")[labels].tolist(),
    }


def losses_of(inputs, case):
    """`{loss, label_loss, distillation_loss}` as lists for one case of `CASES`."""
    arguments = dict(case)
    cls_logits, dist_logits = (np.asarray(inputs[k], "float32") for k in ("cls_logits", "dist_logits"))
    outputs = (cls_logits, dist_logits) if arguments.pop("pair") else cls_logits
    losses = distillation_losses(
        outputs, np.asarray(inputs["targets"], "float32"), np.asarray(inputs["teacher_logits"], "float32"), **arguments
    )
    return {name: np.asarray(value).tolist() for name, value in losses.items()}


def main():
    if BACKEND != "tensorflow":
        raise SystemExit(f"The fixture holds TensorFlow's values; run with KERAS_BACKEND=tensorflow, not {BACKEND}.")
    inputs = batch()
    fixture = {
        "inputs": inputs,
        "cases": {name: {"arguments": case, "losses": losses_of(inputs, case)} for name, case in CASES.items()},
    }
    FIXTURE.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {FIXTURE}")


if __name__ == "__main__":
    main()
