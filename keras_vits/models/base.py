"""What every keras_vits model shares: a functional graph built from its arguments."""

import inspect

import tensorflow as tf

from keras_vits.backend import keras


def check_images(images, expected_shape, model_name):
    """Raises a clear error unless `images` is a float batch of shape `expected_shape`.

    Args:
        images: what the model was called on.
        expected_shape: `(None, H, W, C)`; `None` entries are not checked.
        model_name: used in the message.
    """
    shape = getattr(images, "shape", None)
    dtype = getattr(images, "dtype", None)
    if shape is None or dtype is None:
        raise TypeError(
            f"{model_name} expects a float tensor or array of shape {expected_shape}, got {type(images).__name__}."
        )
    shape = tuple(shape)
    if len(shape) != len(expected_shape):
        raise ValueError(
            f"{model_name} expects images of rank {len(expected_shape)} with shape {expected_shape} "
            f"(batch, height, width, channels), got shape {shape}."
        )
    for axis, (got, want) in enumerate(zip(shape, expected_shape)):
        if want is not None and got is not None and got != want:
            what = "channels" if axis == len(shape) - 1 else "height and width"
            hint = "" if axis == len(shape) - 1 else "; build the model with image_size=(H, W) for other sizes"
            raise ValueError(f"{model_name} expects images of shape {expected_shape}, got {shape}: wrong {what}{hint}.")
    if not tf.as_dtype(dtype).is_floating:
        raise TypeError(
            f"{model_name} expects float images, already normalised (timm's input in NHWC), "
            f"got dtype {tf.as_dtype(dtype).name}. Convert and normalise first, e.g. "
            f"(tf.cast(images, 'float32') / 255 - mean) / std."
        )


def validate_head_and_input(num_classes, in_chans):
    """Checks the arguments every family shares."""
    if not isinstance(num_classes, int) or num_classes < 0:
        raise ValueError(f"num_classes must be an int >= 0 (0 returns pooled features), got {num_classes!r}.")
    if not isinstance(in_chans, int) or in_chans < 1:
        raise ValueError(f"in_chans must be a positive int (1 for grayscale, 3 for RGB, or more), got {in_chans!r}.")


def validate_stages(num_stages, out_indices, **per_stage):
    """Checks per-stage arguments have one entry per stage; returns `out_indices` as a tuple (None: all)."""
    for arg_name, values in per_stage.items():
        if len(values) != num_stages:
            raise ValueError(
                f"{arg_name} {tuple(values)} must have one entry per stage ({num_stages} stages, as in depths)."
            )
    out_indices = tuple(range(num_stages)) if out_indices is None else tuple(out_indices)
    if not out_indices or any(not 0 <= i < num_stages for i in out_indices):
        raise ValueError(f"out_indices must be stage indices in [0, {num_stages}), got {out_indices}.")
    return out_indices


def constructor_arguments(model_cls, local_variables):
    """The model's config: the current value of each `__init__` argument (all but `self`, `name`, `kwargs`).

    Called from `__init__` with `locals()` once arguments are validated and
    normalised (tuples, resolved `out_indices`), so the config holds them in that form.
    """
    parameters = inspect.signature(model_cls.__init__).parameters
    return {name: local_variables[name] for name in parameters if name not in ("self", "name", "kwargs")}


class VitsModel(keras.Model):
    """Base class: a functional model whose config is its constructor arguments.

    Subclasses build a flat functional graph in `__init__` and pass it here with
    the arguments that made it. `from_config(get_config())` rebuilds the same
    graph; weights then load by layer name.

    Attributes:
        weight_map: the family's `WeightMap` (timm checkpoint keys to layer names),
            set by each family module; `load_timm_weights` uses it.
    """

    weight_map = None

    def __init__(self, inputs, outputs, config, **kwargs):
        super().__init__(inputs=inputs, outputs=outputs, **kwargs)
        self._vits_config = dict(config)

    @property
    def expected_image_shape(self):
        """`(None, H, W, C)`, the shape `call` accepts."""
        return tuple(self.inputs[0].shape)

    def __call__(self, *args, **kwargs):
        # Checked before Keras's own input checks, so both Keras versions give this message.
        images = args[0] if args else kwargs.get("inputs")
        check_images(images, self.expected_image_shape, type(self).__name__)
        return super().__call__(*args, **kwargs)

    def no_weight_decay(self):
        """Sorted names of the layers whose weights AdamW should not decay (beyond every vector).

        The layers holding a weight whose class sets `exclude_from_weight_decay`:
        class and distillation tokens, learned position embeddings, relative-position
        bias tables, as timm's `no_weight_decay()` lists them.
        """
        return sorted(
            layer.name for layer in self.layers if getattr(layer, "exclude_from_weight_decay", False) and layer.weights
        )

    def get_config(self):
        return {"name": self.name, **self._vits_config}

    @classmethod
    def from_config(cls, config, custom_objects=None):
        return cls(**config)


class Variant:
    """One registry entry: a model class, its arguments and its pretrained config.

    The weight map is the model class's own (`model_cls.weight_map`).

    Attributes:
        model_cls: the model class.
        config: constructor arguments, without `num_classes` and `name`.
        pretrained: timm's pretrained config: `hf_hub_id`, `mean`, `std`, `crop_pct`, `num_classes`.
    """

    def __init__(self, model_cls, config, pretrained):
        self.model_cls = model_cls
        self.config = dict(config)
        self.pretrained = dict(pretrained)

    def __repr__(self):
        return f"Variant({self.model_cls.__name__}, {self.config})"
