"""The command line on first use: a quiet start, a parser that loads no library module, and one-line fixes."""

import os
import pathlib
import subprocess
import sys

import pytest

from keras_vits._cli_startup import is_the_command_line, wants_quiet
from keras_vits.cli import main

REPO = pathlib.Path(__file__).resolve().parents[1]
#: Modules behind the flags' choice lists; each imports TensorFlow's heavier parts or the training extra.
CHOICE_MODULES = (
    "keras_vits.benchmark",
    "keras_vits.compile_modes",
    "keras_vits.distillation",
    "keras_vits.export",
    "keras_vits.training",
)


def _cli(*args, python_options=False, timeout=600):
    """`python -m keras_vits.cli ARGS` in a fresh process, as a user runs it, with no log level set.

    With `python_options`, the first two of `args` go to Python itself (`-X importtime`).
    """
    env = {key: value for key, value in os.environ.items() if key != "TF_CPP_MIN_LOG_LEVEL"}
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    options, args = (args[:2], args[2:]) if python_options else ((), args)
    command = [sys.executable, *options, "-m", "keras_vits.cli", *args]
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, env=env)


def test_building_the_parser_and_its_help_load_no_choice_module():
    """The choice lists once imported the benchmark, export and training modules for every `--help` and `list`."""
    code = (
        "import sys\n"
        "import keras_vits\n"
        "from keras_vits.cli import build_parser\n"
        "parser = build_parser()\n"
        "parser.format_help()\n"
        "parser.parse_args(['list'])\n"
        f"print([name for name in sys.modules if name.startswith({CHOICE_MODULES!r})])\n"
    )
    env = dict(os.environ, PYTHONPATH=str(REPO))
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().splitlines()[-1] == "[]"


def test_the_top_level_help_is_answered_before_keras_or_tensorflow_loads():
    """`keras-vits --help` took 6.3 s (TensorFlow's import) and printed 8 log lines before the usage."""
    done = _cli("-X", "importtime", "--help", python_options=True)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.startswith("usage: keras-vits")
    imported = {line.rsplit("|", 1)[-1].strip() for line in done.stderr.splitlines() if line.startswith("import time:")}
    assert "keras_vits.cli" in imported and not imported & {"keras", "tensorflow"}
    assert _cli().returncode == 2  # no command: argparse's usage error, as before


@pytest.mark.parametrize(
    "argv, orig_argv, expected",
    [
        (["/venv/bin/keras-vits", "list"], ["/venv/bin/python", "/venv/bin/keras-vits", "list"], True),
        (["-m", "list"], ["python", "-m", "keras_vits.cli", "list"], True),
        (["/venv/bin/keras-vits", "--verbose", "list"], ["python", "/venv/bin/keras-vits", "--verbose"], False),
        (["train.py"], ["python", "train.py"], False),
        (["-m"], ["python", "-m", "pytest", "keras_vits.cli"], False),
    ],
)
def test_only_the_command_line_without_verbose_starts_quietly(argv, orig_argv, expected):
    assert wants_quiet(argv, orig_argv) is expected
    assert is_the_command_line(["python"], ["python", "-c", "import keras_vits"]) is False


def test_a_command_prints_no_tensorflow_start_up_lines():
    """`info` printed TensorFlow's oneDNN, CUDA-driver and cuInit lines on a machine without a GPU."""
    done = _cli("info", "deit_tiny_patch16_224", "--image-size", "32")
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    assert "parameters:" in done.stdout


def test_export_prints_no_converter_chatter_and_says_where_it_wrote(tmp_path):
    """The TFLite conversion printed `Ignoring Assert operator`, `trackable_obj` and `output_format` lines."""
    done = _cli(
        "export", "deit_tiny_patch16_224", "--weights", "random", "--image-size", "32", "--num-classes", "3",
        "--format", "tflite", "--output", str(tmp_path),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stderr == ""
    assert (
        done.stdout.startswith("TFLite (float32) written to")
        and (tmp_path / "deit_tiny_patch16_224_float32.tflite").is_file()
    )


def test_verbose_is_a_flag_of_every_command(capsys):
    assert main(["--verbose", "list", "deit_tiny*"]) == 0
    assert "deit_tiny_patch16_224" in capsys.readouterr().out


def test_export_of_a_registry_name_without_weights_is_refused(tmp_path, capsys):
    """It wrote a randomly initialised SavedModel, labelled class_<i>, without a word."""
    assert main(["export", "deit_tiny_patch16_224", "--output", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == [
        "keras-vits export: error: export deit_tiny_patch16_224 needs --weights: a .safetensors file or a Hub id "
        "(e.g. --weights timm/deit_tiny_patch16_224.fb_in1k); --weights random exports randomly initialised "
        "weights, for trying the export only."
    ]
    assert not list(tmp_path.iterdir())


def test_train_show_prints_the_recipe_with_its_overrides_and_trains_nothing(monkeypatch, capsys):
    import keras_vits.training

    def no_training(*args, **kwargs):
        raise AssertionError("--show must not train")

    monkeypatch.setattr(keras_vits.training, "train", no_training)
    command = ["train", "--recipe", "finetune_folder", "--dataset", "folder:data", "--set", "epochs=3"]
    assert main([*command, "--show"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Recipe finetune_folder (override a field with --set FIELD=VALUE):")
    for line in ("dataset", '"folder:data"'), ("epochs", "3"), ("mean", "[0.485, 0.456, 0.406]"):
        assert any(row.split(maxsplit=1) == list(line) for row in out.splitlines()), line


def test_train_into_an_existing_file_is_refused_before_any_data_loads(tmp_path, capsys):
    taken = tmp_path / "run"
    taken.write_text("a file")
    # An unknown data set would fail at loading: the output's error comes first.
    assert main(["train", "--recipe", "demo_teacher", "--dataset", "no_such_data_set", "--output", str(taken)]) == 2
    assert capsys.readouterr().err.splitlines() == [
        f"keras-vits train: error: The output {taken} is a file, not a run folder: choose another output folder."
    ]


def test_the_demo_ends_with_the_table_of_top1_scores():
    """The README promises the side-by-side table last; the exports once printed after it."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndemo: setup\n", 1)[1].split("\n\n", 1)[0]
    commands = [line.strip() for line in recipe.splitlines() if line.startswith("\t")]
    assert commands[-1].startswith("$(VENV)/bin/keras-vits evaluate runs/demo_teacher/model.keras")
    assert sum("keras-vits evaluate" in command for command in commands) == 1
