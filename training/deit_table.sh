#!/usr/bin/env bash
# The DeiT distillation table of docs/RESULTS.md: a convnet teacher, then the same small DeiT
# student with no, soft, hard, and hard + label-smoothing distillation, every run the same steps.
# Seeds: 3 for none and hard, 1 for soft and hard_ls (SEEDS_MAIN / SEEDS_OTHER override).
# Usage: bash training/deit_table.sh [runs-folder]   then: python training/deit_table.py [runs-folder]
# A killed run resumes where it stopped when the script is started again; finished runs are skipped.
set -euo pipefail
RUNS=${1:-/work/runs/deit_fmnist}
SEEDS_MAIN=${SEEDS_MAIN:-"0 1 2"}
SEEDS_OTHER=${SEEDS_OTHER:-"0"}
# bfloat16 steps run 1.24x faster than float32 on a CPU with AVX512_BF16 (docs/PERFORMANCE.md); on one
# without it, PRECISION=float32.
PRECISION=${PRECISION:-mixed_bfloat16}
here=$(dirname "$0")
[ -f "$RUNS/teacher/result.json" ] ||
  keras-vits train --config "$here/deit_fmnist/teacher.py" --output "$RUNS/teacher" --precision "$PRECISION"
run() {  # mode seed
  local out="$RUNS/$1_s$2"
  [ -f "$out/result.json" ] && return 0
  local teacher=()
  [ "$1" = none ] || teacher=(--teacher "$RUNS/teacher/model.keras")
  keras-vits train --recipe "fmnist_deit_$1" --output "$out" --set "seed=$2" --precision "$PRECISION" "${teacher[@]}"
}
# Interleaved, so a table stopped part-way has every mode's first seed.
for seed in $SEEDS_MAIN; do
  run hard "$seed"
  run none "$seed"
  if [ "$seed" = "$(echo "$SEEDS_OTHER" | cut -d' ' -f1)" ]; then
    run soft "$seed"
    run hard_ls "$seed"
  fi
done
