"""Deployment: SavedModel for TF Serving, TFLite in five quantization modes."""

from keras_vits.export.saved_model import (
    SIGNATURES,
    ServingModule,
    export_saved_model,
    next_version,
)
from keras_vits.export.tflite import (
    TFLITE_MODES,
    TFLiteModel,
    convert_tflite,
    delegation_report,
)
