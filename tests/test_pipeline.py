"""keras_vits.training.pipeline: decoding, augmentation, the evaluation crop and normalisation, label checks.

Data comes from `tfds.testing.mock_data`, Fashion-MNIST and generated image folders, never the network.
"""

import numpy as np
import pytest
import tensorflow as tf
import tensorflow_datasets as tfds

from keras_vits.training.data import load_source
from keras_vits.training.pipeline import make_dataset
from keras_vits.training.recipes import Recipe, get_recipe

pytestmark = pytest.mark.keras3_only


def test_tfds_source_and_the_full_deit_augmentation():
    recipe = get_recipe("imagenet_deit_small", image_size=32, batch_size=4)
    with tfds.testing.mock_data(num_examples=8):
        source = load_source("imagenet2012", "train")
        assert (source.num_classes, source.channels, source.num_examples) == (1000, 3, 8)
        images, targets = next(iter(make_dataset(source, recipe, 4, training=True)))
    assert images.shape == (4, 32, 32, 3) and targets.shape == (4, 1000)
    np.testing.assert_allclose(tf.reduce_sum(targets, -1), 1.0, atol=1e-5)
    assert np.isfinite(images.numpy()).all()
    assert (targets.numpy() > 0).sum() > 4, "Mixup or CutMix mixes labels"


def test_evaluation_resizes_and_centre_crops():
    recipe = get_recipe("imagenet_deit_small", image_size=32)
    with tfds.testing.mock_data(num_examples=5):
        source = load_source("imagenet2012", "validation")
        batches = list(make_dataset(source, recipe, 2, training=False))
    assert [b[0].shape[0] for b in batches] == [2, 2, 1], "evaluation keeps the last partial batch"
    assert batches[0][0].shape[1:] == (32, 32, 3)


def test_evaluation_crop_applies_to_images_already_at_the_model_size():
    """Fashion-MNIST is 28x28 already: eval_crop_fraction=0.875 must still zoom in on the centre."""
    source = load_source("fashion_mnist", "test")
    full = get_recipe("fmnist_deit_hard")
    uncropped, _ = next(iter(make_dataset(source, full, 8, training=False)))
    cropped, _ = next(iter(make_dataset(source, full.replace(eval_crop_fraction=0.875), 8, training=False)))
    assert cropped.shape == uncropped.shape == (8, 28, 28, 1)
    # the reference: resize 28 -> 32 (28 / 0.875), keep the central 28x28
    raw = tf.cast(next(iter(source.dataset.batch(8)))[0], tf.float32)
    zoomed = tf.image.resize(raw, (32, 32), method="bilinear", antialias=True)[:, 2:30, 2:30]
    expected = (zoomed / 255.0 - full.mean[0]) / full.std[0]
    np.testing.assert_allclose(cropped.numpy(), expected.numpy(), atol=1e-5)
    assert np.abs(cropped.numpy() - uncropped.numpy()).max() > 0.5


def test_folder_images_keep_their_aspect_ratio_until_the_crop(tmp_path):
    """Keras's loader resized every image to image_size first, squashing it; timm crops the original."""
    tall = np.zeros((40, 20, 1), np.uint8)
    tall[:10] = 255  # the top quarter white: outside the centre crop, a quarter of a squashed image
    for split in ("train", "test"):
        for name in ("a", "b"):
            (tmp_path / split / name).mkdir(parents=True)
            tf.io.write_file(str(tmp_path / split / name / "0.png"), tf.io.encode_png(tall))
    source = load_source(f"folder:{tmp_path}", "test", channels=1)
    assert next(iter(source.dataset))[0].shape == (40, 20, 1)
    recipe = Recipe(name="t", image_size=20, mean=(0.0,), std=(1.0,), eval_crop_fraction=1.0)
    images, _ = next(iter(make_dataset(source, recipe, 2, training=False)))
    assert images.shape == (2, 20, 20, 1)
    assert float(tf.reduce_max(images)) == 0.0  # the centre 20 x 20 is all black


def test_fashion_mnist_source_pipeline():
    source = load_source("fashion_mnist", "test")
    assert (source.num_examples, source.num_classes, source.channels) == (10000, 10, 1)
    images, targets = next(iter(make_dataset(source, get_recipe("fmnist_deit_hard"), 256, training=False)))
    assert images.shape == (256, 28, 28, 1)
    assert abs(float(tf.reduce_mean(images))) < 0.2 and abs(float(tf.math.reduce_std(images)) - 1) < 0.2


def test_labels_out_of_range_stop_the_pipeline():
    source = load_source("fashion_mnist", "test")
    source.num_classes = 5  # the data has labels up to 9
    with pytest.raises(tf.errors.InvalidArgumentError, match="labels of fashion_mnist must be < 5"):
        for _ in make_dataset(source, get_recipe("fmnist_deit_hard"), 512, training=False):
            pass


def test_cutmix_draws_its_area_from_beta_alpha_alpha():
    """Keras's CutMix takes a range for alpha; one float would draw alpha itself from U(0, alpha) each batch."""
    from keras_vits.training.pipeline import Augmenter

    recipe = get_recipe("imagenet_deit_small")
    augmenter = Augmenter(recipe, recipe.image_size, seed=0)
    assert recipe.cutmix_alpha == 1.0 and tuple(augmenter.cutmix.factor) == (1.0, 1.0)
