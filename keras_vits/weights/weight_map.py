"""Declarative maps from timm `state_dict` keys to Keras weights, one per family.

Keras layers are named after timm's module paths with `.` replaced by `_`
(`blocks.3.attn.qkv.weight` -> layer `blocks_3_attn_qkv`, weight `kernel`), so
a family's map only states what that rule does not cover: renamed modules,
buffers to skip, weights to resample, and which layers form the head.
"""

import dataclasses
import re


@dataclasses.dataclass(frozen=True)
class WeightMap:
    """How one family's timm checkpoints map onto its Keras layers.

    Attributes:
        family: family name used in messages (`"vit"`, `"swin"`, ...).
        renames: `(regex, replacement)` pairs applied in order to each timm key
            before the name rule.
        ignore: regexes of checkpoint keys that are not weights here (buffers
            that the model recomputes).
        resamplers: `{regex: fn(value, layer) -> value}` for checkpoint keys whose
            shape depends on the input or window size.
        head_modules: timm module paths of the classifier (`"head"`, `"head.fc"`);
            dropped from the checkpoint when the model's `num_classes` differs.
        unused_by_features: regexes of checkpoint keys that a `features_only`
            model has no place for (final norm, head).
    """

    family: str
    renames: tuple = ()
    ignore: tuple = ()
    resamplers: dict = dataclasses.field(default_factory=dict)
    head_modules: tuple = ("head",)
    unused_by_features: tuple = ()

    def keras_layer_and_param(self, timm_key):
        """`"blocks.0.attn.qkv.weight"` -> `("blocks_0_attn_qkv", "weight")`; `"cls_token"` -> `("cls_token", "")`."""
        for pattern, replacement in self.renames:
            timm_key = re.sub(pattern, replacement, timm_key)
        module, _, param = timm_key.rpartition(".")
        if not module:
            return param, ""
        return module.replace(".", "_"), param

    def is_ignored(self, timm_key):
        return any(re.search(pattern, timm_key) for pattern in self.ignore)

    def resampler(self, timm_key):
        """The resampling function for `timm_key`, or None."""
        for pattern, function in self.resamplers.items():
            if re.search(pattern, timm_key):
                return function
        return None

    @property
    def head_layers(self):
        """Keras layer names of the classifier."""
        return tuple(self.keras_layer_and_param(f"{module}.weight")[0] for module in self.head_modules)


#: Keys that identify a family's checkpoint, for the "wrong family" message.
FAMILY_SIGNATURES = {
    "vit": r"^blocks\.\d+\.attn\.qkv\.weight$",
    "swin": r"^layers\.\d+\.blocks\.\d+\.attn\.relative_position_bias_table$",
    "pvt_v2": r"^stages\.\d+\.blocks\.\d+\.attn\.(q|kv)\.weight$",
    "pvt_v1": r"^pvt\.encoder\.block\.\d+\.\d+\.attention\.",
    "convnext": r"^stages\.\d+\.blocks\.\d+\.conv_dw\.weight$",
    "resnet": r"^layer\d+\.\d+\.conv1\.weight$",
}


def guess_family(keys):
    """The families whose signature keys appear in `keys`."""
    return [family for family, pattern in FAMILY_SIGNATURES.items() if any(re.search(pattern, k) for k in keys)]


#: `(side, key regex, hint)`: added to a checkpoint's misfit message when a key on that side
#: (`"unexpected"` in the checkpoint, `"missing"` from it) matches.
CHECKPOINT_HINTS = (
    (
        "unexpected",
        r"^(dist_token|head_dist\.)",
        "This is a distilled DeiT checkpoint (it holds dist_token and head_dist): use the `_distilled_` "
        "model (keras_vits.DeiT, e.g. create_model('deit_tiny_distilled_patch16_224')).",
    ),
    (
        "missing",
        r"^(dist_token|head_dist)/",
        "This is a checkpoint without distillation (no dist_token, no head_dist): use the model without "
        "`_distilled_` (keras_vits.VisionTransformer, e.g. create_model('deit_tiny_patch16_224')).",
    ),
)
