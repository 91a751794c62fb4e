"""The DeiT distillation table of docs/RESULTS.md, from the runs of tools/deit_table.sh.

    bash training/deit_table.sh runs && python training/deit_table.py runs

Every model is evaluated afresh here (`keras_vits.training.evaluate`, Fashion-MNIST test set,
10,000 images); training time and steps come from each run's result.json.
"""

import json
import pathlib
import sys

from keras_vits.training import evaluate

ROWS = (
    ("fmnist_teacher", "convnet teacher"),
    ("fmnist_deit_none", "DeiT, no distillation"),
    ("fmnist_deit_soft", "DeiT, soft distillation"),
    ("fmnist_deit_hard", "DeiT, hard distillation"),
    ("fmnist_deit_hard_ls", "DeiT, hard distillation + label smoothing 0.1"),
)


def main(runs="runs"):
    runs = pathlib.Path(runs)
    print("| run | params | epochs | train time (min) | cls top-1 | dist top-1 | avg top-1 |")
    print("|---|---|---|---|---|---|---|")
    for name, label in ROWS:
        run = runs / name
        if not (run / "model.keras").is_file():
            print(f"| {label} | not run | | | | | |")
            continue
        result = json.loads((run / "result.json").read_text())
        logs = evaluate(run / "model.keras")
        cells = [logs.get("top1_cls", logs.get("top1")), logs.get("top1_dist"), logs.get("top1_avg")]
        shown = [f"{100 * v:.2f}" if v is not None else "" for v in cells]
        print(
            f"| {label} (`{name}`) | {result['parameters']:,} | {result['epochs']} | "
            f"{result['train_seconds'] / 60:.1f} | " + " | ".join(shown) + " |"
        )


if __name__ == "__main__":
    main(*sys.argv[1:])
