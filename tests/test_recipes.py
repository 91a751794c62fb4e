"""keras_vits.training.recipes: the shipped recipes, overrides, recipe files and the checks of every field."""

import pathlib

import pytest

from keras_vits.training.loop import (
    build_model,
)
from keras_vits.training.recipes import (
    RECIPES,
    absolute_dataset,
    format_recipe,
    get_recipe,
    load_recipe_file,
    parse_overrides,
)

pytestmark = pytest.mark.keras3_only


def test_every_recipe_builds_its_model():
    for name, recipe in RECIPES.items():
        channels = len(recipe.mean)
        model = build_model(recipe, num_classes=10, channels=channels)
        assert tuple(model.inputs[0].shape[1:]) == (recipe.image_size, recipe.image_size, channels), name


def test_overrides_are_parsed_and_checked():
    overrides = parse_overrides(["epochs=3", "randaugment=[2, 0.9]", "teacher=t.keras", "augment=false"])
    assert overrides == {"epochs": 3, "randaugment": (2, 0.9), "teacher": "t.keras", "augment": False}
    assert get_recipe("fmnist_deit_hard", **overrides).epochs == 3
    with pytest.raises(ValueError, match="Unknown recipe fields"):
        get_recipe("fmnist_deit_hard", epoch=3)
    with pytest.raises(ValueError, match="Unknown recipe 'nope'"):
        get_recipe("nope")
    with pytest.raises(ValueError, match="key=value"):
        parse_overrides(["epochs"])
    with pytest.raises(ValueError, match=r"model_overrides may not set \['image_size'\]"):
        build_model(get_recipe("fmnist_deit_hard", model_overrides={"image_size": 32}), num_classes=10, channels=1)


def test_recipe_files_py_and_json(tmp_path):
    py_file = tmp_path / "my_recipe.py"
    py_file.write_text(
        "from keras_vits.training import get_recipe\n"
        "RECIPE = get_recipe('fmnist_deit_none').replace(name='mine', epochs=7)\n"
    )
    assert load_recipe_file(py_file) == get_recipe("fmnist_deit_none").replace(name="mine", epochs=7)
    json_file = tmp_path / "tiny.json"
    json_file.write_text('{"epochs": 2, "mean": [0.5], "std": [0.25], "model_overrides": {"depth": 1}}')
    recipe = load_recipe_file(json_file)
    assert (recipe.name, recipe.epochs, recipe.mean, recipe.model_overrides) == ("tiny", 2, (0.5,), {"depth": 1})
    with pytest.raises(FileNotFoundError, match="No recipe file"):
        load_recipe_file(tmp_path / "absent.py")
    (tmp_path / "empty.py").write_text("x = 1\n")
    with pytest.raises(ValueError, match="must define RECIPE"):
        load_recipe_file(tmp_path / "empty.py")
    (tmp_path / "bad.json").write_text('{"epochz": 2}')
    with pytest.raises(ValueError, match="Unknown recipe fields"):
        load_recipe_file(tmp_path / "bad.json")
    (tmp_path / "recipe.yaml").write_text("epochs: 2\n")
    with pytest.raises(ValueError, match=r"\.py \(defining RECIPE\) or \.json"):
        load_recipe_file(tmp_path / "recipe.yaml")


def test_the_experiment_recipe_files_of_training_load():
    """Every recipe file in the top-level training/ folder loads and names its expected result."""
    files = sorted((pathlib.Path(__file__).parents[1] / "training").rglob("*.py"))
    recipes = [load_recipe_file(path) for path in files if "RECIPE =" in path.read_text()]
    assert recipes, "no recipe files under training/"
    assert all(recipe.expected for recipe in recipes)


@pytest.mark.parametrize(
    ("assignment", "error", "message"),
    [
        ("epochs=0", ValueError, "epochs must be >= 1, got 0"),
        ("epochs=-1", ValueError, "epochs must be >= 1, got -1"),
        ("epochs=abc", TypeError, "epochs takes an int, got 'abc'"),
        ("epochs=2.5", TypeError, "epochs takes an int, got 2.5"),
        ("batch_size=0", ValueError, "batch_size must be >= 1, got 0"),
        ("base_lr=abc", TypeError, "base_lr takes a float, got 'abc'"),
        ("base_lr=0", ValueError, "base_lr must be > 0.0, got 0"),
        ("label_smoothing=1.5", ValueError, "label_smoothing must be >= 0.0 and < 1.0, got 1.5"),
        ("teacher_label_smoothing=1.0", ValueError, "teacher_label_smoothing must be >= 0.0 and < 1.0, got 1.0"),
        ("ema_momentum=1.0", ValueError, "ema_momentum must be > 0.0 and < 1.0, got 1.0"),
        ("augment=3", TypeError, "augment takes a bool, got 3"),
        ("mean=[0.5,0.5]", ValueError, r"mean \(0.5, 0.5\) and std \(0.353,\) need one entry per channel"),
        ("distillation=medium", ValueError, "distillation must be 'none', 'soft' or 'hard'"),
        ("crop_scale=[0.5]", ValueError, r"crop_scale takes \(low, high\) with 0 < low <= high <= 1, got \(0.5,\)"),
        ("crop_scale=[0.9,0.5]", ValueError, r"crop_scale takes \(low, high\).*got \(0.9, 0.5\)"),
        ("crop_scale=[0,1]", ValueError, r"crop_scale takes \(low, high\).*got \(0, 1\)"),
        ("randaugment=[2]", ValueError, r"randaugment takes \(num_ops >= 1, magnitude in \[0, 1\]\)"),
        ("randaugment=[0,0.5]", ValueError, r"randaugment takes .*got \(0, 0.5\)"),
        ("randaugment=[2,1.5]", ValueError, r"randaugment takes .*got \(2, 1.5\)"),
        ("cutmix_alpha=1.5", ValueError, "cutmix_alpha must be >= 0.0 and <= 1.0, got 1.5"),
    ],
)
def test_bad_recipe_values_are_refused_before_any_work(assignment, error, message):
    """Each once trained 0 steps, repeated a string (`"abc" * steps`) or failed deep inside TensorFlow."""
    with pytest.raises(error, match=message):
        get_recipe("fmnist_deit_hard", **parse_overrides([assignment]))


def test_a_misspelt_field_is_answered_with_the_closest_field():
    with pytest.raises(ValueError, match=r"Unknown recipe fields \['epoch'\]\. Did you mean 'epochs' for 'epoch'\?"):
        get_recipe("fmnist_deit_hard", epoch=3)


def test_format_recipe_prints_every_field_as_set_takes_it():
    recipe = get_recipe("demo_deit_hard", epochs=2)
    lines = format_recipe(recipe).splitlines()
    assert lines[0] == "Recipe demo_deit_hard (override a field with --set FIELD=VALUE):"
    shown = dict(line.split(maxsplit=1) for line in lines[1:])
    assert list(shown) == list(recipe.to_dict())
    assert parse_overrides([f"{name}={value}" for name, value in shown.items()]) == {
        name: tuple(v) if isinstance(v, list) else v for name, v in recipe.to_dict().items()
    }


def test_the_folder_recipe_fine_tunes_a_registered_model_on_a_named_folder():
    recipe = get_recipe("finetune_folder")
    assert recipe.model == "deit_small_patch16_224" and recipe.initial_weights.startswith("timm/deit_small")
    assert recipe.dataset == "folder:" and len(recipe.mean) == 3  # names no folder: --dataset folder:PATH


def test_absolute_dataset_makes_a_folder_path_absolute_and_keeps_other_names(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert absolute_dataset("folder:data") == f"folder:{tmp_path / 'data'}"
    assert absolute_dataset("folder:/srv/images") == "folder:/srv/images"
    assert absolute_dataset("fashion_mnist") == "fashion_mnist" and absolute_dataset("folder:") == "folder:"
