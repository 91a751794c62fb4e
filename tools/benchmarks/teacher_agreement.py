"""How often the teacher's hard label (its argmax) differs from the true label on the batches a
student trains on: what hard distillation adds over the labels, per augmentation.

    python tools/benchmarks/teacher_agreement.py TEACHER.keras [--recipe fmnist_deit_hard] [--batches 100]
        [--set KEY=VALUE ...] [--set KEY=VALUE ...]   # e.g. a stronger augmentation

Reads augmented training batches of the recipe (its seed and augmentation, the last `--set`
overrides applied) and prints, per line: the recipe's augmentation as given, then with each
`--set` group, the teacher's agreement with the true labels. Where they agree on nearly every
image, hard distillation trains the distillation head on nearly the same targets as the class head.
"""

import argparse

import numpy as np

from keras_vits.backend import load_keras_file
from keras_vits.training import data, pipeline, recipes
from keras_vits.training.recipes import parse_overrides


def agreement(teacher, source, recipe, batches):
    """Fraction of `batches` augmented training images where the teacher's argmax is the label."""
    dataset = pipeline.make_dataset(source, recipe, recipe.batch_size, training=True)
    agree = seen = 0
    for images, targets in dataset.take(batches):
        predicted = np.argmax(teacher(images, training=False), -1)
        agree += int(np.sum(predicted == np.argmax(targets, -1)))
        seen += len(predicted)
    return agree / seen


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("teacher")
    parser.add_argument("--recipe", default="fmnist_deit_hard")
    parser.add_argument("--batches", type=int, default=100)
    parser.add_argument("--set", nargs="+", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args(argv)
    teacher = load_keras_file(args.teacher, "teacher")
    base = recipes.get_recipe(args.recipe)
    # Read once: the overrides change the augmentation, not the data.
    source = data.load_source(base.dataset, base.train_split, channels=len(base.mean))
    for overrides in [[], *args.set]:
        recipe = base.replace(**parse_overrides(overrides))
        share = agreement(teacher, source, recipe, args.batches)
        label = " ".join(overrides) or "the recipe's augmentation"
        print(f"{label:70s} teacher = label on {100 * share:.2f}% of {args.batches * recipe.batch_size} images")


if __name__ == "__main__":
    main()
