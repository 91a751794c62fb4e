"""Write tests/fixtures/keras_files/: one tiny `.keras` model per family, saved by the TensorFlow backend.

Each `<family>.keras` (random weights, tests/harness.py's tiny config) comes with
`<family>_io.safetensors`: `images` and the TensorFlow backend's `logits`. tests/test_backends.py
loads every file on each backend (JAX and PyTorch included) and checks the logits within 1e-5.
Run from the repository root with the project's venv::

    KERAS_BACKEND=tensorflow python tools/reference/make_keras_file_fixtures.py
"""

import pathlib
import sys

from safetensors.numpy import save_file

ROOT = pathlib.Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests"))

from harness import random_images, tiny_model, to_numpy  # noqa: E402

import keras_vits  # noqa: E402, F401  (turns oneDNN on before TensorFlow loads)
from keras_vits.backend import BACKEND, keras  # noqa: E402

OUTPUT = ROOT / "tests" / "fixtures" / "keras_files"
FAMILIES = ("vit", "deit", "swin", "pvt_v1", "pvt_v2")


def main():
    if BACKEND != "tensorflow":
        raise SystemExit(f"The files are the TensorFlow backend's; run with KERAS_BACKEND=tensorflow, not {BACKEND}.")
    OUTPUT.mkdir(parents=True, exist_ok=True)
    for seed, family in enumerate(FAMILIES):
        keras.utils.set_random_seed(seed)
        model = tiny_model(family)
        images = random_images((2, *model.inputs[0].shape[1:]), seed=seed)
        model.save(OUTPUT / f"{family}.keras")
        save_file({"images": images, "logits": to_numpy(model(images))}, str(OUTPUT / f"{family}_io.safetensors"))
        print(f"wrote {family}.keras")


if __name__ == "__main__":
    main()
