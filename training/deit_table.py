"""The DeiT distillation table of docs/RESULTS.md, from the run folders of training/deit_table.sh.

    bash training/deit_table.sh /work/runs/deit_fmnist
    python training/deit_table.py /work/runs/deit_fmnist [--json docs/benchmarks/deit_fmnist.json]
        [--curves docs/benchmarks/deit_fmnist_curves.png] [--stage plain]

Every model is evaluated afresh here (`keras_vits.training.evaluate`: the Fashion-MNIST test
set, 10,000 images, with the run's own normalisation); steps, epochs and training time come
from each run's result.json. Prints the per-seed rows, then mean, standard deviation and
standard error per mode, and the issue's goals, each with its margin.
"""

import argparse
import json
import pathlib
import re
import statistics

from keras_vits.training import Recipe, evaluate

MODES = (  # (run-folder prefix, distillation, teacher label smoothing, label)
    ("none", "none", 0.0, "no distillation"),
    ("soft", "soft", 0.0, "soft distillation"),
    ("hard", "hard", 0.0, "hard distillation"),
    ("hard_ls", "hard", 0.1, "hard distillation, teacher label smoothing 0.1"),
)
RECIPE_DEFAULTS = Recipe(name="defaults").to_dict()
# What may differ between the table's students: what the table varies (distillation, its teacher,
# the seed), prose, where the data lives, how the step runs, and the first stage a second stage
# starts from. Every other recipe field must be the same in all of them.
PER_RUN_FIELDS = (
    "name", "description", "expected", "seed", "distillation", "teacher", "teacher_label_smoothing",
    "initial_weights", "data_dir", "manual_dir", "download", "compile_mode", "steps_per_execution",
    "checkpoint_every",
)  # fmt: skip
SHARED_STUDENT_FIELDS = tuple(field for field in RECIPE_DEFAULTS if field not in PER_RUN_FIELDS)
GOALS = {"hard_minus_none_points": 1.0, "hard_minus_none_standard_errors": 2.0, "best_student": 0.92, "teacher": 0.94}


def _mean_sd_se(values):
    mean = statistics.fmean(values)
    sd = statistics.stdev(values) if len(values) > 1 else float("nan")
    return mean, sd, sd / len(values) ** 0.5 if len(values) > 1 else float("nan")


def _note_fields(seen, recipe, fields, run_name):
    """Adds `run_name` under each field's value in `recipe` (a field newer than the run counts as its default)."""
    for field in fields:
        value = json.dumps(recipe.get(field, RECIPE_DEFAULTS[field]))
        seen.setdefault(field, {}).setdefault(value, []).append(run_name)


def _one_value_each(seen):
    """`{field: value}` from `_note_fields`'s record, once every field has been checked to hold one value."""
    return {field: json.loads(next(iter(values))) for field, values in seen.items()}


def student_runs(runs, prefix, stage=None):
    """`(folder, first_stage_folder or None)` per finished `{prefix}_s{seed}` run (with `stage`: `..._{stage}`)."""
    pattern = re.compile(rf"{re.escape(prefix)}_s(\d+)" + (f"_{re.escape(stage)}" if stage else ""))
    for folder in sorted(pathlib.Path(runs).glob(f"{prefix}_s*")):
        match = pattern.fullmatch(folder.name)
        if match and (folder / "result.json").is_file():
            yield folder, (folder.parent / f"{prefix}_s{match.group(1)}" if stage else None)


def _first_stage(folder, first, recipe):
    """The first stage's result and recipe; `folder` must have started from its model.keras."""
    started_from = recipe.get("initial_weights")
    if started_from is None or pathlib.Path(started_from).resolve() != (first / "model.keras").resolve():
        raise ValueError(f"{folder} is a second stage but started from {started_from}, not {first / 'model.keras'}.")
    return json.loads((first / "result.json").read_text()), json.loads((first / "recipe.json").read_text())


def collect(runs, stage=None):
    """The JSON document: regime, teacher and one entry per finished student run.

    With `stage`, each row is the second stage `{mode}_s{seed}_{stage}`, started from
    `{mode}_s{seed}/model.keras`; its epochs, steps and time are both stages' together.
    """
    runs = pathlib.Path(runs)
    teacher_run = runs / "teacher"
    table_teacher = teacher_run / "model.keras"
    teacher_logs = evaluate(table_teacher)
    teacher_result = json.loads((teacher_run / "result.json").read_text())
    teacher_recipe = json.loads((teacher_run / "recipe.json").read_text())
    split = teacher_recipe.get("train_split", "train")
    fraction = re.fullmatch(r"train\[:(\d+)%\]", split)
    if split != "train" and not fraction:
        raise ValueError(f"The teacher trained on split {split!r}; the table knows 'train' and 'train[:N%]'.")
    students, shared, first_shared = [], {}, {}
    for prefix, mode, smoothing, _ in MODES:
        for folder, first in student_runs(runs, prefix, stage):
            result = json.loads((folder / "result.json").read_text())
            recipe = json.loads((folder / "recipe.json").read_text())
            if first is not None:
                first_result, first_recipe = _first_stage(folder, first, recipe)
                _note_fields(first_shared, first_recipe, SHARED_STUDENT_FIELDS, first.name)
                result = {key: result[key] + first_result[key] for key in ("epochs", "steps", "train_seconds")}
            if (recipe["distillation"], recipe["teacher_label_smoothing"]) != (mode, smoothing):
                raise ValueError(f"{folder} is not a {prefix} run: its recipe.json says {recipe['distillation']}.")
            if mode != "none" and pathlib.Path(recipe["teacher"]).resolve() != table_teacher.resolve():
                raise ValueError(
                    f"{folder} distilled from {recipe['teacher']}, not from the table's teacher {table_teacher}."
                )
            student_split = recipe.get("train_split", "train")
            if student_split != split:
                raise ValueError(f"{folder} trained on {student_split!r}, its teacher on {split!r}.")
            _note_fields(shared, recipe, SHARED_STUDENT_FIELDS, folder.name)
            logs = evaluate(folder / "model.keras")
            students.append(
                {
                    "mode": prefix,
                    "teacher_label_smoothing": smoothing,
                    "seed": recipe["seed"],
                    "epochs": result["epochs"],
                    "steps": result["steps"],
                    "top1_cls": logs["top1_cls"],
                    "top1_dist": logs["top1_dist"],
                    "top1_avg": logs["top1_avg"],
                    "train_seconds": result["train_seconds"],
                    "precision": recipe["precision"],
                }
            )
    steps = sorted({s["steps"] for s in students})
    if len(steps) > 1:
        raise ValueError(f"The students trained for different numbers of steps {steps}; the table compares one.")
    for field, runs_by_value in (*shared.items(), *first_shared.items()):
        if len(runs_by_value) > 1:
            raise ValueError(f"The students differ in {field}: {runs_by_value}; the table compares one recipe.")
    stages = {}
    if stage:
        stages = {"stage": stage, "first_stage_recipe": _one_value_each(first_shared)}
    return {
        "regime": int(fraction.group(1)) / 100 if fraction else 1.0,
        "teacher": {
            "top1": teacher_logs["top1"],
            "epochs": teacher_result["epochs"],
            "model": teacher_recipe["model"],
            "precision": teacher_recipe["precision"],
        },
        "student_recipe": _one_value_each(shared),
        **stages,
        "students": students,
    }


def summary(document):
    """Per mode: n, and mean/sd/se of each head; then the goals with their margins."""
    by_mode = {}
    for student in document["students"]:
        by_mode.setdefault(student["mode"], []).append(student)
    modes = {}
    for mode, rows in by_mode.items():
        modes[mode] = {"n": len(rows), "seeds": [r["seed"] for r in rows]}
        for head in ("top1_cls", "top1_dist", "top1_avg"):
            modes[mode][head] = _mean_sd_se([r[head] for r in rows])
    goals = {"teacher": (document["teacher"]["top1"], GOALS["teacher"])}
    if document["students"]:
        # The average head, DeiT's test-time prediction: picking each run's best head on the test
        # set would select on the data it reports.
        goals["best_student"] = (max(r["top1_avg"] for r in document["students"]), GOALS["best_student"])
    if "hard" in modes and "none" in modes:
        hard, none = modes["hard"]["top1_avg"], modes["none"]["top1_avg"]
        difference = 100 * (hard[0] - none[0])
        # The standard error of a difference of two independent means.
        se = 100 * (hard[2] ** 2 + none[2] ** 2) ** 0.5
        goals["hard_minus_none_points"] = (difference, GOALS["hard_minus_none_points"])
        goals["hard_minus_none_standard_errors"] = (difference / se if se == se and se else float("nan"), 2.0)
    return modes, goals


def print_tables(document, modes, goals):
    teacher = document["teacher"]
    print(f"Teacher ({teacher['model']}): {100 * teacher['top1']:.2f}% after {teacher['epochs']} epochs")
    print("\n| mode | seed | epochs | steps | train min | cls | dist | avg |")
    print("|---|---|---|---|---|---|---|---|")
    for r in document["students"]:
        print(
            f"| {r['mode']} | {r['seed']} | {r['epochs']} | {r['steps']} | {r['train_seconds'] / 60:.0f} | "
            f"{100 * r['top1_cls']:.2f} | {100 * r['top1_dist']:.2f} | {100 * r['top1_avg']:.2f} |"
        )
    print("\n| mode | seeds | cls mean ± sd | dist mean ± sd | avg mean ± sd | avg standard error |")
    print("|---|---|---|---|---|---|")
    for mode, row in modes.items():
        cells = [f"{100 * row[h][0]:.2f} ± {100 * row[h][1]:.2f}" for h in ("top1_cls", "top1_dist", "top1_avg")]
        print(f"| {mode} | {row['n']} | " + " | ".join(cells) + f" | {100 * row['top1_avg'][2]:.2f} |")
    print("\n| goal | measured | target | met |")
    print("|---|---|---|---|")
    for name, (value, target) in goals.items():
        shown = f"{100 * value:.2f}%" if name in ("teacher", "best_student") else f"{value:.2f}"
        wanted = f"{100 * target:.0f}%" if name in ("teacher", "best_student") else f">= {target}"
        print(f"| {name} | {shown} | {wanted} | {'yes' if value >= target else 'no'} |")


def _history(folder, first):
    """A run's per-epoch history; a second stage's follows its first stage's, steps counted on."""
    history = json.loads((folder / "history.json").read_text())
    if first is None:
        return history
    before = json.loads((first / "history.json").read_text())
    offset = before[-1]["step"] if before else 0
    return before + [dict(entry, step=entry["step"] + offset) for entry in history]


def plot_curves(runs, path, teacher_top1=None, stage=None):
    """Test top-1 (average head) against steps, one line per run, coloured by mode; the teacher dashed."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axis = plt.subplots(figsize=(7, 4.5))
    colours = dict(zip([m[0] for m in MODES], ("tab:gray", "tab:blue", "tab:red", "tab:orange")))
    for prefix, *_, label in MODES:
        for index, (folder, first) in enumerate(student_runs(runs, prefix, stage)):
            history = _history(folder, first)
            axis.plot(
                [h["step"] for h in history],
                [100 * h.get("top1_avg", h.get("top1", 0)) for h in history],
                color=colours[prefix],
                label=label if index == 0 else None,
                alpha=0.8,
            )
    if teacher_top1 is not None:
        axis.axhline(100 * teacher_top1, color="black", linestyle="--", label="convnet teacher (final)")
    axis.set_xlabel("optimizer steps")
    axis.set_ylabel("test top-1, average head (%)")
    axis.grid(alpha=0.3)
    axis.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="?", default="/work/runs/deit_fmnist")
    parser.add_argument("--json", help="write the machine-readable results here")
    parser.add_argument("--curves", help="write the test top-1 curves (PNG) here")
    parser.add_argument(
        "--stage", help="tabulate the second-stage runs {mode}_s{seed}_STAGE (deit_table.sh's STAGE_SET) instead"
    )
    args = parser.parse_args(argv)
    document = collect(args.runs, args.stage)
    modes, goals = summary(document)
    print_tables(document, modes, goals)
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps(document, indent=1) + "\n")
    if args.curves:
        plot_curves(args.runs, args.curves, document["teacher"]["top1"], args.stage)


if __name__ == "__main__":
    main()
