"""SavedModel export for TF Serving, with preprocessing and labels inside.

Layout: `<base_dir>/<name>/<version>/` (`saved_model.pb`, `variables/`,
`assets/labels.txt`), the layout TF Serving watches; a new export takes the
next integer version and appears only once fully written (written under a
temporary name, then renamed).

Signatures (inputs of any size; the model's resize and normalisation happen inside):
    serving_default  `images_0_255`: float32 `(B, H, W, C)`, pixel values in [0, 255]; an image
                     whose values lie in [0, 1] (largest value in (0, 1]) or outside [0, 255] is refused;
    serving_uint8    `images_0_255`: uint8 `(B, H, W, C)`, likewise;
    serving_bytes    `image_bytes`: string `(B,)`, encoded JPEG, PNG, GIF or BMP; other bytes are refused.
The input names carry the pixel scale, so `saved_model_cli show` displays it. The rank is
declared, and checked again inside the graph: TF Serving does not enforce declared shapes.
Each returns `probabilities` `(B, num_classes)`, `top_k_ids` int64 `(B, k)`,
`top_k_probabilities` `(B, k)` and `top_k_labels` string `(B, k)`. Channels
may be the model's, or 1 and 3 interchangeably (converted); anything else is
an InvalidArgument error for that request alone.

Images above `max_image_pixels` (height x width, set at export, default
`MAX_IMAGE_PIXELS` = 4096 x 4096) are refused, each request alone: encoded
images by their header, before they are decoded. The limit is kept in the
SavedModel as `max_image_pixels`.
"""

import numbers
import os
import pathlib
import shutil
import tempfile
from collections.abc import Sequence

import numpy as np
import tensorflow as tf

from keras_vits._io import as_path, folder_lock
from keras_vits.backend import keras

SIGNATURES = ("serving_default", "serving_uint8", "serving_bytes")

#: Default pixel limit of the serving signatures (height x width): 4096 x 4096, about 200 MB
#: of float32 RGB per decoded image. A 300 KB PNG of 10000 x 10000 once cost 1.2 GB per request.
MAX_IMAGE_PIXELS = 4096 * 4096

#: The input name of the float and uint8 signatures: it says the pixel scale they take.
IMAGES_INPUT = "images_0_255"
#: The input name of `serving_bytes`.
BYTES_INPUT = "image_bytes"

#: The end of TensorFlow's wrong-rank message at the image signatures, as docs/DEPLOYMENT.md quotes it.
RANK_MESSAGE = "is not compatible with expected shape [?,?,?,?]"
#: The message for float pixels outside [0, 255], as docs/DEPLOYMENT.md quotes it.
RANGE_MESSAGE = f"{IMAGES_INPUT} takes raw pixel values in [0, 255], not normalised ones; got values from"
#: The message for an image on [0, 1] sent where [0, 255] is expected, as docs/DEPLOYMENT.md quotes it.
UNIT_SCALE_MESSAGE = (
    f"{IMAGES_INPUT} takes pixel values in [0, 255], but the largest value of an image is in (0, 1], "
    "as [0, 1] pixels are: multiply by 255 (or send uint8 to serving_uint8); largest values"
)
#: The message for bytes in no format `serving_bytes` decodes, as docs/DEPLOYMENT.md quotes it.
NOT_AN_IMAGE_MESSAGE = "image_bytes are not an image: no JPEG, PNG, GIF or BMP header; got bytes starting"


def _unsigned(data, offset, length, little_endian):
    """The unsigned int of `length` bytes at `offset` of the scalar string `data`, as int64."""
    raw = tf.cast(tf.io.decode_raw(tf.strings.substr(data, offset, length), tf.uint8), tf.int64)
    order = range(length) if little_endian else reversed(range(length))
    return tf.reduce_sum(raw * tf.constant([256**i for i in order], tf.int64))


def encoded_image_size(data):
    """`(height, width)` int64 of an encoded JPEG, PNG, GIF or BMP, read from its header alone; `(-1, -1)` otherwise.

    PNG: big-endian width and height at bytes 16 and 20 (IHDR); GIF: little-endian 16-bit
    at bytes 6 and 8; BMP: little-endian 32-bit at 18 and 22 (height signed); JPEG: its SOF marker.
    """
    length = tf.strings.length(data)
    magic = tf.strings.substr(data, 0, 4)
    unknown = (tf.constant(-1, tf.int64), tf.constant(-1, tf.int64))

    def png():
        return _unsigned(data, 20, 4, False), _unsigned(data, 16, 4, False)

    def gif():
        return _unsigned(data, 8, 2, True), _unsigned(data, 6, 2, True)

    def bmp():
        height = _unsigned(data, 22, 4, True)
        height = tf.where(height >= 2**31, 2**32 - height, height)  # negative: a top-down bitmap
        return height, _unsigned(data, 18, 4, True)

    def jpeg():
        shape = tf.cast(tf.image.extract_jpeg_shape(data), tf.int64)
        return shape[0], shape[1]

    return tf.case(
        [
            (tf.logical_and(tf.equal(magic, b"\x89PNG"), length >= 24), png),
            (tf.logical_and(tf.equal(tf.strings.substr(data, 0, 3), b"GIF"), length >= 10), gif),
            (tf.logical_and(tf.equal(tf.strings.substr(data, 0, 2), b"BM"), length >= 26), bmp),
            (tf.io.is_jpeg(data), jpeg),
        ],
        default=lambda: unknown,
        exclusive=False,
    )


def _backing_variable(variable):
    """The `tf.Variable` holding a model variable's value: Keras 3's wraps one, tf-keras's is one."""
    return variable if isinstance(variable, tf.Variable) else variable.value


class ServingModule(tf.Module):
    """The exported object: the Keras model, its variables (`model_variables`), labels table and serving functions.

    Args:
        model: a keras_vits classifier (logits output) with a static input size.
        labels_file: text file with one class name per line, `num_classes` lines.
        mean, std: per-channel normalisation of the model's inputs, on [0, 1] pixels.
        top_k: how many classes the top-k outputs hold.
        resize_method: `tf.image.resize` method used to reach the model's size. Defaults to `"bilinear"`.
        max_image_pixels: largest height x width a request's image may have. Defaults to `MAX_IMAGE_PIXELS`.
    """

    def __init__(
        self, model, labels_file, mean, std, top_k=5, resize_method="bilinear", max_image_pixels=MAX_IMAGE_PIXELS
    ):
        super().__init__(name="keras_vits_serving")
        self.max_image_pixels = tf.Variable(
            int(max_image_pixels), dtype=tf.int64, trainable=False, name="max_image_pixels"
        )
        self._hold_untracked(model)
        # What the SavedModel checkpoints: the tf.Variables the signatures read.
        self.model_variables = [_backing_variable(v) for v in model.variables]
        self.height, self.width, self.channels = (int(d) for d in model.inputs[0].shape[1:])
        self.num_classes = int(model.outputs[0].shape[-1])
        self.top_k = min(int(top_k), self.num_classes)
        self.mean = tf.constant(mean, tf.float32)
        self.std = tf.constant(std, tf.float32)
        self.resize_method = resize_method
        self.labels_asset = tf.saved_model.Asset(str(labels_file))
        self.labels = tf.lookup.StaticHashTable(
            tf.lookup.TextFileInitializer(
                self.labels_asset,
                tf.int64,
                tf.lookup.TextFileIndex.LINE_NUMBER,
                tf.string,
                tf.lookup.TextFileIndex.WHOLE_LINE,
            ),
            default_value="",
        )

    @tf.__internal__.tracking.no_automatic_dependency_tracking
    def _hold_untracked(self, model):
        """Keeps `model` for the signatures without checkpointing it (`model_variables` are).

        A Keras 3 variable saves as a copy of its `tf.Variable`, which the signatures do not
        read: a loader that restores by the MetaGraph's variable names (TF Serving's C++
        `LoadSavedModel`, `tf.compat.v1.saved_model.loader.load`, `saved_model_cli run`)
        would restore the copies and leave the variables the signatures read uninitialised.
        """
        self.model = model

    def _match_channels(self, images):
        """`(B, H, W, c)` float -> `(B, H, W, C)`: gray and RGB convert; other counts are an error."""
        if images.shape[-1] == self.channels:
            return images
        convertible = self.channels in (1, 3)
        other = 4 - self.channels if convertible else self.channels  # 3 for a gray model, 1 for an RGB one
        allowed = f"{self.channels} or {other}" if convertible else f"{self.channels}"
        channels = tf.shape(images)[-1]
        check = tf.debugging.Assert(
            tf.logical_or(tf.equal(channels, self.channels), tf.equal(channels, other)),
            [
                f"images must have {allowed} channels, last (NHWC; transpose an NCHW batch by (0, 2, 3, 1)), got",
                channels,
            ],
        )
        with tf.control_dependencies([check]):
            images = tf.identity(images)
        if not convertible:
            return tf.ensure_shape(images, [None, None, None, self.channels])
        convert = tf.image.rgb_to_grayscale if self.channels == 1 else tf.image.grayscale_to_rgb
        return tf.cond(
            tf.equal(channels, self.channels),
            lambda: tf.reshape(images, tf.concat([tf.shape(images)[:3], [self.channels]], 0)),
            lambda: convert(tf.reshape(images, tf.concat([tf.shape(images)[:3], [other]], 0))),
        )

    def preprocess(self, images):
        """Pixels in [0, 255], any size -> the model's normalised input `(B, H, W, C)` float32."""

        # The declared rank lets TensorFlow fold any in-graph rank test away, and TF Serving
        # feeds whatever rank a request has: EnsureShape is the check that stays, naming the input.
        images = tf.ensure_shape(images, [None, None, None, None])
        shape = tf.cast(tf.shape(images), tf.int64)
        images = self._check_pixels(images, shape[1], shape[2])
        if images.dtype.is_floating:
            images = self._check_pixel_scale(images)
        images = self._match_channels(tf.cast(images, tf.float32))
        images = tf.image.resize(images, (self.height, self.width), method=self.resize_method, antialias=True)
        return (images / 255.0 - self.mean) / self.std

    @staticmethod
    def _check_pixel_scale(images):
        """`images` `(B, H, W, C)` float, once its values are checked to be pixels in [0, 255], not [0, 1].

        An image whose largest value is in (0, 1] is refused: on [0, 255] it would be black to the
        eye, so the request almost surely sent [0, 1] pixels. An all-zero image reads alike on both.
        """
        largest = tf.reduce_max(images, axis=[1, 2, 3])
        in_range = tf.debugging.Assert(
            tf.logical_and(tf.reduce_min(images) >= 0.0, tf.reduce_max(images) <= 255.0),
            [RANGE_MESSAGE, tf.reduce_min(images), "to", tf.reduce_max(images)],
        )
        not_unit_scale = tf.debugging.Assert(
            tf.reduce_all(tf.logical_or(largest == 0.0, largest > 1.0)), [UNIT_SCALE_MESSAGE, largest]
        )
        with tf.control_dependencies([in_range, not_unit_scale]):
            return tf.identity(images)

    def _check_pixels(self, value, height, width):
        """`value`, once `height x width` is checked against the export's pixel limit."""
        check = tf.debugging.Assert(
            tf.logical_and(tf.less_equal(height * width, self.max_image_pixels), tf.greater_equal(height, 0)),
            [
                "image of height x width",
                height,
                width,
                "is above the limit max_image_pixels =",
                self.max_image_pixels,
                "(set at export); send a smaller image",
            ],
        )
        with tf.control_dependencies([check]):
            return tf.identity(value)

    def _predict(self, images):
        logits = tf.cast(self.model(self.preprocess(images), training=False), tf.float32)
        probabilities = tf.nn.softmax(logits, axis=-1)
        top_probabilities, top_ids = tf.math.top_k(probabilities, k=self.top_k)
        top_ids = tf.cast(top_ids, tf.int64)
        return {
            "probabilities": probabilities,
            "top_k_ids": top_ids,
            "top_k_probabilities": top_probabilities,
            "top_k_labels": self.labels.lookup(top_ids),
        }

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.float32, name=IMAGES_INPUT)])
    def serving_default(self, images_0_255):
        return self._predict(images_0_255)

    @tf.function(input_signature=[tf.TensorSpec([None, None, None, None], tf.uint8, name=IMAGES_INPUT)])
    def serving_uint8(self, images_0_255):
        return self._predict(images_0_255)

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name=BYTES_INPUT)])
    def serving_bytes(self, image_bytes):
        decode_channels = 1 if self.channels == 1 else 3

        def decode(data):
            height, width = encoded_image_size(data)  # from the header: a huge image is refused before decoding
            is_image = tf.debugging.Assert(
                tf.greater_equal(height, 0), [NOT_AN_IMAGE_MESSAGE, tf.strings.substr(data, 0, 8)], summarize=8
            )
            with tf.control_dependencies([is_image]):  # before the pixel limit, which reads the same header
                height, width = tf.identity(height), tf.identity(width)
            data = self._check_pixels(data, height, width)
            image = tf.io.decode_image(data, channels=decode_channels, expand_animations=False)
            image = tf.image.resize(tf.cast(image, tf.float32), (self.height, self.width), antialias=True)
            return image

        images = tf.map_fn(
            decode,
            image_bytes,
            fn_output_signature=tf.TensorSpec([self.height, self.width, decode_channels], tf.float32),
        )
        return self._predict(images)


#: Prefix of the folder an export is written to before its rename into `<version>/`.
STAGING_PREFIX = ".staging-"


def next_version(model_dir: str | os.PathLike) -> int:
    """The integer version after the highest one in `model_dir` (1 for a new model)."""
    versions = [int(p.name) for p in pathlib.Path(model_dir).glob("*") if p.name.isdigit()]
    return max(versions, default=0) + 1


def export_saved_model(
    model: keras.Model,
    labels: Sequence[str],
    mean: Sequence[float],
    std: Sequence[float],
    base_dir: str | os.PathLike = "saved_models",
    name: str | None = None,
    version: int | None = None,
    top_k: int = 5,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
) -> pathlib.Path:
    """Writes `model` as a SavedModel for TF Serving at `<base_dir>/<name>/<version>/`.

    Args:
        model: a keras_vits classifier with logits output.
        labels: class names, one per logit.
        mean, std: normalisation of the model's inputs (per channel, on [0, 1] pixels),
            e.g. from `keras_vits.get_pretrained_cfg(name)`.
        base_dir: TF Serving's model base path. Defaults to `"saved_models"`.
        name: model name in the path. Defaults to `model.name`.
        version: integer version; None takes the next free one. Defaults to None.
        top_k: classes in the top-k outputs. Defaults to 5.
        max_image_pixels: the signatures refuse a request's image of more pixels (height x
            width; an encoded one before decoding). Defaults to `MAX_IMAGE_PIXELS` (4096 x 4096).

    Returns: the export directory (`pathlib.Path`).

    Raises:
        ValueError: labels that do not match the logits, a model without a
            classifier, a version that is not an int >= 1 or already exists.
        FolderInUseError: another process is exporting to `<base_dir>/<name>/` (its pid named).
    """
    if getattr(model, "get_config", None) and model.get_config().get("features_only"):
        raise ValueError("export_saved_model needs a classifier; this model returns feature maps (features_only=True).")
    num_classes = int(model.outputs[0].shape[-1])
    labels = [str(label) for label in labels]
    if len(labels) != num_classes or any("\n" in label for label in labels):
        raise ValueError(f"labels must be {num_classes} single-line names (one per logit), got {len(labels)}.")
    if version is not None and (not isinstance(version, int) or isinstance(version, bool) or version < 1):
        raise ValueError(f"version must be an int >= 1 (TF Serving's version folders), got {version!r}.")
    for arg_name, value in (("top_k", top_k), ("max_image_pixels", max_image_pixels)):
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise ValueError(f"{arg_name} must be a positive int, got {value!r}.")
    channels = int(model.inputs[0].shape[-1])
    for arg_name, value in (("mean", mean), ("std", std)):
        values = [value] if isinstance(value, numbers.Real) else list(np.ravel(value))
        if len(values) not in (1, channels) or not all(isinstance(v, numbers.Real) for v in values):
            raise ValueError(f"{arg_name} must hold 1 or {channels} numbers (one per channel), got {value!r}.")
        if arg_name == "std" and any(v <= 0 for v in values):
            raise ValueError(f"std must be positive, got {value!r}.")
    model_dir = as_path(base_dir, "base_dir") / (name or model.name)
    with folder_lock(model_dir):  # one export at a time per model; a second gets FolderInUseError
        return _export_locked(model, model_dir, labels, mean, std, version, top_k, max_image_pixels)


def _export_locked(model, model_dir, labels, mean, std, version, top_k, max_image_pixels):
    # Staging folders of exports killed before their final rename: no export runs now but ours.
    for stale in model_dir.glob(f"{STAGING_PREFIX}*"):
        shutil.rmtree(stale, ignore_errors=True)
    version = next_version(model_dir) if version is None else version
    target = model_dir / str(version)
    if target.exists():
        raise ValueError(f"{target} already exists; TF Serving versions are immutable, pick another version.")
    staging = pathlib.Path(tempfile.mkdtemp(prefix=f"{STAGING_PREFIX}{version}-", dir=model_dir))
    try:
        labels_file = staging / "labels.txt"
        labels_file.write_text("\n".join(labels) + "\n")
        module = ServingModule(model, labels_file, mean, std, top_k=top_k, max_image_pixels=max_image_pixels)
        signatures = {
            "serving_default": module.serving_default.get_concrete_function(),
            "serving_uint8": module.serving_uint8.get_concrete_function(),
            "serving_bytes": module.serving_bytes.get_concrete_function(),
        }
        export_dir = staging / "export"
        tf.saved_model.save(module, str(export_dir), signatures=signatures)
        os.replace(export_dir, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
