"""What every keras_vits model shares: a functional graph built from its arguments."""

import contextlib
import contextvars
import difflib
import functools
import inspect
import math
import numbers
import sys

import numpy as np

from keras_vits.backend import IS_KERAS_3, dtype_name, keras


def _pair(value):
    return tuple(value) if isinstance(value, (list, tuple)) else (value, value)


def _is_tf_dataset(data):
    """Whether `data` is a `tf.data.Dataset`, asked without importing TensorFlow."""
    tf = sys.modules.get("tensorflow")
    return tf is not None and isinstance(data, tf.data.Dataset)


def channels_first_hint(shape, expected_shape):
    """A hint when `shape` reads as the NCHW layout of an NHWC `expected_shape`, else ""."""
    channels = expected_shape[-1]
    if len(shape) != 4 or channels is None or shape[1] != channels or shape[-1] == channels:
        return ""
    return (
        "; this looks channels-first (NCHW, as PyTorch takes it), and keras_vits models take NHWC: "
        "transpose first, images.transpose(0, 2, 3, 1) (NumPy) or keras.ops.transpose(images, (0, 2, 3, 1))"
    )


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
            hint = channels_first_hint(shape, expected_shape)
            if not hint and axis != len(shape) - 1:
                hint = "; build the model with image_size=(H, W) for other sizes"
            raise ValueError(f"{model_name} expects images of shape {expected_shape}, got {shape}: wrong {what}{hint}.")
    check_image_dtype(dtype, model_name)


#: The largest magnitude a normalised image holds, `(pixel / 255 - mean) / std`, for any std >= 0.05.
#: timm's normalisations stay within [-2.2, 2.7] and Fashion-MNIST's within [-0.9, 2.1]; raw 0-255
#: pixels pass it only in images darker than 20 of 255.
MAX_NORMALISED_MAGNITUDE = 20.0

_ALLOW_UNNORMALISED = contextvars.ContextVar("keras_vits_allow_unnormalised", default=False)


@contextlib.contextmanager
def allow_unnormalised_images():
    """Within this block, NumPy images beyond `MAX_NORMALISED_MAGNITUDE` are taken (a model trained on raw pixels)."""
    token = _ALLOW_UNNORMALISED.set(True)
    try:
        yield
    finally:
        _ALLOW_UNNORMALISED.reset(token)


def check_image_values(images, model_name):
    """Raises a `ValueError` when a NumPy batch holds NaN or infinity, or values no normalised image has.

    Only NumPy arrays are read: a tensor may sit on an accelerator or inside a traced function,
    where reading its values would cost a transfer on every call. Raw 0-255 pixels are refused
    (unless `allow_unnormalised_images()`); un-normalised [0, 1] floats are within the normalised
    range and cannot be told apart.
    """
    if not isinstance(images, np.ndarray) or images.size == 0 or images.dtype.kind != "f":
        return
    low, high = float(images.min()), float(images.max())
    if not (np.isfinite(low) and np.isfinite(high)):
        raise ValueError(f"{model_name} got images holding NaN or infinite values.")
    largest = max(-low, high)
    if largest > MAX_NORMALISED_MAGNITUDE and not _ALLOW_UNNORMALISED.get():
        raise ValueError(
            f"{model_name} expects normalised images, (pixels / 255 - mean) / std, and got values in "
            f"[{low:g}, {high:g}]: these look like raw 0-255 pixels. Normalise with the mean and std the "
            f"weights were trained with (keras_vits.get_pretrained_cfg(name), or the run's recipe.json); "
            f"a model trained on raw pixels takes them inside keras_vits.models.base.allow_unnormalised_images()."
        )


def check_image_dtype(dtype, model_name):
    """Raises a `TypeError` unless `dtype` is a float one: uint8 pixels are not the normalised input."""
    name = dtype_name(dtype)
    if "float" not in name:
        raise TypeError(
            f"{model_name} expects float images, already normalised (timm's input in NHWC), "
            f"got dtype {name}. Convert and normalise first, e.g. "
            f"(images.astype('float32') / 255 - mean) / std."
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


# ----------------------------------------------------------------------------- argument checks
# One vocabulary for every family (timm's), so one table of checks by argument name.

#: Arguments that are a positive int, or a pair of them (`image_size`: None, a dynamic size, is allowed).
_POSITIVE_INT_OR_PAIR = ("image_size", "patch_size", "window_size")
#: Arguments that are a positive int.
_POSITIVE_INTS = ("embed_dim", "depth")
#: Arguments that are one entry per stage, each a positive int.
_POSITIVE_INT_PER_STAGE = ("depths", "embed_dims", "sr_ratios", "patch_sizes")
#: Every per-stage argument: one entry per stage, as `depths` has.
_PER_STAGE = ("depths", "embed_dims", "num_heads", "mlp_ratios", "sr_ratios", "patch_sizes")
#: Keras's own constructor arguments a model also takes, and the size limits' switch.
_KERAS_KWARGS = ("trainable", "dtype", "allow_large")
#: Dropout-like rates, in [0, 1).
_RATES = ("drop_rate", "attn_drop_rate", "drop_path_rate")
#: Plain switches.
_BOOLS = ("qkv_bias", "class_token", "shifted", "patch_norm", "pad_before_shift", "linear", "features_only")


def _is_int(value):
    return isinstance(value, numbers.Integral) and not isinstance(value, (bool, np.bool_))


def _is_number(value):
    return isinstance(value, numbers.Real) and not isinstance(value, (bool, np.bool_)) and math.isfinite(value)


def _check_positive_int(arg_name, value, what="a positive int"):
    if not _is_int(value) or value < 1:
        kind = type(value).__name__
        raise (TypeError if not _is_int(value) else ValueError)(f"{arg_name} must be {what}, got {value!r} ({kind}).")


def _check_sequence(arg_name, value, check_item, what):
    if isinstance(value, (str, bytes)) or not isinstance(value, (list, tuple)):
        raise TypeError(f"{arg_name} must be a tuple of {what} (one per stage), got {value!r}.")
    if not value:
        raise ValueError(f"{arg_name} must have at least one stage, got {value!r}.")
    for item in value:
        check_item(f"{arg_name} entry", item)


def _check_ratio(arg_name, value):
    if not _is_number(value):
        raise TypeError(f"{arg_name} must be a finite number > 0 (MLP width over token width), got {value!r}.")
    if value <= 0:
        raise ValueError(f"{arg_name} must be > 0 (MLP width over token width), got {value!r}.")


def check_constructor_arguments(model_cls, arguments):
    """Raises `TypeError`/`ValueError` naming the first argument of the wrong type or out of range.

    Args:
        model_cls: the model class (in messages).
        arguments: `{name: value}` of every `__init__` argument, defaults included.
    """
    where = model_cls.__name__
    for arg_name, value in arguments.items():
        if arg_name in _POSITIVE_INT_OR_PAIR:
            if value is None and arg_name == "image_size":
                continue
            pair = tuple(value) if isinstance(value, (list, tuple)) else (value, value)
            if len(pair) != 2:
                raise ValueError(f"{where}: {arg_name} must be an int or a pair (height, width), got {value!r}.")
            if not all(_is_int(v) for v in pair):
                raise TypeError(f"{where}: {arg_name} must be an int or a pair (height, width) of ints, got {value!r}.")
            if min(pair) < 1:
                raise ValueError(f"{where}: {arg_name} must be positive, got {value!r}.")
        elif arg_name in _POSITIVE_INTS:
            _check_positive_int(f"{where}: {arg_name}", value)
        elif arg_name in _POSITIVE_INT_PER_STAGE:
            _check_sequence(f"{where}: {arg_name}", value, _check_positive_int, "positive ints")
        elif arg_name == "num_heads":
            if isinstance(value, (list, tuple)):
                _check_sequence(f"{where}: num_heads", value, _check_positive_int, "positive ints")
            else:
                _check_positive_int(f"{where}: num_heads", value)
        elif arg_name == "mlp_ratio":
            _check_ratio(f"{where}: mlp_ratio", value)
        elif arg_name == "mlp_ratios":
            _check_sequence(f"{where}: mlp_ratios", value, _check_ratio, "numbers > 0")
        elif arg_name in _RATES:
            if not _is_number(value):
                raise TypeError(f"{where}: {arg_name} must be a number in [0, 1), got {value!r}.")
            if not 0 <= value < 1:
                raise ValueError(f"{where}: {arg_name} must be in [0, 1) (a probability), got {value!r}.")
        elif arg_name in _BOOLS:
            if not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{where}: {arg_name} must be True or False, got {value!r}.")
        elif arg_name == "fc_norm":
            if value is not None and not isinstance(value, (bool, np.bool_)):
                raise TypeError(f"{where}: fc_norm must be None, True or False, got {value!r}.")
        elif arg_name == "init_values":
            if value is not None and not _is_number(value):
                raise TypeError(f"{where}: init_values must be None or a finite number (layer scale), got {value!r}.")
        elif arg_name == "name" and (not isinstance(value, str) or not value):
            raise TypeError(f"{where}: name must be a non-empty str, got {value!r}.")
    per_stage = {k: arguments[k] for k in _PER_STAGE if isinstance(arguments.get(k), (list, tuple))}
    if "depths" in per_stage:
        stages = len(per_stage["depths"])
        for arg_name, values in per_stage.items():
            if len(values) != stages:
                raise ValueError(
                    f"{where}: {arg_name} {tuple(values)} must have one entry per stage ({stages}, as depths)."
                )
    num_classes, in_chans = arguments.get("num_classes", 0), arguments.get("in_chans", 1)
    if isinstance(num_classes, bool) or isinstance(in_chans, bool):
        raise TypeError(f"{where}: num_classes and in_chans must be ints, got {num_classes!r} and {in_chans!r}.")
    validate_head_and_input(num_classes, in_chans)
    dim, heads = arguments.get("embed_dim"), arguments.get("num_heads")
    if _is_int(dim) and _is_int(heads) and dim % heads:
        raise ValueError(
            f"{where}: embed_dim ({dim}) must be divisible by num_heads ({heads}); "
            f"e.g. embed_dim={max(heads, round(dim / heads) * heads)}."
        )
    if _is_int(dim) and "mlp_ratio" in arguments and int(dim * arguments["mlp_ratio"]) < 1:
        raise ValueError(
            f"{where}: mlp_ratio {arguments['mlp_ratio']!r} gives an MLP of width int({dim} * "
            f"{arguments['mlp_ratio']!r}) = 0; it must give at least 1."
        )


# ----------------------------------------------------------------------------- size limits

#: Largest model built without `allow_large=True`: parameters (4 GB of float32 weights).
MAX_PARAMETERS = 1_000_000_000
#: Largest activation memory for one image built without `allow_large=True`, in elements
#: (40 GB of float32): the input, and each block's attention scores, MLP hidden and token maps,
#: summed over blocks (what training one image holds). ViTDet's backbones at 1024x1024 (ViT-B
#: 2.9e9, ViT-L 7.7e9) fit; image_size=100000 (about 1e16) does not.
MAX_ACTIVATIONS_PER_IMAGE = 10_000_000_000

_ALLOW_LARGE = contextvars.ContextVar("keras_vits_allow_large", default=False)


@contextlib.contextmanager
def allow_large_models():
    """Within this block, models above the size limits are built (as with `allow_large=True`).

    For loading a saved large model: `with allow_large_models(): keras.models.load_model(path)`.
    A `.keras` config cannot lift the limits itself.
    """
    token = _ALLOW_LARGE.set(True)
    try:
        yield
    finally:
        _ALLOW_LARGE.reset(token)


def transformer_stage_size(*, tokens, keys, dim, depth, heads, mlp_ratio):
    """`(parameters, activations)` of `depth` pre-norm blocks on `tokens` queries over `keys` keys.

    Parameters: qkv and output projections, the two MLP layers and both norms.
    Activations for one image: each block's attention scores, MLP hidden and a few token maps.
    """
    hidden = int(dim * mlp_ratio)
    parameters = depth * (4 * dim * dim + 4 * dim + 2 * dim * hidden + hidden + dim + 4 * dim)
    activations = depth * (heads * tokens * keys + tokens * hidden + 8 * tokens * dim)
    return parameters, activations


def check_model_size(model_cls, arguments, allow_large):
    """Refuses a model whose estimate (`model_cls.estimate_size`) is above the limits, before it is built."""
    if allow_large or _ALLOW_LARGE.get():
        return
    estimate = getattr(model_cls, "estimate_size", None)
    if estimate is None:
        return
    parameters, activations = estimate(arguments)
    if parameters > MAX_PARAMETERS or (activations is not None and activations > MAX_ACTIVATIONS_PER_IMAGE):
        size = arguments.get("image_size")
        raise ValueError(
            f"{model_cls.__name__} with image_size={size!r} would hold about {parameters:.3g} parameters "
            f"(limit {MAX_PARAMETERS:.0e}) and need about {activations or 0:.3g} activation values for one "
            f"image (limit {MAX_ACTIVATIONS_PER_IMAGE:.0e}, 4 bytes each), estimated from its arguments. "
            f"Pass allow_large=True (or build inside keras_vits.models.base.allow_large_models()) if you mean it."
        )


def constructor_arguments(model_cls, local_variables):
    """The model's config: the current value of each `__init__` argument (all but `self`, `name`, `kwargs`).

    Called from `__init__` with `locals()` once arguments are validated and
    normalised (tuples, resolved `out_indices`), so the config holds them in that form.
    """
    parameters = inspect.signature(model_cls.__init__).parameters
    return {name: local_variables[name] for name in parameters if name not in ("self", "name", "kwargs")}


def _build_in_own_dtype(init):
    """`init` (a model's `__init__`) run so that its `dtype` reaches every sublayer.

    Keras gives a functional model's `dtype` to the model alone, and a keras_vits model builds
    its sublayers in `__init__`, where they take the global policy: so the global policy is the
    model's own while they are built. A `DTypePolicyMap` (what `get_config` writes for a
    quantized model) builds under its default policy, then gives each layer it names its own
    policy; a quantized policy quantizes that layer, so its quantized weights then load.
    """

    @functools.wraps(init)
    def init_in_own_dtype(self, *args, **kwargs):
        if not IS_KERAS_3 or kwargs.get("dtype") is None:
            return init(self, *args, **kwargs)
        policy = keras.dtype_policies.get(kwargs["dtype"])
        per_layer = policy if isinstance(policy, keras.dtype_policies.DTypePolicyMap) else None
        default = per_layer.default_policy if per_layer is not None else policy
        previous = keras.config.dtype_policy()
        keras.config.set_dtype_policy(default)
        try:
            init(self, *args, **dict(kwargs, dtype=default))
        finally:
            keras.config.set_dtype_policy(previous)
        self._explicit_dtype = True
        for layer_name in per_layer or ():
            self.get_layer(layer_name).dtype_policy = per_layer[layer_name]

    init_in_own_dtype.__signature__ = inspect.signature(init)  # Keras reads it without following __wrapped__
    return init_in_own_dtype


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
    _explicit_dtype = False

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__:
            cls.__init__ = _build_in_own_dtype(cls.__dict__["__init__"])

    def __new__(cls, *args, **kwargs):
        # Every family's arguments are checked here, before its __init__ builds anything.
        if cls.__init__ is not VitsModel.__init__:
            signature = inspect.signature(cls.__init__)
            try:
                bound = signature.bind(None, *args, **kwargs)
            except TypeError as error:
                raise TypeError(f"{cls.__name__}: {error}.") from None
            bound.apply_defaults()
            unknown = sorted(set(bound.arguments.get("kwargs", {})) - set(_KERAS_KWARGS))
            if unknown:
                names = [p for p in signature.parameters if p not in ("self", "kwargs")]
                close = {u: difflib.get_close_matches(u, names, n=1) for u in unknown}
                hints = "".join(f" Did you mean {c[0]} for {u}?" for u, c in close.items() if c)
                raise TypeError(
                    f"{cls.__name__} takes no argument {', '.join(unknown)}.{hints} It takes: {', '.join(names)}."
                )
            arguments = {k: v for k, v in bound.arguments.items() if k not in ("self", "kwargs")}
            check_constructor_arguments(cls, arguments)
            check_model_size(cls, arguments, kwargs.get("allow_large", False))
        return super().__new__(cls, *args, **kwargs)

    def __init__(self, inputs, outputs, config, **kwargs):
        kwargs.pop("allow_large", None)
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
        check_image_values(images, type(self).__name__)
        return super().__call__(*args, **kwargs)

    def _check_data(self, data):
        """`check_images` on an array, tensor or tf.data element spec, before Keras traces anything.

        Keras's predict and evaluate functions relax the traced shape after a first call, so a
        second image size reached the graph unchecked ("Input to reshape is a tensor with ...").
        """
        if _is_tf_dataset(data):
            data = data.element_spec
            if isinstance(data, (tuple, list)) and data:
                data = data[0]
            if not hasattr(data, "shape"):
                return  # a dict or nested structure: Keras's own checks apply
        check_images(data, self.expected_image_shape, type(self).__name__)
        check_image_values(data, type(self).__name__)

    def predict(self, x, *args, **kwargs):
        self._check_data(x)
        return super().predict(x, *args, **kwargs)

    def predict_on_batch(self, x):
        self._check_data(x)
        return super().predict_on_batch(x)

    def evaluate(self, x=None, *args, **kwargs):
        self._check_data(x)
        return super().evaluate(x, *args, **kwargs)

    def no_weight_decay(self):
        """Sorted names of the layers whose weights AdamW should not decay (beyond every vector).

        The layers holding a weight whose class sets `exclude_from_weight_decay`:
        class and distillation tokens, learned position embeddings, relative-position
        bias tables, as timm's `no_weight_decay()` lists them.
        """
        return sorted(
            layer.name for layer in self.layers if getattr(layer, "exclude_from_weight_decay", False) and layer.weights
        )

    # Where each weight sits, front to back, for layer-wise learning-rate decay and freezing.
    # Each family answers `_layer_position(layer_name)` for its own layer names with one of:
    STEM = ("stem",)  # patch embedding, tokens, position embedding: depth 0
    AFTER_BLOCKS = ("after_blocks",)  # the final norm: the last block's depth
    HEAD = ("head",)  # the classifier and what only it uses: the top depth

    @staticmethod
    def block_position(stage, index):
        """The position of block `index` of `stage`; blocks at one position share a depth."""
        return ("block", stage, index)

    def _layer_position(self, layer_name):
        raise NotImplementedError(f"{type(self).__name__} does not say where its layers sit.")

    def layer_depths(self):
        """`{layer name: depth}` for every layer holding weights, numbered as timm's `group_matcher` groups them.

        Depth 0 is the stem (patch embedding, tokens, position embedding); each block (or
        block group) has its own depth, in order; the classifier head is at the top,
        `max(layer_depths().values())`. Layer-wise learning-rate decay scales a layer's rate
        by `decay ** (top - depth)`.
        """
        positions = {layer.name: self._layer_position(layer.name) for layer in self.layers if layer.weights}
        blocks = sorted({position[1:] for position in positions.values() if position[0] == "block"})
        block_depth = {block: depth for depth, block in enumerate(blocks, start=1)}
        depth_of = {"stem": 0, "after_blocks": len(blocks), "head": len(blocks) + 1}
        return {
            name: block_depth[position[1:]] if position[0] == "block" else depth_of[position[0]]
            for name, position in positions.items()
        }

    def stage_depths(self):
        """The depth of each stage's last block, in order: `freeze:N` freezes every depth up to the N-th.

        A plain ViT's stages are its blocks; Swin's and PVT's are their stages.
        """
        positions = [self._layer_position(layer.name) for layer in self.layers if layer.weights]
        blocks = sorted({position[1:] for position in positions if position[0] == "block"})
        last_of_stage = {}
        for depth, (stage, _) in enumerate(blocks, start=1):
            last_of_stage[stage] = depth
        return tuple(last_of_stage[stage] for stage in sorted(last_of_stage))

    def classifier_layers(self):
        """Names of the classifier's own layers (the weight map's head), in the model; empty without a head."""
        names = {layer.name for layer in self.layers if layer.weights}
        return sorted(name for name in self.weight_map.head_layers if name in names)

    def get_config(self):
        config = {"name": self.name, **self._vits_config}
        dtype = self._config_dtype()
        if dtype is not None:
            config["dtype"] = keras.dtype_policies.serialize(dtype)
        return config

    def _config_dtype(self):
        """The `dtype` a rebuilt model needs: a `DTypePolicyMap` once layers are quantized, the model's
        policy when it was given one, else None (the model then follows the global policy, as before)."""
        if not IS_KERAS_3:
            return None
        quantized = {layer.name: layer.dtype_policy for layer in self.layers if layer.quantization_mode is not None}
        if quantized:
            return keras.dtype_policies.DTypePolicyMap(default_policy=self.dtype_policy, policy_map=quantized)
        return self.dtype_policy if self._explicit_dtype else None

    if IS_KERAS_3:

        def compute_output_spec(self, inputs, training=None, mask=None):
            """Output specs for `inputs`: KerasTensors, or arrays and tensors (only their shape and dtype are read)."""
            if not isinstance(inputs, keras.KerasTensor) and hasattr(inputs, "shape"):
                inputs = keras.KerasTensor(tuple(inputs.shape), dtype=dtype_name(inputs.dtype))
            return super().compute_output_spec(inputs, training=training, mask=mask)

    @classmethod
    def from_config(cls, config, custom_objects=None):
        # A saved config cannot lift the size limits (see `allow_large_models`).
        return cls(**{k: v for k, v in config.items() if k != "allow_large"})

    @classmethod
    def estimate_size(cls, arguments):
        """`(parameters, activations for one image)` estimated from constructor arguments, nothing built.

        This default is the plain ViT's (one stage of `depth` blocks over patch tokens);
        the hierarchical families override it. Activations are None for a dynamic size.
        """
        patch = _pair(arguments.get("patch_size", 16))
        dim, depth = arguments["embed_dim"], arguments["depth"]
        in_chans, num_classes = arguments.get("in_chans", 3), arguments.get("num_classes", 0)
        prefix = 2 if "head" in arguments else int(bool(arguments.get("class_token", True)))
        size = arguments.get("image_size")
        grid = None if size is None else math.prod(s // p for s, p in zip(_pair(size), patch))
        tokens = (grid or 0) + prefix
        parameters, activations = transformer_stage_size(
            tokens=tokens,
            keys=tokens,
            dim=dim,
            depth=depth,
            heads=arguments["num_heads"],
            mlp_ratio=arguments.get("mlp_ratio", 4.0),
        )
        heads = 2 if "head" in arguments else 1
        parameters += math.prod(patch) * in_chans * dim + dim + prefix * dim + 2 * dim
        parameters += heads * (dim * num_classes + num_classes)
        if arguments.get("pos_embed", "learned") == "learned":
            parameters += tokens * dim
        if size is None:
            return parameters, None
        return parameters, activations + math.prod(_pair(size)) * in_chans


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
