"""The DeiT table's teacher: a convnet on all 60,000 Fashion-MNIST training images.

    keras-vits train --config training/deit_fmnist/teacher.py --output runs/deit_fmnist/teacher

`convnet_medium` (48/96/192 channels), 30 epochs of batch 128 in mixed_bfloat16, with random
erasing 0.25, label smoothing 0.1 and an EMA of the weights. The students (`none.py`, `soft.py`,
`hard.py`, `hard_ls.py`) distil from its `model.keras`. EXPECTED is its top-1 on the
Fashion-MNIST test set, copied from the table of record, docs/benchmarks/deit_fmnist.json.
"""

from keras_vits.training import get_recipe

EXPECTED = {"top1": 0.9434999823570251}

RECIPE = get_recipe("fmnist_teacher").replace(
    name="deit_fmnist_teacher",
    description="convnet_medium, 30 regularised epochs on all 60k Fashion-MNIST images: the DeiT table's teacher.",
    model="convnet_medium",
    epochs=30,
    precision="mixed_bfloat16",
    random_erasing=0.25,
    label_smoothing=0.1,
    ema_momentum=0.999,
    checkpoint_every=200,
    expected=f"{100 * EXPECTED['top1']:.2f}% top-1 on the Fashion-MNIST test set.",
)
