"""A keras_vits model saved as `.keras` loads with Keras's own loader, as the README shows."""

import pathlib
import re
import subprocess
import sys

from harness import tiny_model

README = pathlib.Path(__file__).resolve().parents[1] / "README.md"
MARKER = "<!-- readme-load-model -->"
RUN_PATH = "runs/fmnist_deit_hard/model.keras"


def _load_model_example():
    match = re.search(re.escape(MARKER) + r"\s*```python\n(.*?)```", README.read_text(), re.DOTALL)
    assert match, f"README.md has no python block after {MARKER}"
    return match.group(1)


def _run(code):
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)


def test_the_readme_load_model_example_loads_a_saved_deit_in_a_fresh_python(tmp_path):
    path = tmp_path / "model.keras"
    tiny_model("deit").save(path)
    example = _load_model_example()
    assert RUN_PATH in example
    loaded = _run(example.replace(RUN_PATH, str(path)) + "print(type(model).__name__)\n")
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.strip().splitlines()[-1] == "DeiT"
    # What the README says Keras answers without the import: keras_vits is the module it needs.
    without = _run(f"import keras\nkeras.models.load_model({str(path)!r})\n")
    assert without.returncode != 0
    assert "Could not locate class 'DeiT'" in without.stderr and "keras_vits" in without.stderr
