#!/usr/bin/env bash
# The DeiT distillation table of docs/RESULTS.md: a convnet teacher, then the same small DeiT
# student with no, soft, hard, and hard + label-smoothing distillation, every run the same steps.
# Each run's recipe is a file of training/deit_fmnist/ (teacher.py, none.py, soft.py, hard.py, hard_ls.py).
# Seeds: 3 for none and hard, 1 for soft and hard_ls (SEEDS_MAIN / SEEDS_OTHER override).
# Usage: bash training/deit_table.sh [runs-folder [run ...]]   then: python training/deit_table.py [runs-folder]
#   With run names (teacher, none_s0, hard_s1, ...) only those run, so two shells can split the
#   table; a distilled run then waits until the teacher's result.json exists.
# A killed run resumes where it stopped when the script is started again; finished runs are skipped.
set -euo pipefail
RUNS=${1:-/work/runs/deit_fmnist}
shift || true
SEEDS_MAIN=${SEEDS_MAIN:-"0 1 2"}
SEEDS_OTHER=${SEEDS_OTHER:-"0"}
# bfloat16 steps run 1.24x faster than float32 on a CPU with AVX512_BF16 (docs/PERFORMANCE.md); on one
# without it, PRECISION=float32.
PRECISION=${PRECISION:-mixed_bfloat16}
# Recipe overrides for every student (not the teacher), e.g. a longer table in its own folder:
#   STUDENT_SET="epochs=40 crop_scale=[0.5,1.0]" bash training/deit_table.sh /work/runs/deit_fmnist_40ep
# A resumed run must be given the same ones; deit_table.py refuses students whose steps or shared
# recipe fields (its SHARED_STUDENT_FIELDS) differ.
read -r -a student_set <<< "${STUDENT_SET:-}"
# A second stage, run by naming it (none_s0_plain, hard_s1_plain, ...): it starts from the first
# stage's model.keras (--initial-weights) and trains with STAGE_SET, e.g. one plain-image epoch:
#   STAGE_SET="epochs=1 augment=false base_lr=0.001 warmup_epochs=0.1" bash training/deit_table.sh RUNS hard_s0_plain
# then: python training/deit_table.py RUNS --stage plain
read -r -a stage_set <<< "${STAGE_SET:-}"
here=$(dirname "$0")
# A signal to this script stops the run it is waiting on too (it checkpoints as it goes, so a restart
# resumes it): bash runs a trap only after a foreground command ends, so each run waits in the background.
child=
trap '[ -z "$child" ] || kill "$child" 2>/dev/null; exit 143' TERM INT HUP
run() {
  "$@" &
  child=$!
  wait "$child"
  child=
}
teacher() {
  [ -f "$RUNS/teacher/result.json" ] ||
    run keras-vits train --config "$here/deit_fmnist/teacher.py" --output "$RUNS/teacher" --precision "$PRECISION"
}
train_student() {  # mode seed output initial-weights-or-empty [more overrides...]
  local mode=$1 seed=$2 out=$3 start=$4
  shift 4
  local teacher_flag=() start_flag=()
  if [ "$mode" != none ]; then
    until [ -f "$RUNS/teacher/result.json" ]; do sleep 30; done
    teacher_flag=(--teacher "$RUNS/teacher/model.keras")
  fi
  [ -n "$start" ] && start_flag=(--initial-weights "$start")
  run keras-vits train --config "$here/deit_fmnist/$mode.py" --output "$out" "${start_flag[@]}" --set "seed=$seed" \
    "${student_set[@]}" "$@" --precision "$PRECISION" "${teacher_flag[@]}"
}
student() {  # mode seed
  [ -f "$RUNS/$1_s$2/result.json" ] || train_student "$1" "$2" "$RUNS/$1_s$2" ""
}
stage() {  # mode seed stage
  [ -f "$RUNS/$1_s$2_$3/result.json" ] && return 0
  [ ${#stage_set[@]} -gt 0 ] || { echo "$1_s$2_$3 is a second stage: set STAGE_SET (its recipe overrides)" >&2; exit 2; }
  student "$1" "$2"
  train_student "$1" "$2" "$RUNS/$1_s$2_$3" "$RUNS/$1_s$2/model.keras" "${stage_set[@]}"
}
if [ $# -gt 0 ]; then
  for name in "$@"; do  # all checked before any runs
    [[ $name =~ ^(teacher|(none|soft|hard|hard_ls)_s[0-9]+(_[a-z0-9]+)?)$ ]] ||
      { echo "unknown run $name: expected teacher, or none|soft|hard|hard_ls then _s<seed> [then _<stage>]" >&2; exit 2; }
  done
  for name in "$@"; do
    if [ "$name" = teacher ]; then
      teacher
    elif [[ $name =~ ^(.+)_s([0-9]+)_([a-z0-9]+)$ ]]; then
      stage "${BASH_REMATCH[1]}" "${BASH_REMATCH[2]}" "${BASH_REMATCH[3]}"
    else
      student "${name%_s*}" "${name##*_s}"
    fi
  done
  exit 0
fi
teacher
# Interleaved, so a table stopped part-way has every mode's first seed.
for seed in $SEEDS_MAIN; do
  student hard "$seed"
  student none "$seed"
  if [[ " $SEEDS_OTHER " == *" $seed "* ]]; then
    student soft "$seed"
    student hard_ls "$seed"
  fi
done
for seed in $SEEDS_OTHER; do  # those not in SEEDS_MAIN
  [[ " $SEEDS_MAIN " == *" $seed "* ]] && continue
  student soft "$seed"
  student hard_ls "$seed"
done
