"""training/: the table's statistics (deit_table.py), its script (deit_table.sh), and its recipe files
(deit_fmnist/*.py), which must hold the settings and results of the table of record."""

import importlib.util
import json
import math
import pathlib

import pytest

_SPEC = importlib.util.spec_from_file_location(
    "deit_table", pathlib.Path(__file__).parents[1] / "training" / "deit_table.py"
)
deit_table = importlib.util.module_from_spec(_SPEC)
_SPEC.loader.exec_module(deit_table)


def _student(mode, seed, avg, smoothing=0.0):
    return {
        "mode": mode,
        "teacher_label_smoothing": smoothing,
        "seed": seed,
        "epochs": 8,
        "steps": 3744,
        "top1_cls": avg - 0.001,
        "top1_dist": avg - 0.002,
        "top1_avg": avg,
        "train_seconds": 600.0,
    }


def _document(none_avgs, hard_avgs, teacher=0.941):
    students = [_student("none", seed, avg) for seed, avg in enumerate(none_avgs)]
    students += [_student("hard", seed, avg) for seed, avg in enumerate(hard_avgs)]
    students.append(_student("soft", 0, 0.86))
    return {"regime": 1.0, "teacher": {"top1": teacher, "epochs": 8, "model": "convnet_medium"}, "students": students}


def test_mean_sd_and_standard_error_per_mode():
    modes, _ = deit_table.summary(_document([0.80, 0.81, 0.82], [0.83, 0.84, 0.85]))
    mean, sd, se = modes["none"]["top1_avg"]
    assert mean == pytest.approx(0.81) and sd == pytest.approx(0.01) and se == pytest.approx(0.01 / math.sqrt(3))
    assert modes["hard"]["n"] == 3 and modes["hard"]["seeds"] == [0, 1, 2]
    assert math.isnan(modes["soft"]["top1_avg"][1]), "one seed has no standard deviation"


def test_goals_measure_the_difference_in_points_and_in_standard_errors():
    _, goals = deit_table.summary(_document([0.80, 0.81, 0.82], [0.83, 0.84, 0.85]))
    assert goals["hard_minus_none_points"] == (pytest.approx(3.0), 1.0)
    # Two means with standard error 0.577 points each: the difference's is 0.816 points.
    assert goals["hard_minus_none_standard_errors"][0] == pytest.approx(3.0 / math.sqrt(2 * (1 / 3)), rel=1e-6)
    assert goals["best_student"] == (pytest.approx(0.86), 0.92)
    assert goals["teacher"] == (0.941, 0.94)


def test_a_gain_within_the_noise_is_not_significant():
    _, goals = deit_table.summary(_document([0.80, 0.83, 0.86], [0.82, 0.85, 0.88]))
    assert goals["hard_minus_none_points"][0] == pytest.approx(2.0)
    assert goals["hard_minus_none_standard_errors"][0] < 2.0


def test_without_both_modes_there_is_no_difference_goal():
    document = _document([0.80, 0.81], [])
    _, goals = deit_table.summary(document)
    assert "hard_minus_none_points" not in goals and "best_student" in goals


def _run_folder(path, recipe, steps=3744, epochs=8):
    import json

    path.mkdir(parents=True)
    (path / "recipe.json").write_text(json.dumps(recipe))
    (path / "result.json").write_text(json.dumps({"steps": steps, "epochs": epochs, "train_seconds": 60.0}))


def _table_folders(tmp_path, student_steps=(3744, 3744), student_precisions=("mixed_bfloat16",) * 2):
    teacher = {"model": "convnet_medium", "precision": "mixed_bfloat16", "train_split": "train"}
    _run_folder(tmp_path / "teacher", teacher, steps=3744)
    for (mode, distillation), steps, precision in zip(
        (("none", "none"), ("hard", "hard")), student_steps, student_precisions
    ):
        recipe = {"distillation": distillation, "teacher_label_smoothing": 0.0, "seed": 0, "precision": precision}
        recipe["teacher"] = None if distillation == "none" else str(tmp_path / "teacher" / "model.keras")
        _run_folder(tmp_path / f"{mode}_s0", recipe, steps=steps)
    return tmp_path


@pytest.fixture
def fake_evaluate(monkeypatch):
    """Every model scores by its folder: the teacher 0.94, students 0.86 (none) and 0.87 (hard)."""
    scores = {"teacher": 0.94, "none_s0": 0.86, "hard_s0": 0.87}

    def evaluate(model_path):
        top1 = scores[pathlib.Path(model_path).parent.name]
        return {"top1": top1, "top1_cls": top1, "top1_dist": top1, "top1_avg": top1}

    monkeypatch.setattr(deit_table, "evaluate", evaluate)


def test_collect_reads_every_finished_run_into_the_documented_fields(tmp_path, fake_evaluate):
    document = deit_table.collect(_table_folders(tmp_path))
    assert document["regime"] == 1.0
    assert document["teacher"] == {"top1": 0.94, "epochs": 8, "model": "convnet_medium", "precision": "mixed_bfloat16"}
    fields = {"mode", "teacher_label_smoothing", "seed", "epochs", "steps", "top1_cls", "top1_dist", "top1_avg"}
    assert [s["mode"] for s in document["students"]] == ["none", "hard"]
    assert all(fields | {"train_seconds"} <= set(s) for s in document["students"])
    assert [s["top1_avg"] for s in document["students"]] == [0.86, 0.87]
    assert document["student_recipe"]["precision"] == "mixed_bfloat16"


def test_collect_refuses_unequal_step_budgets_and_mixed_precisions(tmp_path, fake_evaluate):
    with pytest.raises(ValueError, match=r"different numbers of steps \[1000, 3744\]"):
        deit_table.collect(_table_folders(tmp_path / "a", student_steps=(3744, 1000)))
    with pytest.raises(ValueError, match=r"differ in precision: .*float32.*none_s0.*mixed_bfloat16.*hard_s0"):
        deit_table.collect(_table_folders(tmp_path / "b", student_precisions=("float32", "mixed_bfloat16")))


def test_collect_refuses_students_with_different_augmentation(tmp_path, fake_evaluate):
    folders = _table_folders(tmp_path)
    recipe_file = folders / "hard_s0" / "recipe.json"
    recipe_file.write_text(recipe_file.read_text().replace("}", ', "random_erasing": 0.25}'))
    with pytest.raises(ValueError, match="differ in random_erasing"):
        deit_table.collect(folders)


def test_collect_compares_every_recipe_field_but_the_per_run_ones(tmp_path, fake_evaluate):
    """weight_decay was once left out of the compared fields, so a table could mix two recipes."""
    folders = _table_folders(tmp_path)
    recipe_file = folders / "hard_s0" / "recipe.json"
    recipe = json.loads(recipe_file.read_text())
    recipe.update(checkpoint_every=100, compile_mode="xla", name="another name")  # per run: allowed
    recipe_file.write_text(json.dumps(recipe))
    assert len(deit_table.collect(folders)["students"]) == 2
    recipe_file.write_text(json.dumps({**recipe, "weight_decay": 0.1}))
    with pytest.raises(ValueError, match="differ in weight_decay"):
        deit_table.collect(folders)


def test_collect_refuses_a_student_of_another_teacher(tmp_path, fake_evaluate):
    folders = _table_folders(tmp_path)
    recipe_file = folders / "hard_s0" / "recipe.json"
    recipe = json.loads(recipe_file.read_text())
    recipe["teacher"] = str(tmp_path / "older_teacher" / "model.keras")
    recipe_file.write_text(json.dumps(recipe))
    with pytest.raises(ValueError, match=r"hard_s0 distilled from .*older_teacher/model.keras, not from the table's"):
        deit_table.collect(folders)


def _fake_cli(tmp_path):
    """A `keras-vits` on PATH that logs its arguments and writes the --output folder's result.json."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    script = bin_dir / "keras-vits"
    script.write_text(
        "#!/usr/bin/env bash\n"
        f'echo "$*" >> {log}\n'
        'while [ $# -gt 0 ]; do [ "$1" = --output ] && out=$2; shift; done\n'
        'mkdir -p "$out" && echo {} > "$out/result.json"\n'
    )
    script.chmod(0o755)
    return bin_dir, log


def _table_script(runs, *names, bin_dir, **env_vars):
    import os
    import subprocess

    script = pathlib.Path(__file__).parents[1] / "training" / "deit_table.sh"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}", **env_vars)
    return subprocess.run(["bash", str(script), str(runs), *names], env=env, capture_output=True, text=True)


def test_table_script_runs_the_named_runs_once_each_with_the_teacher(tmp_path):
    bin_dir, log = _fake_cli(tmp_path)
    runs = tmp_path / "runs"
    done = _table_script(runs, "teacher", "hard_ls_s0", "none_s2", bin_dir=bin_dir)
    assert done.returncode == 0, done.stderr
    teacher, hard_ls, none = log.read_text().splitlines()
    assert "--config" in teacher and f"--output {runs}/teacher" in teacher
    assert "deit_fmnist/hard_ls.py --output" in hard_ls and "seed=0" in hard_ls
    assert f"--teacher {runs}/teacher/model.keras" in hard_ls and "--precision mixed_bfloat16" in hard_ls
    assert "deit_fmnist/none.py --output" in none and "seed=2" in none and "--teacher" not in none
    # Finished runs (a result.json) are skipped when the script is started again.
    assert _table_script(runs, "teacher", "hard_ls_s0", bin_dir=bin_dir).returncode == 0
    assert len(log.read_text().splitlines()) == 3


def test_table_script_passes_student_overrides_to_students_only(tmp_path):
    bin_dir, log = _fake_cli(tmp_path)
    overrides = {"STUDENT_SET": "epochs=40 crop_scale=[0.5,1.0]"}
    done = _table_script(tmp_path / "runs", "teacher", "hard_s1", bin_dir=bin_dir, **overrides)
    assert done.returncode == 0, done.stderr
    teacher, hard = log.read_text().splitlines()
    assert "--set seed=1 epochs=40 crop_scale=[0.5,1.0] --precision" in hard
    assert "epochs=40" not in teacher


def test_table_script_runs_soft_and_hard_ls_for_every_seed_of_seeds_other(tmp_path):
    bin_dir, log = _fake_cli(tmp_path)
    runs = tmp_path / "runs"
    done = _table_script(runs, bin_dir=bin_dir, SEEDS_MAIN="0", SEEDS_OTHER="0 1")
    assert done.returncode == 0, done.stderr
    outputs = [line.split("--output ")[1].split()[0] for line in log.read_text().splitlines()]
    names = ["teacher", "hard_s0", "none_s0", "soft_s0", "hard_ls_s0", "soft_s1", "hard_ls_s1"]
    assert outputs == [f"{runs}/{name}" for name in names]


def test_table_script_refuses_an_unknown_run_name(tmp_path):
    bin_dir, log = _fake_cli(tmp_path)
    done = _table_script(tmp_path / "runs", "hard_seed0", bin_dir=bin_dir)
    assert done.returncode == 2 and "unknown run hard_seed0" in done.stderr
    assert not log.exists()


def test_a_signal_to_the_table_script_stops_the_run_it_waits_on(tmp_path):
    """The run once went on training after its lane's script was killed."""
    import os
    import signal
    import subprocess
    import time

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    pid_file = tmp_path / "train.pid"
    (bin_dir / "keras-vits").write_text(f"#!/usr/bin/env bash\necho $$ > {pid_file}\nexec sleep 60\n")
    (bin_dir / "keras-vits").chmod(0o755)
    script = pathlib.Path(__file__).parents[1] / "training" / "deit_table.sh"
    env = dict(os.environ, PATH=f"{bin_dir}:{os.environ['PATH']}")
    lane = subprocess.Popen(["bash", str(script), str(tmp_path / "runs"), "none_s0"], env=env)
    deadline = time.monotonic() + 30
    while not pid_file.exists() or not pid_file.read_text().strip():
        assert time.monotonic() < deadline, "the fake run never started"
        time.sleep(0.05)
    train_pid = int(pid_file.read_text())
    lane.send_signal(signal.SIGTERM)
    assert lane.wait(timeout=10) == 143
    deadline = time.monotonic() + 10
    while os.path.exists(f"/proc/{train_pid}") and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not os.path.exists(f"/proc/{train_pid}"), "the run outlived its script"


def _second_stages(runs, started_from=None):
    """A one-epoch second stage `{mode}_s0_plain` beside each first stage of `_table_folders`."""
    for mode in ("none", "hard"):
        recipe = json.loads((runs / f"{mode}_s0" / "recipe.json").read_text())
        recipe.update(augment=False, initial_weights=str(started_from or runs / f"{mode}_s0" / "model.keras"))
        _run_folder(runs / f"{mode}_s0_plain", recipe, steps=468, epochs=1)


def test_collect_a_second_stage_adds_both_stages_steps(tmp_path, monkeypatch):
    scores = {"teacher": 0.94, "none_s0": 0.86, "hard_s0": 0.87, "none_s0_plain": 0.88, "hard_s0_plain": 0.90}

    def evaluate(model_path):
        return dict.fromkeys(
            ("top1", "top1_cls", "top1_dist", "top1_avg"), scores[pathlib.Path(model_path).parent.name]
        )

    monkeypatch.setattr(deit_table, "evaluate", evaluate)
    runs = _table_folders(tmp_path)
    _second_stages(runs)
    document = deit_table.collect(runs, stage="plain")
    assert [(s["mode"], s["top1_avg"], s["epochs"], s["steps"]) for s in document["students"]] == [
        ("none", 0.88, 9, 4212),
        ("hard", 0.90, 9, 4212),
    ]
    assert document["stage"] == "plain" and document["student_recipe"]["augment"] is False
    assert document["first_stage_recipe"]["precision"] == "mixed_bfloat16"
    # the first stages alone are still the plain table
    assert [s["steps"] for s in deit_table.collect(runs)["students"]] == [3744, 3744]


def test_collect_refuses_a_second_stage_started_from_another_model(tmp_path, fake_evaluate):
    runs = _table_folders(tmp_path)
    _second_stages(runs, started_from=tmp_path / "elsewhere" / "model.keras")
    with pytest.raises(ValueError, match=r"none_s0_plain is a second stage but started from .*elsewhere"):
        deit_table.collect(runs, stage="plain")


def test_table_script_runs_a_second_stage_from_the_first_stages_model(tmp_path):
    bin_dir, log = _fake_cli(tmp_path)
    runs = tmp_path / "runs"
    refused = _table_script(runs, "hard_s1_plain", bin_dir=bin_dir)
    assert refused.returncode == 2 and "set STAGE_SET" in refused.stderr and not log.exists()
    stage_set = {"STAGE_SET": "epochs=1 augment=false", "STUDENT_SET": "epochs=40"}
    done = _table_script(runs, "teacher", "hard_s1_plain", bin_dir=bin_dir, **stage_set)
    assert done.returncode == 0, done.stderr
    teacher, first, second = log.read_text().splitlines()
    assert f"--output {runs}/hard_s1 " in first and "--initial-weights" not in first
    assert f"--output {runs}/hard_s1_plain --initial-weights {runs}/hard_s1/model.keras" in second
    assert "--set seed=1 epochs=40 epochs=1 augment=false --precision" in second
    assert f"--teacher {runs}/teacher/model.keras" in second


def test_the_best_student_is_scored_on_the_average_head():
    """DeiT predicts with the average of both heads; a run's best head on the test set is a selection."""
    document = _document([0.80], [0.83])
    document["students"][0]["top1_dist"] = 0.95  # one head of one run, above every average
    _, goals = deit_table.summary(document)
    assert goals["best_student"] == (pytest.approx(0.86), 0.92)


# ----------------------------------------------------------------------------- the recipe files

REPOSITORY = pathlib.Path(__file__).parents[1]
TABLE_OF_RECORD = REPOSITORY / "docs" / "benchmarks" / "deit_fmnist.json"
STUDENT_FILES = {"none": ("none", 0.0), "soft": ("soft", 0.0), "hard": ("hard", 0.0), "hard_ls": ("hard", 0.1)}
FASHION_MNIST_TRAIN_IMAGES = 60000


def _recipe_module(name):
    """training/deit_fmnist/<name>.py, executed: its RECIPE and EXPECTED."""
    spec = importlib.util.spec_from_file_location(
        f"deit_fmnist_{name}", REPOSITORY / "training" / "deit_fmnist" / f"{name}.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _as_json(value):
    return json.loads(json.dumps(value))


def test_the_teacher_file_holds_the_table_of_records_teacher():
    recorded = json.loads(TABLE_OF_RECORD.read_text())["teacher"]
    teacher = _recipe_module("teacher")
    fields = teacher.RECIPE.to_dict()
    assert {key: fields[key] for key in ("model", "epochs", "precision")} == {
        key: recorded[key] for key in ("model", "epochs", "precision")
    }
    assert {"top1": recorded["top1"]} == teacher.EXPECTED
    assert f"{100 * recorded['top1']:.2f}%" in teacher.RECIPE.expected


@pytest.mark.parametrize("mode", sorted(STUDENT_FILES))
def test_each_student_file_holds_the_table_of_records_settings_and_results(mode):
    recorded = json.loads(TABLE_OF_RECORD.read_text())
    rows = [row for row in recorded["students"] if row["mode"] == mode]
    student = _recipe_module(mode)
    fields = _as_json(student.RECIPE.to_dict())
    assert {key: fields[key] for key in recorded["student_recipe"]} == recorded["student_recipe"]
    distillation, teacher_label_smoothing = STUDENT_FILES[mode]
    assert (fields["distillation"], fields["teacher_label_smoothing"]) == (distillation, teacher_label_smoothing)
    assert rows and all(row["teacher_label_smoothing"] == teacher_label_smoothing for row in rows)
    for row in rows:
        assert (fields["epochs"], fields["precision"]) == (row["epochs"], row["precision"])
        assert fields["epochs"] * (FASHION_MNIST_TRAIN_IMAGES // fields["batch_size"]) == row["steps"]
    heads = ("top1_cls", "top1_dist", "top1_avg")
    assert {row["seed"]: {head: row[head] for head in heads} for row in rows} == student.EXPECTED
    if distillation != "none":  # the teacher that teacher.py's command writes
        assert fields["teacher"] == "runs/deit_fmnist/teacher/model.keras"
    assert f"deit_fmnist/{mode}.py" in student.__doc__


def test_the_shipped_students_name_the_teacher_file_of_the_table():
    from keras_vits.training import RECIPES

    for name in ("fmnist_deit_none", "fmnist_deit_soft", "fmnist_deit_hard", "fmnist_deit_hard_ls"):
        assert "training/deit_fmnist/teacher.py" in RECIPES[name].expected, name
