"""The classifier head every family ends with: dropout, then a float32 Dense."""

from keras_vits.backend import keras
from keras_vits.layers.helpers import dense_initializer


def classifier_head(features, num_classes, drop_rate=0.0, name="head", drop_name=None):
    """Dropout then a linear classifier; `num_classes=0` returns `features` unchanged.

    The Dense computes in float32 under mixed precision, so logits are float32.

    Args:
        features: `(B, C)` pooled features.
        num_classes: output classes; 0 adds no layer.
        drop_rate: dropout before the classifier. Defaults to 0.
        name: name of the Dense (timm's module path: `head`, `head_dist`, `head_fc`). Defaults to `"head"`.
        drop_name: name of the Dropout. Defaults to `{name}_drop`.

    Returns: `(B, num_classes)` logits, or `features` when `num_classes=0`.
    """
    if not num_classes:
        return features
    if drop_rate:
        features = keras.layers.Dropout(drop_rate, name=drop_name or f"{name}_drop")(features)
    return keras.layers.Dense(num_classes, kernel_initializer=dense_initializer(), dtype="float32", name=name)(features)
