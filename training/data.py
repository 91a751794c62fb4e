"""Image sources for training and evaluation.

Fashion-MNIST is read with `keras.datasets.fashion_mnist`, from Debian's
`dataset-fashion-mnist` package when it is installed (its files are the ones
Keras caches), else from the Keras cache, else downloaded by Keras where there
is network. Nowhere to be found, it raises an error that says how to get it.
"""

import os
import pathlib

import numpy as np

from keras_vits.backend import keras

DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
FASHION_MNIST_LABELS = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)  # fmt: skip


def _keras_cache_dir():
    return pathlib.Path(os.environ.get("KERAS_HOME", pathlib.Path.home() / ".keras")) / "datasets" / "fashion-mnist"


def load_fashion_mnist(allow_download=False):
    """Fashion-MNIST as uint8 arrays: `((x_train (60000, 28, 28), y_train), (x_test (10000, 28, 28), y_test))`.

    Args:
        allow_download: let Keras download the files when neither Debian's
            package nor the Keras cache has them. Defaults to False.

    Raises:
        FileNotFoundError: the data is nowhere here, with the command that installs it.
    """
    cache = _keras_cache_dir()
    if all((DEBIAN_FASHION_MNIST / f).is_file() for f in FASHION_MNIST_FILES):
        cache.mkdir(parents=True, exist_ok=True)
        for file in FASHION_MNIST_FILES:
            if not (cache / file).exists():
                (cache / file).symlink_to(DEBIAN_FASHION_MNIST / file)
    elif not all((cache / f).is_file() for f in FASHION_MNIST_FILES) and not allow_download:
        raise FileNotFoundError(
            "Fashion-MNIST is not on this machine. Install it with "
            "`sudo apt-get install dataset-fashion-mnist` (files in /usr/share/datasets/fashion-mnist), "
            f"put the four IDX .gz files in {cache}, or allow the download."
        )
    (x_train, y_train), (x_test, y_test) = keras.datasets.fashion_mnist.load_data()
    return (np.asarray(x_train), np.asarray(y_train)), (np.asarray(x_test), np.asarray(y_test))
