"""The `keras-vits` command line."""

import json
import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

import keras_vits
from keras_vits.cli import DEMO_DATA, build_parser, main
from keras_vits.training.recipes import parse_overrides

REPO = pathlib.Path(__file__).resolve().parents[1]


def test_list_prints_matching_names(capsys):
    assert main(["list", "deit_tiny*"]) == 0
    assert capsys.readouterr().out.split() == ["deit_tiny_distilled_patch16_224", "deit_tiny_patch16_224"]
    assert main(["list", "nothing*"]) == 1


def test_info_prints_parameters_and_macs(capsys):
    assert main(["info", "deit_small_patch16_224"]) == 0
    out = capsys.readouterr().out
    assert "22,050,664" in out
    assert "4.60 G" in out


def test_info_with_unknown_name_fails_cleanly(capsys):
    assert main(["info", "deit_smal"]) == 2
    assert "Did you mean" in capsys.readouterr().err


def test_info_with_options_builds_the_model(capsys):
    assert main(["info", "deit_tiny_patch16_224", "--num-classes", "10"]) == 0
    model = keras_vits.create_model("deit_tiny_patch16_224", num_classes=10)
    assert f"parameters:       {model.count_params():,}\n" in capsys.readouterr().out


#: `keras-vits ARGS` as the console script runs it (`from keras_vits.cli import main; sys.exit(main())`),
#: writing the names in `sys.modules` at exit to the file `argv[1]`. The modules are read at exit
#: because the command line loads Keras with the standard error stream closed (`-X importtime` shows nothing).
_CONSOLE_SCRIPT = (
    "import atexit, json, sys\n"
    "modules_file = sys.argv.pop(1)\n"
    "atexit.register(lambda: open(modules_file, 'w').write(json.dumps(sorted(sys.modules))))\n"
    "sys.argv[0] = 'keras-vits'\n"
    "from keras_vits.cli import main\n"
    "sys.exit(main())\n"
)


def _without_keras(tmp_path, *args):
    """`keras-vits ARGS` in a fresh process: the result and the top-level names of the modules it imported."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    modules_file = tmp_path / "modules.json"
    command = [sys.executable, "-c", _CONSOLE_SCRIPT, str(modules_file), *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, env=env)
    return done, {name.split(".")[0] for name in json.loads(modules_file.read_text())}


def test_list_and_info_answer_without_importing_keras_or_tensorflow(tmp_path):
    """Each took 4.3 s, almost all of it TensorFlow's import; the output is a built model's."""
    name = "deit_tiny_distilled_patch16_224"
    model = keras_vits.create_model(name)
    expected = (
        f"model:            {name}\n"
        f"input:            {tuple(model.inputs[0].shape)}\n"
        f"parameters:       {model.count_params():,}\n"
        f"MACs per image:   {keras_vits.count_macs(model) / 1e9:.2f} G\n"
        f"pretrained:       {json.dumps(keras_vits.get_pretrained_cfg(name))}\n"
    )
    for args, stdout in (
        (["info", name], expected),
        (["list", "deit_*"], "\n".join(keras_vits.list_models("deit_*")) + "\n"),
        (["--verbose", "list"], "\n".join(keras_vits.list_models()) + "\n"),
    ):
        done, imported = _without_keras(tmp_path, *args)
        assert (done.returncode, done.stdout, done.stderr) == (0, stdout, ""), args
        assert "keras_vits" in imported and not imported & {"keras", "tensorflow"}, args
    as_module = [sys.executable, "-m", "keras_vits.cli", "info", name]  # the other command line: the same answer
    done = subprocess.run(
        as_module, capture_output=True, text=True, timeout=300, env=dict(os.environ, PYTHONPATH=str(REPO))
    )
    assert (done.returncode, done.stdout, done.stderr) == (0, expected, "")


def test_list_and_info_without_keras_keep_their_errors_and_exit_statuses(tmp_path):
    done, _ = _without_keras(tmp_path, "list", "nothing*")
    assert (done.returncode, done.stdout, done.stderr) == (1, "", "No model matches 'nothing*'.\n")
    done, _ = _without_keras(tmp_path, "info", "deit_smal")
    assert done.returncode == 2 and done.stderr.startswith(
        "keras-vits info: error: Unknown model name 'deit_smal'. Did you mean deit_small_distilled_patch16_224"
    )
    done, _ = _without_keras(tmp_path, "info")
    assert done.returncode == 2 and "the following arguments are required: name" in done.stderr


def test_demo_loads_the_fixture_and_matches_timm(capsys):
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "MACs per image" in out and "top-3" in out
    error = float(out.rsplit("=", 1)[1])
    assert error < 1e-4


def test_demo_without_fixtures_names_the_folder(tmp_path, capsys):
    assert main(["demo", "--fixtures", str(tmp_path)]) == 2
    assert f"No demo fixtures at {tmp_path}" in capsys.readouterr().err


def test_demo_fails_when_the_logits_disagree_with_timm(tmp_path, capsys):
    from safetensors.numpy import load_file, save_file

    for name in ("cases.json", "vit_token.safetensors"):
        shutil.copy(DEMO_DATA / name, tmp_path / name)
    io = load_file(str(DEMO_DATA / "vit_token_io.safetensors"))
    save_file({"images": io["images"], "logits": io["logits"] + 1.0}, str(tmp_path / "vit_token_io.safetensors"))
    assert main(["demo", "--fixtures", str(tmp_path)]) == 1
    assert "logits differ from timm's" in capsys.readouterr().err


def test_the_demo_data_shipped_in_the_package_is_the_test_fixture(fixtures_dir):
    """The demo's copy of the vit_token fixture cannot drift from the one the parity tests check."""
    for name in ("vit_token.safetensors", "vit_token_io.safetensors"):
        assert (DEMO_DATA / name).read_bytes() == (fixtures_dir / name).read_bytes(), name
    shipped = json.loads((DEMO_DATA / "cases.json").read_text())
    assert shipped == {"vit_token": json.loads((fixtures_dir / "cases.json").read_text())["vit_token"]}


def test_a_missing_extra_exits_2_and_names_it(monkeypatch, capsys):
    """Without the `train` extra, the message says what to install, and there is no traceback."""
    import keras_vits.training

    for module in ("loop", "data", "pipeline"):
        monkeypatch.delitem(sys.modules, f"keras_vits.training.{module}", raising=False)
        monkeypatch.delattr(keras_vits.training, module, raising=False)
    monkeypatch.setitem(sys.modules, "tensorflow_datasets", None)  # makes `import tensorflow_datasets` fail
    assert main(["train", "--recipe", "demo_teacher", "--max-steps", "1"]) == 2
    err = capsys.readouterr().err
    assert "needs tensorflow-datasets" in err and "pip install 'keras-vits[train]'" in err


def test_help_explains_every_command():
    text = build_parser().format_help()
    for command in ("list", "info", "export", "demo"):
        assert command in text
    with pytest.raises(SystemExit):
        main(["--help"])


def test_export_writes_a_saved_model_and_a_tflite_file(tmp_path, capsys):
    common = ["--weights", "random", "--num-classes", "3", "--image-size", "32", "--output", str(tmp_path)]
    assert main(["export", "pvt_v2_b0", "--format", "saved_model", *common]) == 0
    assert (tmp_path / "pvt_v2_b0" / "1" / "saved_model.pb").is_file()
    assert main(["export", "pvt_v2_b0", "--format", "tflite", "--mode", "float16", *common]) == 0
    assert (tmp_path / "pvt_v2_b0_float16.tflite").stat().st_size > 0
    assert main(["export", "pvt_v2_b0", "--format", "tflite", "--mode", "int8", *common]) == 2
    assert "needs --calibration" in capsys.readouterr().err


def test_export_and_evaluate_of_a_garbage_or_truncated_keras_file_say_what_it_is(tmp_path, capsys):
    """Once "File not found" for a file that was there."""
    garbage = tmp_path / "garbage" / "model.keras"
    garbage.parent.mkdir()
    garbage.write_bytes(b"not a zip archive at all")
    for command in (["export", str(garbage), "--output", str(tmp_path / "out")], ["evaluate", str(garbage)]):
        assert main(command) == 2
        assert "is not a .keras file (a .keras file is a zip archive" in capsys.readouterr().err
    assert main(["evaluate", str(tmp_path / "absent.keras")]) == 2
    assert "No model at" in capsys.readouterr().err


def test_the_clis_choices_are_the_librarys_own_lists():
    """Every choice list of the parser reads the library's own tuple, not a copy that can drift."""
    from keras_vits.benchmark import KERAS_MODES
    from keras_vits.compile_modes import COMPILE_MODES
    from keras_vits.distillation import DISTILLATION_MODES
    from keras_vits.export.tflite import TFLITE_MODES
    from keras_vits.training.loop import STRATEGIES
    from keras_vits.training.recipes import PRECISIONS

    parser = build_parser()
    subcommands = next(a for a in parser._actions if a.dest == "command").choices
    expected = {
        ("export", "mode"): TFLITE_MODES,
        ("train", "strategy"): STRATEGIES,
        ("train", "distillation"): DISTILLATION_MODES,
        ("train", "precision"): PRECISIONS,
        ("train", "compile_mode"): COMPILE_MODES,
        ("benchmark", "modes"): KERAS_MODES,
    }
    for (command, dest), choices in expected.items():
        action = next(a for a in subcommands[command]._actions if a.dest == dest)
        assert action.choices.load() is choices and tuple(action.choices) == choices, (command, dest)
        assert "no_such_choice" not in action.choices


def test_building_the_parser_needs_no_optional_dependency():
    """The modules the choice lists come from import only the core install: no extra is needed for --help."""
    from keras_vits._extras import OPTIONAL_MODULES

    code = (
        "import sys\n"
        f"for name in {sorted(OPTIONAL_MODULES)!r}:\n"
        "    sys.modules[name] = None  # makes `import name` fail\n"
        "from keras_vits.cli import build_parser\n"
        "build_parser().format_help()\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]


# ----------------------------------------------------------------------------- errors


def test_bad_input_prints_one_line_and_exits_2(capsys):
    """A TypeError that the library raises for a bad value is the user's to fix: one line, no traceback."""
    assert main(["train", "--recipe", "demo_teacher", "--set", 'epochs="2"']) == 2
    err = capsys.readouterr().err
    assert err.splitlines() == ["keras-vits train: error: Recipe field epochs takes an int, got '2' (str)."]


def _typeerror_inside_the_library(assignments):
    """parse_overrides given an int: Python raises a TypeError inside keras_vits, on a line that is no `raise`."""
    from keras_vits.training import recipes

    return recipes.parse_overrides(len(assignments) + 1)


def test_an_unexpected_error_is_named_a_bug_with_a_hint_to_rerun_with_debug(monkeypatch, capsys):
    import keras_vits.training

    monkeypatch.setattr(keras_vits.training, "parse_overrides", _typeerror_inside_the_library)
    command = ["train", "--recipe", "demo_teacher", "--output", "unused"]
    assert main(command) == 1
    err = capsys.readouterr().err
    assert err.startswith("keras-vits train: unexpected error: TypeError: 'int' object is not iterable\n")
    assert "--debug" in err and "bug" in err and "Traceback" not in err
    assert len(err.splitlines()) == 2
    with pytest.raises(TypeError, match="not iterable") as raised:  # --debug: the error itself, with its traceback
        main(["--debug", *command])
    assert raised.traceback[-1].path.name == "recipes.py"


def test_debug_prints_the_full_traceback_of_bad_input_too():
    cli = [sys.executable, "-m", "keras_vits.cli", "--debug", "info", "deit_smal"]
    debug = subprocess.run(cli, capture_output=True, text=True, timeout=300)
    assert debug.returncode == 1
    assert "Traceback (most recent call last)" in debug.stderr and "ValueError: Unknown model" in debug.stderr


def test_only_the_librarys_own_raise_statements_count_as_bad_input():
    from keras_vits.cli import raised_by_keras_vits, user_error_message
    from keras_vits.training import recipes

    def caught(call):
        try:
            call()
        except Exception as error:
            return error
        raise AssertionError("no error")

    deliberate = caught(lambda: recipes.get_recipe("nope"))
    python_inside_the_library = caught(lambda: recipes.parse_overrides(1))
    outside_the_library = caught(lambda: int("x"))
    assert raised_by_keras_vits(deliberate) and user_error_message(deliberate).startswith("Unknown recipe 'nope'")
    for bug in (python_inside_the_library, outside_the_library):
        assert not raised_by_keras_vits(bug) and user_error_message(bug) is None
    assert user_error_message(FileNotFoundError(2, "No such file", "x.keras")) == "[Errno 2] No such file: 'x.keras'"


# ------------------------------------------------------------- train and evaluate


@pytest.mark.keras3_only
def test_repeated_set_flags_all_apply():
    """`--set a=1 --set b=2` keeps both (argparse's nargs='*' alone kept only the last)."""
    args = build_parser().parse_args(["train", "--set", "epochs=1", "--set", "checkpoint_every=1", "seed=3"])
    assert parse_overrides(args.set) == {"epochs": 1, "checkpoint_every": 1, "seed": 3}


@pytest.mark.keras3_only
def test_cli_train_and_evaluate(tmp_path, capsys):
    out = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=16):
        code = main(
            [
                "train",
                "--recipe",
                "fmnist_deit_none",
                "--dataset",
                "mnist",
                "--output",
                str(out),
                "--epochs",
                "1",
                "--batch-size",
                "8",
                "--set",
                'model_overrides={"patch_size": 7, "embed_dim": 16, "depth": 1, "num_heads": 2}',
            ]
        )
        assert code == 0
        assert "top1_avg" in capsys.readouterr().out
        assert main(["evaluate", str(out / "model.keras"), "--dataset", "mnist"]) == 0
        printed = capsys.readouterr().out
        assert "class head" in printed and "distillation head" in printed and "average" in printed
        # Two models side by side (the demo prints its teacher's and its student's top-1 this way).
        teacher = tmp_path / "teacher"
        assert (
            main(
                [
                    "train",
                    "--recipe",
                    "demo_teacher",
                    "--dataset",
                    "mnist",
                    "--output",
                    str(teacher),
                    "--batch-size",
                    "8",
                    "--max-steps",
                    "1",
                ]
            )
            == 0
        )
        capsys.readouterr()
        assert main(["evaluate", str(teacher / "model.keras"), str(out / "model.keras")]) == 0
    header, teacher_row, student_row = capsys.readouterr().out.splitlines()[1:4]
    assert header.split()[1:] == ["top-1", "class", "head", "distillation", "head", "average"]
    assert teacher_row.split()[0].endswith("teacher/model.keras") and len(teacher_row.split()) == 2
    assert student_row.split()[0].endswith("run/model.keras") and len(student_row.split()) == 4
    assert (out / "labels.txt").read_text().split() == [str(i) for i in range(10)]
    assert main(["export", str(out / "model.keras"), "--output", str(tmp_path / "serving")]) == 0
    exported = tf.saved_model.load(str(tmp_path / "serving" / "run" / "1"))
    outputs = exported.signatures["serving_default"](images_0_255=tf.zeros([1, 28, 28, 1]))
    assert outputs["top_k_labels"].shape[0] == 1


@pytest.mark.keras3_only
def test_cli_train_help_explains_every_flag(capsys):
    with pytest.raises(SystemExit):
        main(["train", "--help"])
    text = capsys.readouterr().out
    for flag in ("--recipe", "--strategy", "--set", "--teacher", "--batch-size", "--max-steps", "--output"):
        assert flag in text
    assert main(["train", "--list-recipes"]) == 0
    assert main(["train", "--recipe", "fmnist_deit_hard", "--set", "epoch=1"]) == 2
    assert "Did you mean 'epochs' for 'epoch'?" in capsys.readouterr().err


@pytest.mark.keras3_only
def test_cli_distillation_none_drops_the_recipes_teacher(monkeypatch):
    import keras_vits.training

    seen = {}

    def fake_train(recipe, output, **kwargs):
        seen["recipe"] = recipe
        return {"final": {}, "steps": 0}

    monkeypatch.setattr(keras_vits.training, "train", fake_train)
    main(["train", "--recipe", "fmnist_deit_hard", "--distillation", "none", "--output", "unused"])
    assert seen["recipe"].distillation == "none" and seen["recipe"].teacher is None


@pytest.mark.keras3_only
def test_cli_refuses_epochs_zero_and_writes_nothing(tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["train", "--recipe", "fmnist_deit_none", "--output", str(out), "--set", "epochs=0"]) == 2
    assert "epochs must be >= 1" in capsys.readouterr().err
    assert not out.exists()


def test_without_tensorflow_list_still_runs_and_training_says_what_to_install():
    """TensorFlow is an extra: the parser skips choice lists it cannot load; a command that needs it says so."""
    from keras_vits.cli import LibraryChoices, user_error_message

    unloadable = LibraryChoices("keras_vits.no_such_module", "MODES")
    assert unloadable.load() is None and "any value" in unloadable and list(unloadable) == []
    missing = ModuleNotFoundError("No module named 'tensorflow'", name="tensorflow")
    assert user_error_message(missing).endswith("pip install 'keras-vits[tensorflow]' (or 'keras-vits[all]').")
