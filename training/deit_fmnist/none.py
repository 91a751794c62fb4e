"""The DeiT table's student without distillation, labels only: its `none` rows.

    keras-vits train --config training/deit_fmnist/none.py --output runs/deit_fmnist/none_s0 --set seed=0

The other seeds of the table: the same command with `--set seed=N` and the output `none_sN`, for N in 1, 2.

The small DeiT (patch 7, 96 wide, 4 deep) of the shipped recipe `fmnist_deit_none`, 8 epochs of
batch 128 (3744 steps) in mixed_bfloat16. EXPECTED is the table's top-1 on the Fashion-MNIST
test set, per seed, copied from the table of record, docs/benchmarks/deit_fmnist.json.
"""

from keras_vits.training import get_recipe

EXPECTED = {
    0: {"top1_cls": 0.7825000286102295, "top1_dist": 0.7738999724388123, "top1_avg": 0.7785999774932861},
    1: {"top1_cls": 0.8034999966621399, "top1_dist": 0.802299976348877, "top1_avg": 0.8052999973297119},
    2: {"top1_cls": 0.7896999716758728, "top1_dist": 0.7894999980926514, "top1_avg": 0.7900999784469604},
}

RECIPE = get_recipe("fmnist_deit_none").replace(
    precision="mixed_bfloat16",
    expected="; ".join(
        f"seed {seed}: {100 * top1['top1_avg']:.2f}% top-1 (average head)" for seed, top1 in EXPECTED.items()
    ),
)
