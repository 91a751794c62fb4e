"""The DeiT table's student, soft distillation (alpha 0.5, tau 1): its `soft` row.

    keras-vits train --config training/deit_fmnist/soft.py --output runs/deit_fmnist/soft_s0 --set seed=0

It distils from `runs/deit_fmnist/teacher/model.keras`, the run of `teacher.py` (train that first).

The small DeiT (patch 7, 96 wide, 4 deep) of the shipped recipe `fmnist_deit_soft`, 8 epochs of
batch 128 (3744 steps) in mixed_bfloat16. EXPECTED is the table's top-1 on the Fashion-MNIST
test set, per seed, copied from the table of record, docs/benchmarks/deit_fmnist.json.
"""

from keras_vits.training import get_recipe

EXPECTED = {
    0: {"top1_cls": 0.8115000128746033, "top1_dist": 0.8217999935150146, "top1_avg": 0.8194000124931335},
}

RECIPE = get_recipe("fmnist_deit_soft").replace(
    teacher="runs/deit_fmnist/teacher/model.keras",
    precision="mixed_bfloat16",
    expected="; ".join(
        f"seed {seed}: {100 * top1['top1_avg']:.2f}% top-1 (average head)" for seed, top1 in EXPECTED.items()
    ),
)
