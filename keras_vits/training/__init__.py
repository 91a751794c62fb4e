"""Training and distillation: recipes, data sources, tf.data pipelines and the distributed loop.

    keras-vits train --recipe fmnist_deit_hard
    keras-vits train --config training/deit_fmnist/hard.py   # a recipe file, in the repository's training/

Modules: `recipes` (the `Recipe` type, the recipes shipped with the package and
recipe files), `data` (Fashion-MNIST, tensorflow-datasets, image folders),
`pipeline` (decode, augment, batch, normalise), `teachers` (convnet teachers),
`strategies` (tf.distribute strategies by name), `loop` (the training loop,
checkpoints, `evaluate`) and `run_folder` (the files a run writes). `data`,
`pipeline` and `loop` need the `train` extra (`pip install 'keras-vits[train]'`);
`recipes`, `strategies` and `run_folder` do not.
"""

from keras_vits.training.recipes import RECIPES, Recipe, get_recipe, load_recipe_file, parse_overrides

_LOOP_NAMES = ("train", "evaluate", "NaNLossError")


def __getattr__(name):
    # The loop needs the `train` extra; importing it lazily keeps `Recipe` usable without it.
    if name in _LOOP_NAMES:
        from keras_vits.training import loop

        return getattr(loop, name)
    raise AttributeError(f"module 'keras_vits.training' has no attribute {name!r}")


__all__ = ["RECIPES", "Recipe", "get_recipe", "load_recipe_file", "parse_overrides", *_LOOP_NAMES]
