"""keras_vits.training.data: Fashion-MNIST (Debian package or Keras cache), tfds, image folders, and their errors."""

import numpy as np
import pytest
from training_worker import write_image_folder

from keras_vits.training import data
from keras_vits.training.data import check_labels, load_source
from keras_vits.training.pipeline import make_dataset
from keras_vits.training.recipes import Recipe


def test_missing_fashion_mnist_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setattr(data, "DEBIAN_FASHION_MNIST", tmp_path / "absent")
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    with pytest.raises(FileNotFoundError, match="apt-get install dataset-fashion-mnist"):
        data.load_fashion_mnist()


@pytest.mark.skipif(
    not data.DEBIAN_FASHION_MNIST.is_dir(),
    reason="dataset-fashion-mnist is not installed (make setup installs it as root)",
)
def test_fashion_mnist_loads_from_the_debian_package(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path / "keras_home"))
    (x_train, y_train), (x_test, y_test) = data.load_fashion_mnist()
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and set(np.unique(y_test)) == set(range(10))
    assert np.bincount(y_train).tolist() == [6000] * 10


@pytest.mark.keras3_only
def test_folder_source(tmp_path):
    write_image_folder(tmp_path / "train")
    write_image_folder(tmp_path / "test", per_class=2)
    train_source = load_source(f"folder:{tmp_path}", "train", channels=3)
    test_source = load_source(f"folder:{tmp_path}", "test", channels=3)
    assert train_source.class_names == ("cat", "dog", "eel")
    assert (train_source.num_examples, test_source.num_examples, train_source.num_classes) == (12, 6, 3)
    recipe = Recipe(name="t", image_size=16, mean=(0.5,) * 3, std=(0.25,) * 3, crop_padding=0)
    images, targets = next(iter(make_dataset(train_source, recipe, 4, training=True)))
    assert images.shape == (4, 16, 16, 3) and targets.shape == (4, 3)


@pytest.mark.keras3_only
def test_folder_without_split_folders_is_split_90_10(tmp_path):
    write_image_folder(tmp_path, per_class=10)
    train_source = load_source(f"folder:{tmp_path}", "train", channels=1)
    eval_source = load_source(f"folder:{tmp_path}", "test", channels=1)
    assert (train_source.num_examples, eval_source.num_examples, train_source.channels) == (27, 3, 1)


@pytest.mark.keras3_only
def test_data_errors_are_clear(tmp_path):
    with pytest.raises(ValueError, match="Unknown dataset 'no_such_data_set'"):
        load_source("no_such_data_set", "train")
    with pytest.raises(FileNotFoundError, match="is not prepared.*tfds build mnist"):
        load_source("mnist", "train", data_dir=str(tmp_path))
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_source(f"folder:{tmp_path / 'missing'}", "train")
    with pytest.raises(ValueError, match=r"must lie in \[0, 10\); found 0 to 12"):
        check_labels(np.array([0, 3, 12]), 10, "my data")
    with pytest.raises(ValueError, match="splits 'train' and 'test'"):
        load_source("fashion_mnist", "validation")


def _write_gray_pngs(folder, count=2):
    import tensorflow as tf

    folder.mkdir(parents=True, exist_ok=True)
    for index in range(count):
        (folder / f"gray{index}.png").write_bytes(tf.io.encode_png(tf.zeros((8, 8, 1), tf.uint8)).numpy())


@pytest.mark.keras3_only
def test_a_folders_channels_come_from_its_images(tmp_path):
    """Colour images were decoded to whatever channel count the recipe's mean had; now the data decides."""
    write_image_folder(tmp_path / "colour", per_class=4)
    for name in ("cat", "dog"):
        _write_gray_pngs(tmp_path / "gray" / name, count=5)
    _write_gray_pngs(tmp_path / "mixed" / "cat", count=5)
    write_image_folder(tmp_path / "mixed", classes=("dog",), per_class=5)
    assert load_source(f"folder:{tmp_path / 'colour'}", "train").channels == 3
    assert load_source(f"folder:{tmp_path / 'gray'}", "train").channels == 1
    assert load_source(f"folder:{tmp_path / 'mixed'}", "train").channels == 3  # colour when any image is
    gray_images = load_source(f"folder:{tmp_path / 'gray'}", "train", channels=3)  # an explicit count is kept
    image, _ = next(iter(gray_images.dataset))
    assert image.shape[-1] == 3


@pytest.mark.keras3_only
def test_a_folder_data_set_without_a_path_is_refused():
    """`folder:` with no path once read the working folder."""
    with pytest.raises(ValueError, match=r"'folder:' names no folder: pass --dataset folder:PATH"):
        load_source("folder:", "train")
