"""Training images/s of a recipe under two checkouts of the package, alternating, in one run.

    git worktree add /tmp/baseline <commit>
    python tools/recipe_speed_ab.py --baseline /tmp/baseline [--recipe fmnist_deit_hard] [--steps 200] [--rounds 2]
        [--set KEY=VALUE ...] [--set-this KEY=VALUE ...] [--this-teacher-config training/deit_fmnist/teacher.py]

Each round trains `--steps` steps of the recipe with `keras-vits train` (a fresh process and
output folder each time, the teacher included for distilling recipes) from the baseline
checkout and from this one, in turns, and reads `images_per_second` from each result.json
(time spent in training steps only: no start-up, no evaluation). Prints every reading and the
ratio of the medians. A teacher for distilling recipes is trained first for 1 step if missing
(its weights do not change the speed). `--set` overrides a field in both checkouts (e.g. the
old student, to time the same model); `--set-this` only in this one (a field the baseline lacks,
such as `precision`). `--this-teacher-config` gives this checkout its own teacher, from a recipe
file (the DeiT table's `convnet_medium`), where the baseline keeps the `fmnist_teacher` recipe's.
"""

import argparse
import json
import os
import pathlib
import statistics
import subprocess
import sys
import tempfile

HERE = pathlib.Path(__file__).resolve().parents[1]


def train(code, recipe, output, steps, extra=()):
    """`recipe`: a registered name, or a path to a recipe file."""
    env = dict(os.environ, PYTHONPATH=str(code), TF_CPP_MIN_LOG_LEVEL="2")
    source = ["--config", recipe] if pathlib.Path(recipe).suffix in (".py", ".json") else ["--recipe", recipe]
    command = [sys.executable, "-m", "keras_vits.cli", "train", *source, "--output", str(output)]
    command += ["--max-steps", str(steps), *extra]
    # cwd=code: `python -m` puts the working directory ahead of PYTHONPATH, so run from elsewhere
    # the baseline would silently import this checkout.
    subprocess.run(command, check=True, env=env, cwd=code, stdout=subprocess.DEVNULL)
    return json.loads((pathlib.Path(output) / "result.json").read_text())["images_per_second"]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", required=True, help="a checkout of the baseline commit")
    parser.add_argument("--recipe", default="fmnist_deit_hard")
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--set", action="append", default=[], help="a recipe override for both, KEY=VALUE")
    parser.add_argument("--set-this", action="append", default=[], help="a recipe override for this checkout only")
    parser.add_argument("--this-teacher-config", help="recipe file of this checkout's teacher")
    args = parser.parse_args(argv)
    folder = pathlib.Path(tempfile.mkdtemp(prefix="recipe_speed_"))
    extra = [item for pair in args.set for item in ("--set", pair)]
    extra_this = [item for pair in args.set_this for item in ("--set", pair)]
    if "none" not in args.recipe:
        train(HERE, "fmnist_teacher", folder / "teacher", 1)
        extra += ["--teacher", str(folder / "teacher" / "model.keras")]
        if args.this_teacher_config:
            train(HERE, str(pathlib.Path(args.this_teacher_config).resolve()), folder / "this_teacher", 1)
            extra_this += ["--teacher", str(folder / "this_teacher" / "model.keras")]
    readings = {"baseline": [], "this": []}
    for round_index in range(args.rounds):
        for name, code, own in (("baseline", pathlib.Path(args.baseline).resolve(), []), ("this", HERE, extra_this)):
            speed = train(code, args.recipe, folder / f"{name}{round_index}", args.steps, extra + own)
            readings[name].append(speed)
            print(f"round {round_index + 1} {name:8s} {speed:7.1f} images/s", flush=True)
    baseline, this = (statistics.median(readings[k]) for k in ("baseline", "this"))
    ratio = this / baseline
    print(f"{args.recipe}, {args.steps} steps: baseline {baseline:.1f}, this {this:.1f} images/s: {ratio:.2f}x")


if __name__ == "__main__":
    main()
