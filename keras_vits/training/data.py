"""Image sources for training and evaluation.

Sources: Fashion-MNIST (embedded default), a folder of class sub-folders, or
any tensorflow-datasets name (`load_source`); `pipeline.py` batches and augments them.

Fashion-MNIST is read with `keras.datasets.fashion_mnist`, from Debian's
`dataset-fashion-mnist` package when it is installed (its files are the ones
Keras caches), else from the Keras cache, else downloaded by Keras where there
is network. Nowhere to be found, it raises an error that says how to get it.
"""

import contextlib
import dataclasses
import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_vits._extras import require
from keras_vits.backend import keras

tfds = require("tensorflow_datasets", "keras_vits.training (data sets)")

DEBIAN_FASHION_MNIST = pathlib.Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-labels-idx1-ubyte.gz",
    "train-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
)
FASHION_MNIST_LABELS = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)


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


@dataclasses.dataclass
class ImageSource:
    """Unbatched `(image uint8 (H, W, C), label int64)` examples and what is known about them."""

    dataset: tf.data.Dataset
    num_examples: int
    num_classes: int
    channels: int
    class_names: tuple
    name: str
    file_paths: tuple = ()  # a folder source's image files, to name one that fails to decode


def undecodable_images(paths):
    """`"path (reason)"` for each of `paths` TensorFlow cannot decode; decodes every file, so only on failure."""
    bad = []
    for path in paths:
        try:
            tf.io.decode_image(tf.io.read_file(path), expand_animations=False)
        except (tf.errors.InvalidArgumentError, ValueError) as error:
            reason = str(getattr(error, "message", error)).strip().splitlines()[0][:120]
            bad.append(f"{path} ({reason})")
    return bad


@contextlib.contextmanager
def naming_undecodable_images(*sources):
    """Inside the block, a decode failure in a folder source's pipeline names the files that caused it.

    `check_image_files` reads only each file's ends when the source is made; corruption inside a
    file surfaces later, as a tf.data error without the file's name. Then every file of the
    sources is decoded once to find it (slow, and only after a failure).
    """
    try:
        yield
    except tf.errors.InvalidArgumentError as error:
        bad = [entry for source in sources for entry in undecodable_images(source.file_paths)]
        if not bad:
            raise
        raise ValueError(
            f"{len(bad)} image file(s) cannot be decoded: {bad[:10]}{' ...' if len(bad) > 10 else ''}. "
            f"Replace or remove them, then run again (a training run resumes from its last checkpoint)."
        ) from error


def _fashion_mnist_source(split, download):
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(allow_download=download)
    if split not in ("train", "test"):
        raise ValueError(f"Fashion-MNIST has splits 'train' and 'test', got {split!r}.")
    images, labels = (x_train, y_train) if split == "train" else (x_test, y_test)
    check_labels(labels, len(FASHION_MNIST_LABELS), "fashion_mnist")
    dataset = tf.data.Dataset.from_tensor_slices((images[..., None], labels.astype("int64")))
    return ImageSource(dataset, len(labels), len(FASHION_MNIST_LABELS), 1, FASHION_MNIST_LABELS, "fashion_mnist")


#: Pillow's image modes that hold no colour: a folder of only these is grayscale.
GRAYSCALE_MODES = ("1", "L", "LA", "La", "I", "I;16", "I;16B", "I;16L", "I;16N", "F")


def folder_channels(paths):
    """The channels a folder's images are trained on: 3 when any of them is in colour, else 1.

    Reads each file's header only (Pillow, which matplotlib of the `train` extra brings), and stops
    at the first colour image. An alpha channel is dropped (RGBA and gray-with-alpha images count
    as RGB and grayscale); a palette image counts as colour, as TensorFlow decodes it to RGB.
    """
    from PIL import Image

    for path in paths:
        with Image.open(path) as image:
            if image.mode not in GRAYSCALE_MODES:
                return 3
    return 1


def _folder_source(root, split, channels, seed):
    """Class sub-folders under `root/<split>/` when that exists, else a seeded 90/10 split of `root/`.

    `channels` None takes them from the images (`folder_channels`); 1, 3 or 4 decodes them to that.

    Images are decoded at their own size, as timm's ImageFolder reads them: the pipeline's random
    resized crop (training) or shorter-side resize and centre crop (evaluation) then makes them
    square. (Keras's loader resizes every image to one size first, which squashes its aspect ratio.)
    """
    if not root:
        raise ValueError("The data set 'folder:' names no folder: pass --dataset folder:PATH (dataset='folder:PATH').")
    root = pathlib.Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"Image folder {root} does not exist; expected <root>/<class name>/<image files>.")
    split_dir = root / split
    options = dict(
        labels="inferred",
        label_mode="int",
        color_mode="grayscale",  # only Keras's listing is used, not its decoding
        batch_size=None,
        shuffle=False,
        verbose=False,
    )
    if split_dir.is_dir():
        dataset = keras.utils.image_dataset_from_directory(split_dir, **options)
    else:
        count = sum(1 for f in root.rglob("*") if f.is_file() and f.suffix.lower() in IMAGE_EXTENSIONS)
        if int(0.1 * count) == 0:
            raise ValueError(
                f"folder:{root} holds {count} image(s), too few for its 90/10 train/validation split (at least 10, "
                f"so that validation gets one); add images, or make {root}/train and {root}/test class folders."
            )
        subset = "training" if split == "train" else "validation"
        dataset = keras.utils.image_dataset_from_directory(
            root, validation_split=0.1, subset=subset, seed=seed, **dict(options, shuffle=True)
        )
    class_names = tuple(dataset.class_names)
    num_examples = int(dataset.cardinality())
    folder = split_dir if split_dir.is_dir() else root
    if num_examples <= 0:
        raise FileNotFoundError(f"No images found under {folder}.")
    check_class_folders(folder, class_names)
    dataset_paths = dataset.file_paths  # Keras's listing and split; its decoding is not used
    check_image_files(dataset_paths)
    if channels is None:
        channels = folder_channels(dataset_paths)
    class_index = {name: index for index, name in enumerate(class_names)}
    labels = [class_index[os.path.relpath(path, folder).split(os.sep)[0]] for path in dataset_paths]

    def decode(path, label):
        image = tf.io.decode_image(tf.io.read_file(path), channels=channels, dtype=tf.uint8, expand_animations=False)
        image.set_shape((None, None, channels))
        return image, label

    dataset = tf.data.Dataset.from_tensor_slices((list(dataset_paths), tf.constant(labels, tf.int64)))
    dataset = dataset.map(decode, num_parallel_calls=tf.data.AUTOTUNE)
    return ImageSource(
        dataset, num_examples, len(class_names), channels, class_names, f"folder:{root}", tuple(dataset_paths)
    )


#: The image files a folder data set reads (Keras's `image_dataset_from_directory` formats).
IMAGE_EXTENSIONS = (".bmp", ".gif", ".jpeg", ".jpg", ".png")


def check_class_folders(folder, class_names):
    """Refuses class folders with no image file: a class with no images cannot be learned or scored.

    torchvision's `ImageFolder` (timm's) refuses them too; Keras would make them classes silently.
    """
    folder = pathlib.Path(folder)
    empty = [
        name
        for name in class_names
        if not any(f.suffix.lower() in IMAGE_EXTENSIONS for f in (folder / name).rglob("*") if f.is_file())
    ]
    if empty:
        raise ValueError(
            f"Class folder(s) {empty} under {folder} hold no image ({', '.join(IMAGE_EXTENSIONS)}); a class with "
            f"no images cannot be learned or evaluated. Add images, or remove the folder(s)."
        )


def _looks_complete(head, tail, size):
    """True when a file's first and last bytes are those of a whole JPEG, PNG, GIF or BMP."""
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return b"IEND" in tail
    if head.startswith(b"\xff\xd8"):
        return b"\xff\xd9" in tail
    if head.startswith(b"GIF8"):
        return tail.rstrip(b"\x00").endswith(b"\x3b")
    if head.startswith(b"BM") and len(head) >= 6:
        return int.from_bytes(head[2:6], "little") <= size
    return False


def check_image_files(paths, tail_bytes=64):
    """Refuses, naming them, image files that are empty, not an image, or cut short.

    Reads each file's first and last bytes only; a file that fails this is decoded to
    make sure (an image with bytes after its end marker is kept). Corruption inside a
    file whose ends are whole is not seen here: `naming_undecodable_images` names it when it fails.
    """
    bad = []
    for path in paths:
        try:
            with open(path, "rb") as handle:
                head = handle.read(16)
                size = handle.seek(0, os.SEEK_END)
                handle.seek(max(0, size - tail_bytes))
                tail = handle.read()
        except OSError as error:
            bad.append(f"{path} ({error.strerror or error})")
            continue
        if _looks_complete(head, tail, size):
            continue
        if undecodable_images([path]):
            bad.append(f"{path} ({size} bytes)")
    if bad:
        raise ValueError(
            f"{len(bad)} image file(s) cannot be decoded (empty, not an image, or truncated): {bad[:10]}"
            f"{' ...' if len(bad) > 10 else ''}. Replace or remove them."
        )


def _tfds_source(name, split, data_dir, manual_dir, download):
    try:
        builder = tfds.builder(name, data_dir=data_dir)
    except tfds.core.registered.DatasetNotFoundError as error:
        raise ValueError(
            f"Unknown dataset {name!r}: not 'fashion_mnist', not 'folder:<path>', and not a tensorflow-datasets name."
        ) from error
    if download:
        config = tfds.download.DownloadConfig(manual_dir=manual_dir)
        builder.download_and_prepare(download_config=config)
    try:
        dataset = builder.as_dataset(split=split, as_supervised=True, shuffle_files=False)
    except AssertionError as error:
        raise FileNotFoundError(
            f"Dataset {name!r} is not prepared in {builder.data_dir}. Prepare it with `tfds build {name}` "
            f"(ImageNet needs its tar files in manual_dir), pass data_dir=..., or allow the download "
            f"(--set download=true)."
        ) from error
    features = builder.info.features
    image_key, label_key = builder.info.supervised_keys
    if not hasattr(features[label_key], "num_classes"):
        raise ValueError(f"Dataset {name!r} has no class labels ({label_key!r} is {features[label_key]}).")
    try:
        num_examples = builder.info.splits[split].num_examples
    except (KeyError, ValueError):
        num_examples = int(dataset.cardinality())
    channels = features[image_key].shape[-1]
    num_classes = features[label_key].num_classes
    dataset = dataset.map(lambda image, label: (image, tf.cast(label, tf.int64)))
    return ImageSource(dataset, num_examples, num_classes, channels, tuple(features[label_key].names), name)


def load_source(dataset, split, data_dir=None, manual_dir=None, download=False, channels=None, seed=0):
    """Examples of one split of `dataset`.

    Args:
        dataset: `"fashion_mnist"` (the embedded default), `"folder:<path>"` (class
            sub-folders), or a tensorflow-datasets name (`"imagenet2012"`, `"cifar10"`).
        split: `"train"`, `"test"`, or a tfds split such as `"validation"` or `"train[:10%]"`.
        data_dir, manual_dir, download: tensorflow-datasets options.
        channels: how many channels a folder's images are decoded to (other sources keep theirs);
            None takes them from the images: 3 when any is in colour, else 1 (`folder_channels`).
            A folder's images keep their own sizes, as every source's do.
        seed: the seed of a folder's 90/10 train/validation split.

    Raises:
        ValueError: an unknown data set.
        FileNotFoundError: a known data set that is not on this machine, with how to get it.
    """
    if not isinstance(dataset, str):
        raise TypeError(
            f"dataset must be a str ('fashion_mnist', 'folder:<path>' or a tfds name), got {type(dataset).__name__}."
        )
    if dataset == "fashion_mnist":
        return _fashion_mnist_source(split, download)
    if dataset.startswith("folder:"):
        return _folder_source(dataset[len("folder:") :], split, channels, seed)
    return _tfds_source(dataset, split, data_dir, manual_dir, download)


def check_labels(labels, num_classes, name):
    """Raises ValueError unless every label is in [0, num_classes)."""
    labels = np.asarray(labels)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"Labels of {name} must lie in [0, {num_classes}); found {labels.min()} to {labels.max()}.")
