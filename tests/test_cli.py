"""The `keras-vits` command line."""

import json
import shutil
import sys

import pytest

from keras_vits.cli import DEMO_DATA, build_parser, main


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
    common = ["--num-classes", "3", "--image-size", "32", "--output", str(tmp_path)]
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
    """The parser spells its choices out (building it imports nothing optional); they must not drift."""
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
        assert tuple(action.choices) == tuple(choices), (command, dest)
