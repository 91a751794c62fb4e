"""Packaging: the wheel holds `keras_vits` alone, installs bare and with extras, and works outside the repo.

Two installs of the wheel, both run from an empty folder that holds a `training/`
package of its own (the name clash that a top-level `training` package once caused):

- bare: a fresh venv with `pip install '<wheel>[tensorflow]'`: keras, safetensors and numpy
  (the core, which every backend needs) and TensorFlow, Keras's default backend. Models, the
  CLI's `list`, `demo` and `--help` work; training fails with an ImportError that names the
  `train` extra.
- all extras: a second fresh venv that sees the test venv's packages through a `.pth`
  file (installing the full stack again would take most of CI's time), with the wheel
  installed there by `pip install --no-deps`. A few steps of `keras-vits train` run.
"""

import os
import pathlib
import re
import shutil
import subprocess
import sys
import sysconfig
import zipfile

import pytest

REPO = pathlib.Path(__file__).resolve().parents[1]
UNSHIPPED = shutil.ignore_patterns(
    ".git", ".venv", "runs", "saved_models", "build", "dist", "*.egg-info", "__pycache__"
)

pytestmark = pytest.mark.packaging


def _run(command, cwd, env=None, check=True):
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=1800)
    if check and result.returncode != 0:
        raise AssertionError(f"{command} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    source = tmp_path_factory.mktemp("source") / "keras_vits_src"
    shutil.copytree(REPO, source, ignore=UNSHIPPED)
    out = tmp_path_factory.mktemp("wheel")
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(out), str(source)], cwd=source)
    (path,) = out.glob("keras_vits-*.whl")
    return path


@pytest.fixture(scope="module")
def clashing_folder(tmp_path_factory):
    """An empty working folder whose own `training` package would shadow a top-level one."""
    folder = tmp_path_factory.mktemp("user_project")
    (folder / "training").mkdir()
    (folder / "training" / "__init__.py").write_text("raise ImportError('the user project training package')\n")
    return folder


def _venv(path, see_packages_of=None):
    subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
    if see_packages_of:
        site = _run(
            [str(path / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], path
        )
        pathlib.Path(site.stdout.strip(), "test_venv_packages.pth").write_text(see_packages_of + "\n")
    return path / "bin"


def _clean_env():
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "TF_USE_LEGACY_KERAS")}
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    return env


def test_wheel_holds_keras_vits_alone(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    top_level = {name.split("/")[0] for name in names if not name.split("/")[0].endswith(".dist-info")}
    assert top_level == {"keras_vits"}
    assert "keras_vits/demo_data/vit_token.safetensors" in names
    metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
    requires = [line for line in zipfile.ZipFile(wheel).read(metadata).decode().splitlines() if "Requires-Dist" in line]
    core = [line for line in requires if "extra ==" not in line]
    assert sorted(line.split(":")[1].split(">")[0].split("<")[0].split("=")[0].strip() for line in core) == [
        "keras",
        "numpy",
        "safetensors",
    ]
    tensorflow_extra = [line for line in requires if 'extra == "tensorflow"' in line]
    assert [re.match(r"[\w.-]+", line.split(":", 1)[1].strip()).group() for line in tensorflow_extra] == ["tensorflow"]


def test_bare_install_runs_models_and_cli_and_names_the_missing_extra(wheel, clashing_folder, tmp_path):
    bin_dir = _venv(tmp_path / "bare")
    _run([str(bin_dir / "pip"), "install", "-q", f"{wheel}[tensorflow]"], cwd=tmp_path)
    env = _clean_env()
    python, cli = str(bin_dir / "python"), str(bin_dir / "keras-vits")
    build = "import keras_vits; m = keras_vits.create_model('vit_tiny_patch16_224'); print(m.count_params())"
    assert _run([python, "-c", build], clashing_folder, env).stdout.split()[-1] == "5717416"
    assert "usage: keras-vits" in _run([cli, "--help"], clashing_folder, env).stdout
    assert "swin_tiny_patch4_window7_224" in _run([cli, "list"], clashing_folder, env).stdout.split()
    assert "max |logits - timm logits|" in _run([cli, "demo"], clashing_folder, env).stdout
    assert "fmnist_deit_hard" in _run([cli, "train", "--list-recipes"], clashing_folder, env).stdout
    missing = _run([cli, "train", "--recipe", "demo_teacher", "--max-steps", "1"], clashing_folder, env, check=False)
    assert missing.returncode == 2
    assert "pip install 'keras-vits[train]'" in missing.stderr
    assert "Traceback" not in missing.stderr


def test_install_with_extras_trains_a_few_steps(wheel, clashing_folder, tmp_path):
    if not pathlib.Path("/usr/share/datasets/fashion-mnist").is_dir():
        pytest.skip("Fashion-MNIST is not installed (make setup installs it as root)")
    bin_dir = _venv(tmp_path / "full", see_packages_of=sysconfig.get_paths()["purelib"])
    _run([str(bin_dir / "pip"), "install", "-q", "--no-deps", str(wheel)], cwd=tmp_path)
    env = _clean_env()
    where = _run([str(bin_dir / "python"), "-c", "import keras_vits; print(keras_vits.__file__)"], clashing_folder, env)
    assert str(tmp_path / "full") in where.stdout, f"the wheel's copy was not the one imported: {where.stdout}"
    recipe = clashing_folder / "tiny.json"
    recipe.write_text(
        '{"name": "tiny", "model": "deit_tiny_distilled_patch16_224", "epochs": 1, "batch_size": 64,'
        ' "model_overrides": {"patch_size": 7, "embed_dim": 32, "depth": 1, "num_heads": 2}}'
    )
    output = tmp_path / "run"
    result = _run(
        [str(bin_dir / "keras-vits"), "train", "--config", str(recipe), "--output", str(output), "--max-steps", "3"],
        clashing_folder,
        env,
    )
    assert "(3 steps)" in result.stdout
    assert (output / "model.keras").is_file() and (output / "labels.txt").is_file()
