"""The convnet teacher of the DeiT table (docs/RESULTS.md), on all of Fashion-MNIST.

    keras-vits train --config training/deit_fmnist/teacher.py --output /work/runs/deit_fmnist/teacher

`convnet_medium` (48/96/192 channels) in mixed_bfloat16, 30 epochs with random erasing 0.25,
label smoothing 0.1 and an EMA of the weights: 94.35% top-1 (2026-12-03, docs/RESULTS.md,
"Probes after the table"). The table's goal is 94%. The 2026-12-02 table's teacher was this
file's previous recipe (14 epochs, no erasing, smoothing or EMA: 93.57%); at 16 epochs the
regularised recipe gave 93.50%, so it is the regulariser and the length together that reach 94%.
The table of record (2026-12-03, docs/RESULTS.md) distils from this recipe's 94.35% run.
"""

from keras_vits.training import get_recipe

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
    expected="94.35% top-1 (2026-12-03; the table's goal is 94%).",
)
