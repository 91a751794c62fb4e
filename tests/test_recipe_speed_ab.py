"""tools/recipe_speed_ab.py times the baseline checkout's code, not the caller's."""

import importlib.util
import json
import pathlib

_SPEC = importlib.util.spec_from_file_location(
    "recipe_speed_ab", pathlib.Path(__file__).parents[1] / "tools" / "recipe_speed_ab.py"
)
recipe_speed_ab = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(recipe_speed_ab)


def test_each_checkout_imports_its_own_package(tmp_path, monkeypatch):
    """`python -m` puts the working directory first on sys.path: the run must start in the checkout."""
    baseline = tmp_path / "baseline"
    (baseline / "keras_vits").mkdir(parents=True)
    (baseline / "keras_vits" / "__init__.py").write_text("")
    (baseline / "keras_vits" / "cli.py").write_text(
        "import json, pathlib, sys\n"
        "out = pathlib.Path(sys.argv[sys.argv.index('--output') + 1])\n"
        "out.mkdir(parents=True)\n"
        "(out / 'result.json').write_text(json.dumps({'images_per_second': 1.0, 'code': __file__}))\n"
    )
    monkeypatch.chdir(pathlib.Path(__file__).parents[1])  # a checkout with its own keras_vits
    output = tmp_path / "run"
    assert recipe_speed_ab.train(baseline, "fmnist_deit_none", output, steps=1) == 1.0
    imported = pathlib.Path(json.loads((output / "result.json").read_text())["code"])
    assert imported.resolve() == (baseline / "keras_vits" / "cli.py").resolve()
