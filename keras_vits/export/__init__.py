"""Deployment: SavedModel for TF Serving, TFLite in five quantization modes, QAT (under tf-keras)."""

from keras_vits.backend import require_tensorflow_backend

require_tensorflow_backend("keras_vits.export (export_saved_model, convert_tflite, quantize_aware)")

from keras_vits.export.qat import convert_qat_tflite, quantize_aware, transfer_weights
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
