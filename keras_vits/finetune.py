"""Fine-tuning a pretrained keras_vits model: layer-wise learning-rate decay, frozen stages, a re-scaled head.

    from keras_vits.finetune import layer_decay_optimizer, set_trainable
    model = keras_vits.create_model("deit_tiny_patch16_224", weights="deit_tiny.safetensors", num_classes=5)
    set_trainable(model, "freeze:6")  # or "head" for a linear probe
    optimizer = layer_decay_optimizer(model, learning_rate=schedule, layer_decay=0.65, weight_decay=0.05)

Each keras_vits model says where its layers sit (`model.layer_depths()`): the stem at depth 0,
each block (Swin) or stage (PVT) at its own depth, the head at the top, as timm's
`group_matcher` numbers them. Nothing here reads layer classes or weight names.
"""

import re

from keras_vits import ops
from keras_vits.backend import keras, register_serializable

#: `trainable` values: every weight, the head alone (a linear probe), or the stem and the first N stages frozen.
TRAINABLE_FORMS = ('"all"', '"head"', '"freeze:N"')


def _check_layer_decay(layer_decay):
    if isinstance(layer_decay, bool) or not isinstance(layer_decay, (int, float)):
        raise TypeError(f"layer_decay must be a number in (0, 1], got {layer_decay!r}.")
    if not 0 < layer_decay <= 1:
        raise ValueError(f"layer_decay must be in (0, 1] (1 keeps one rate for every layer), got {layer_decay!r}.")


def _require_depths(model, what):
    if not hasattr(model, "layer_depths"):
        raise TypeError(
            f"{what} needs a keras_vits model, which says where each layer sits (layer_depths()); "
            f"got {type(model).__name__} {model.name!r}."
        )


def layer_rate_scales(model, layer_decay):
    """`{variable path: layer_decay ** (top - depth)}` for every trainable weight of `model`.

    The head (the top depth) keeps the full rate; each depth below it one more factor of `layer_decay`.
    """
    _check_layer_decay(layer_decay)
    _require_depths(model, "layer_decay")
    depths = model.layer_depths()
    top = max(depths.values())
    return {
        variable.path: float(layer_decay ** (top - depths[layer.name]))
        for layer in model.layers
        for variable in layer.trainable_weights
    }


@register_serializable
class LayerDecayAdamW(keras.optimizers.AdamW):
    """AdamW whose learning rate is scaled per variable: `learning_rate * rate_scales[variable.path]`.

    The scale applies to the whole step, Adam's update and the decoupled weight decay alike, as a
    per-group learning rate does in PyTorch (timm's `param_groups_layer_decay`). Scaling gradients
    instead would not do it: Adam divides the scale out again. Variables not in `rate_scales` keep
    the full rate. Works with a `LearningRateSchedule`, `exclude_from_weight_decay`, EMA and
    `LossScaleOptimizer`, on every Keras 3 backend (only `keras.ops`).

    Args:
        rate_scales: `{variable.path: scale}`, e.g. from `layer_rate_scales(model, decay)`.
        **kwargs: AdamW's arguments.
    """

    def __init__(self, rate_scales=None, **kwargs):
        super().__init__(**kwargs)
        self.rate_scales = {str(path): float(scale) for path, scale in (rate_scales or {}).items()}
        self._scale_by_index = []

    def build(self, variables):
        super().build(variables)
        self._scale_by_index = [self.rate_scales.get(variable.path, 1.0) for variable in variables]

    def _apply_weight_decay(self, variables):
        """Left to `update_step`, where each variable's own rate is known."""

    def update_step(self, gradient, variable, learning_rate):
        scale = self._scale_by_index[self._get_variable_index(variable)]
        learning_rate = ops.cast(learning_rate, variable.dtype) * scale
        if self.weight_decay is not None and self._use_weight_decay(variable):
            self.assign_sub(variable, variable * (ops.cast(self.weight_decay, variable.dtype) * learning_rate))
        super().update_step(gradient, variable, learning_rate)

    def get_config(self):
        return {**super().get_config(), "rate_scales": dict(self.rate_scales)}


def no_weight_decay_variables(model):
    """Variables AdamW leaves undecayed: every vector (biases, norms, layer scales), plus what the model names.

    A keras_vits model answers `model.no_weight_decay()` with its layer names (tokens,
    position embeddings, relative-position bias tables), as timm's models do; any other
    Keras model (a teacher, a user's classifier) gets the vector rule alone.
    """
    named = set(model.no_weight_decay()) if hasattr(model, "no_weight_decay") else set()
    return [v for layer in model.layers for v in layer.trainable_weights if len(v.shape) <= 1 or layer.name in named]


def layer_decay_optimizer(model, learning_rate, layer_decay, weight_decay=0.05, **adamw_kwargs):
    """AdamW for `model` with per-layer rates `learning_rate * layer_decay ** (top - depth)`.

    Vectors (biases, norms) and what the model names in `no_weight_decay()` are not decayed,
    as in the training loop. For a `DistillationModel`, pass its student.

    Args:
        model: a keras_vits model.
        learning_rate: a float or a `keras.optimizers.schedules.LearningRateSchedule` (the head's rate).
        layer_decay: in (0, 1]; 1 gives every layer the same rate.
        weight_decay: AdamW's decoupled weight decay.
        **adamw_kwargs: any other AdamW argument (`global_clipnorm`, `use_ema`, ...).
    """
    optimizer = LayerDecayAdamW(
        rate_scales=layer_rate_scales(model, layer_decay),
        learning_rate=learning_rate,
        weight_decay=weight_decay,
        **adamw_kwargs,
    )
    optimizer.exclude_from_weight_decay(var_list=no_weight_decay_variables(model))
    return optimizer


def parse_trainable(trainable):
    """`"all"` -> `("all", 0)`, `"head"` -> `("head", 0)`, `"freeze:N"` -> `("freeze", N)`; raises on anything else."""
    if not isinstance(trainable, str):
        raise TypeError(f"trainable takes a str, one of {', '.join(TRAINABLE_FORMS)}; got {trainable!r}.")
    if trainable in ("all", "head"):
        return trainable, 0
    frozen = re.fullmatch(r"freeze:(\d+)", trainable)
    if frozen is None or int(frozen.group(1)) < 1:
        raise ValueError(
            f"trainable takes {', '.join(TRAINABLE_FORMS)} (the stem and the first N >= 1 stages frozen), "
            f"got {trainable!r}."
        )
    return "freeze", int(frozen.group(1))


def frozen_depth(model, trainable):
    """The highest depth `trainable` freezes (-1: none), checked against `model`'s stages and head."""
    kind, stages = parse_trainable(trainable)
    if kind == "all":
        return -1
    _require_depths(model, f"trainable={trainable!r}")
    if kind == "head":
        if not model.classifier_layers():
            raise ValueError(
                f"trainable='head' trains the classifier alone, but {model.name} has no head (num_classes=0); "
                f"build it with num_classes > 0, or use 'all' or 'freeze:N'."
            )
        return max(model.layer_depths().values()) - 1
    stage_depths = model.stage_depths()
    if stages > len(stage_depths):
        raise ValueError(
            f"trainable={trainable!r} freezes {stages} stages, but {model.name} has {len(stage_depths)}; "
            f"use freeze:1 to freeze:{len(stage_depths)}, or 'head' for a linear probe."
        )
    return stage_depths[stages - 1]


def set_trainable(model, trainable):
    """Freezes the layers `trainable` names: nothing (`"all"`), all but the head's depth (`"head"`),
    or the stem and the first N stages (`"freeze:N"`; a ViT's stages are its blocks).

    Returns: the number of layers frozen.
    """
    highest = frozen_depth(model, trainable)
    if highest < 0:
        return 0
    depths = model.layer_depths()
    frozen = [layer for layer in model.layers if layer.name in depths and depths[layer.name] <= highest]
    for layer in frozen:
        layer.trainable = False
    return len(frozen)


def rescale_head(model, scale):
    """Multiplies the classifier's fresh weights by `scale` (timm's `head_init_scale`); returns its layer names."""
    names = model.classifier_layers()
    for name in names:
        for variable in model.get_layer(name).weights:
            variable.assign(variable.numpy() * scale)
    return names
