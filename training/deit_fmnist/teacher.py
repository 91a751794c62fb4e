"""The convnet teacher of the DeiT table (docs/RESULTS.md), on all of Fashion-MNIST.

    keras-vits train --config training/deit_fmnist/teacher.py --output /work/runs/deit_fmnist/teacher

`convnet_medium` (48/96/192 channels) in mixed_bfloat16. After 8 epochs it reached 93.05% top-1
(2026-12-02) with its training accuracy still rising, short of the table's 94% goal, so it now
trains for 14. `convnet_small` reached 93.6% after 5 epochs and 93.5% after 20.
"""

from keras_vits.training import get_recipe

RECIPE = get_recipe("fmnist_teacher").replace(
    name="deit_fmnist_teacher",
    description="convnet_medium, 14 epochs on all 60k Fashion-MNIST images: the teacher of the DeiT table.",
    model="convnet_medium",
    epochs=14,
    precision="mixed_bfloat16",
    checkpoint_every=200,
    expected="The table's goal is 94% top-1; 8 epochs gave 93.05% (docs/RESULTS.md).",
)
