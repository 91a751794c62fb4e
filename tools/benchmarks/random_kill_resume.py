"""Kills a training run with SIGKILL at random moments, resumes it each time, and checks the finished run.

    python tools/benchmarks/random_kill_resume.py --kills 5 --seed 0 [--output /tmp/kill_run]

The run is `tests/training_worker.py` (a tiny DeiT on tfds mock data, sleeping after each step).
After the kills it runs to the end; the finished run must have every epoch once in history.json,
every step once in steps.json, and the step count of an uninterrupted run with the same settings.
Prints one line per kill (when, the newest checkpoint then) and a summary; exits 1 on a mismatch.
"""

import argparse
import json
import pathlib
import random
import shutil
import signal
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
WORKER = ROOT / "tests" / "training_worker.py"
SETTINGS = ["--slow", "--set", "epochs=3", "checkpoint_every=3"]


def _run(output):
    args = [sys.executable, str(WORKER), str(output), *SETTINGS]
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)


def _result(process):
    out, _ = process.communicate()
    lines = [line for line in out.splitlines() if line.startswith("RESULT ")]
    if process.returncode != 0 or not lines:
        raise RuntimeError(f"worker failed with status {process.returncode}")
    return json.loads(lines[-1][len("RESULT ") :])


def _newest_checkpoint(output):
    found = sorted(int(p.name.split("-")[1].split(".")[0]) for p in (output / "checkpoints").glob("ckpt-*.index"))
    return found[-1] if found else None


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kills", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--min-seconds", type=float, default=0.0, help="after the run's first checkpoint")
    parser.add_argument("--max-seconds", type=float, default=2.5)
    parser.add_argument("--output", default="/tmp/keras_vits_kill_run")
    args = parser.parse_args()
    rng = random.Random(args.seed)
    output, reference_dir = pathlib.Path(args.output), pathlib.Path(args.output + "_reference")
    for folder in (output, reference_dir):
        shutil.rmtree(folder, ignore_errors=True)

    reference = _result(_run(reference_dir))
    print(f"uninterrupted run: {reference['steps']} steps")
    kills = 0
    for index in range(args.kills):
        before = _newest_checkpoint(output)
        process = _run(output)
        start = time.time()
        # Wait until this run has written a checkpoint of its own (imports take long on a busy machine),
        # then kill it at a random moment within the next seconds: between or inside steps and saves.
        while process.poll() is None and _newest_checkpoint(output) == before and time.time() - start < 300:
            time.sleep(0.1)
        time.sleep(rng.uniform(args.min_seconds, args.max_seconds))
        delay = time.time() - start
        if process.poll() is not None:
            print(f"kill {index + 1}: the run had finished before {delay:.1f} s; starting again")
            shutil.rmtree(output, ignore_errors=True)
            continue
        process.send_signal(signal.SIGKILL)
        process.wait()
        kills += 1
        print(f"kill {index + 1}: SIGKILL at {delay:.1f} s, newest checkpoint at step {_newest_checkpoint(output)}")
    final = _result(_run(output))
    history = json.loads((output / "history.json").read_text())
    epochs = [entry["epoch"] for entry in history]
    steps_log = json.loads((output / "steps.json").read_text())
    logged = [row["step"] for row in steps_log] if isinstance(steps_log, list) else sorted(map(int, steps_log))
    problems = []
    if final["steps"] != reference["steps"]:
        problems.append(f"steps {final['steps']} != {reference['steps']}")
    if epochs != list(range(1, len(epochs) + 1)) or len(epochs) != 3:
        problems.append(f"history epochs {epochs}")
    if len(set(logged)) != len(logged):
        problems.append("steps.json repeats a step")
    same_weights = final.get("checksum") == reference.get("checksum")
    print(
        f"{kills} SIGKILLs, then resumed to the end: {final['steps']} steps (uninterrupted: {reference['steps']}), "
        f"history epochs {epochs}, {len(logged)} step-log entries, weights checksum "
        f"{'equal to' if same_weights else 'different from'} the uninterrupted run's"
    )
    if problems:
        print("MISMATCH: " + "; ".join(problems))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
