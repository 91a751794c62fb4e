#!/usr/bin/env bash
# The DeiT distillation table of docs/RESULTS.md: a convnet teacher, then the same small DeiT
# student with no, soft, hard, and hard + label-smoothing distillation, each for the same epochs.
# Usage: bash training/deit_table.sh [runs-folder]   (then: python training/deit_table.py [runs-folder])
set -euo pipefail
RUNS=${1:-runs}
keras-vits train --recipe fmnist_teacher --output "$RUNS/fmnist_teacher"
for recipe in fmnist_deit_none fmnist_deit_soft fmnist_deit_hard fmnist_deit_hard_ls; do
  keras-vits train --recipe "$recipe" --output "$RUNS/$recipe" --teacher "$RUNS/fmnist_teacher/model.keras"
done
