"""The `keras-vits` command line."""

import pytest

from keras_vits.cli import build_parser, main


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


def test_demo_without_fixtures_says_where_to_run_it(tmp_path, capsys):
    assert main(["demo", "--fixtures", str(tmp_path)]) == 1
    assert "clone of the repository" in capsys.readouterr().err


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
