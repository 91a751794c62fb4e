"""tf.data pipelines: decode, augment (DeiT's recipe from Keras and keras-cv layers), batch, normalise.

Images of one size are batched first and augmented per batch with per-image random
parameters; images of varying size are cropped or resized one by one first.
Labels leave as float targets `(B, num_classes)` so mixed labels need no special case.
"""

import tensorflow as tf

from keras_vits._extras import require
from keras_vits.backend import keras

keras_cv = require("keras_cv", "keras_vits.training (augmentation)")

AUTOTUNE = tf.data.AUTOTUNE
CACHE_LIMIT_BYTES = 2 << 30  # evaluation batches are cached in memory below this size


def _normalise(images, mean, std):
    mean = tf.constant(mean, tf.float32)
    std = tf.constant(std, tf.float32)
    return (images / 255.0 - mean) / std


class Augmenter:
    """The training augmentation of one recipe, built once from library layers.

    Per image, only where the source's images differ in size: random resized crop
    (keras-cv) to the training size. Per batch `(B, S, S, C)` float32 in [0, 255],
    with per-image random parameters: random resized crop (fixed-size sources) or
    pad-and-translate for small images, horizontal flip, RandAugment (keras-cv, one
    draw of operations per image), random erasing, then Mixup or CutMix (one of the
    two per batch, chosen with probability 1/2 when both are on, as timm's Mixup does).
    """

    def __init__(self, recipe, image_size, seed=None):
        self.image_size = image_size
        self.resized_crop = keras_cv.layers.RandomCropAndResize(
            target_size=(image_size, image_size),
            crop_area_factor=tuple(recipe.crop_scale),
            aspect_ratio_factor=(3 / 4, 4 / 3),
            seed=seed,
        )
        batch_layers = []
        if recipe.crop_padding:
            shift = recipe.crop_padding / image_size
            batch_layers.append(keras.layers.RandomTranslation(shift, shift, fill_mode="constant", seed=seed))
        else:
            batch_layers.append(self.resized_crop)
        if recipe.horizontal_flip:
            batch_layers.append(keras.layers.RandomFlip("horizontal", seed=seed))
        if recipe.randaugment:
            num_ops, magnitude = recipe.randaugment
            batch_layers.append(
                keras_cv.layers.RandAugment(
                    value_range=(0, 255),
                    augmentations_per_image=int(num_ops),
                    magnitude=magnitude,
                    magnitude_stddev=0.05,
                    rate=1.0,
                    seed=seed,
                )
            )
        if recipe.random_erasing:
            probability = recipe.random_erasing
            batch_layers.append(
                keras.layers.RandomErasing(factor=(probability, probability), value_range=(0, 255), seed=seed)
            )
        self.batch_layers = batch_layers
        self.crop_per_image = not recipe.crop_padding
        self.mixup = keras.layers.MixUp(alpha=recipe.mixup_alpha, seed=seed) if recipe.mixup_alpha else None
        # Keras's CutMix draws its Beta parameter from the `factor` range, then the area from Beta(a, a):
        # a one-point range gives the paper's fixed alpha (a single float would draw it from U(0, alpha)).
        cutmix_factor = (recipe.cutmix_alpha, recipe.cutmix_alpha)
        self.cutmix = keras.layers.CutMix(factor=cutmix_factor, seed=seed) if recipe.cutmix_alpha else None

    def image(self, image):
        """One image `(H, W, C)` of any size -> `(S, S, C)`: the random resized crop, or a resize."""
        if self.crop_per_image:
            return self.resized_crop(image)
        return tf.image.resize(image, (self.image_size, self.image_size), antialias=True)

    def batch(self, images, targets, fixed_size=True):
        """Augments a batch `(B, S, S, C)` with its targets `(B, K)`."""
        for layer in self.batch_layers:
            if layer is self.resized_crop and not fixed_size:
                continue  # done per image
            images = tf.cast(layer(images), tf.float32)
        images = tf.clip_by_value(images, 0.0, 255.0)
        mixers = [m for m in (self.mixup, self.cutmix) if m is not None]
        if not mixers:
            return images, targets

        def mix(layer):
            def apply():
                out = layer({"images": images, "labels": targets})
                return tf.cast(out["images"], images.dtype), tf.cast(out["labels"], targets.dtype)

            return apply

        if len(mixers) == 1:
            return mix(mixers[0])()
        return tf.cond(tf.random.uniform([]) < 0.5, mix(mixers[0]), mix(mixers[1]))


def _eval_resize(image, image_size, crop_fraction):
    """Resize the shorter side to image_size / crop_fraction, then centre-crop image_size."""
    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = image_size / crop_fraction / tf.reduce_min(shape)
    resized = tf.cast(tf.round(shape * scale), tf.int32)
    image = tf.image.resize(image, resized, method="bilinear", antialias=True)
    return tf.image.resize_with_crop_or_pad(image, image_size, image_size)


def make_dataset(source, recipe, global_batch_size, training, epoch=0, skip_batches=0, augment=True):
    """Batches `(images (B, S, S, C) float32 normalised, targets (B, K) float32)` from an `ImageSource`.

    Args:
        source: a `keras_vits.training.data.ImageSource`.
        recipe: a `keras_vits.training.recipes.Recipe` (image size, normalisation, augmentation).
        global_batch_size: images per step over all replicas.
        training: shuffle (seeded with `recipe.seed + epoch`), augment, drop the last partial batch.
        epoch: the epoch, so each epoch has its own order and a resumed run sees the same one.
        skip_batches: batches to skip at the start (resuming mid-epoch).
        augment: apply the recipe's augmentation when training.
    """
    num_classes = source.num_classes
    image_size = recipe.image_size
    dataset = source.dataset

    height, width = source.dataset.element_spec[0].shape[:2]
    fixed_size = height == image_size and width == image_size
    if training:
        dataset = dataset.shuffle(min(source.num_examples, 50_000), seed=recipe.seed + epoch)
    augmenter = Augmenter(recipe, image_size, seed=recipe.seed + epoch) if training and augment else None

    def prepare_image(image, label):
        image = tf.cast(image, tf.float32)
        if augmenter is not None:
            image = augmenter.image(image)
        else:
            image = _eval_resize(image, image_size, recipe.eval_crop_fraction)
        return image, label

    def prepare_batch(images, labels):
        tf.debugging.assert_less(
            labels, tf.constant(num_classes, labels.dtype), message=f"labels of {source.name} must be < {num_classes}"
        )
        tf.debugging.assert_non_negative(labels, message=f"labels of {source.name} must be >= 0")
        images = tf.cast(images, tf.float32)
        targets = tf.one_hot(labels, num_classes, dtype=tf.float32)
        if augmenter is not None:
            images, targets = augmenter.batch(images, targets, fixed_size=fixed_size)
        return _normalise(images, recipe.mean, recipe.std), targets

    # Images already at image_size skip the per-image resize, unless the evaluation crop would
    # change them: a fixed-size source once ignored eval_crop_fraction without a word.
    crops_unaugmented = augmenter is None and recipe.eval_crop_fraction != 1.0
    if not fixed_size or crops_unaugmented:
        dataset = dataset.map(prepare_image, num_parallel_calls=AUTOTUNE, deterministic=not training)
    dataset = dataset.batch(global_batch_size, drop_remainder=training, num_parallel_calls=AUTOTUNE)
    dataset = dataset.map(prepare_batch, num_parallel_calls=AUTOTUNE)
    if skip_batches:
        dataset = dataset.skip(skip_batches)
    if not training and source.num_examples * image_size**2 * source.channels * 4 < CACHE_LIMIT_BYTES:
        dataset = dataset.cache()  # evaluation repeats every epoch on the same dataset object
    return dataset.prefetch(AUTOTUNE)
