"""TFLite conversion in six modes, with builtin ops only, and a LiteRT runner.

Modes (TensorFlow's post-training quantization recipes):
    float32       no quantization;
    float16       float16 weights, float32 compute;
    dynamic_int8  int8 weights, activations quantized on the fly (dynamic range);
    int8          int8 weights and activations, calibrated on representative images;
                  input and output int8 with `int8_io=True`, else float;
    int16x8       int16 activations, int8 weights, calibrated likewise;
    int8_dense    int8 weights and activations in the Dense and Conv layers only, calibrated;
                  attention products, softmax, GELU, LayerNorm and residual adds stay float32,
                  because XNNPACK has no int8 kernels for them and would leave them to slow
                  reference kernels (see docs/DEPLOYMENT.md).

Models are converted with a fixed batch (1 by default): with a dynamic batch
the converter leaves SHAPE/PACK ops before reshapes that XNNPACK cannot take.
"""

import os
import pathlib

import numpy as np
import tensorflow as tf

from keras_vits.backend import keras
from keras_vits.models.base import channels_first_hint, check_image_dtype, check_image_values

TFLITE_MODES = ("float32", "float16", "dynamic_int8", "int8", "int16x8", "int8_dense")
CALIBRATED_MODES = ("int8", "int16x8", "int8_dense")
# Ops int8_dense keeps in float32 (every op XNNPACK cannot run in int8, and the cheap ones around them,
# which would otherwise need a QUANTIZE/DEQUANTIZE pair each).
INT8_DENSE_FLOAT_OPS = (
    "BATCH_MATMUL",
    "SOFTMAX",
    "GELU",
    "RSQRT",
    "ADD",
    "SUB",
    "MUL",
    "MEAN",
    "SQUARED_DIFFERENCE",
    "NEG",
    "DIV",
    "CONCATENATION",
    "STRIDED_SLICE",
    "SPLIT",
    "TRANSPOSE",
    "RESHAPE",
    "AVERAGE_POOL_2D",
    "PAD",
    "GATHER",
)


def _calibration_images(representative_images, shape, batch_size, mode):
    """The calibration images as float32 `(N, H, W, C)`, checked: enough for one batch, the model's size.

    The converter quantizes nothing when its representative dataset yields no batch, and returns
    a float model without a word; so too few images must fail here.
    """
    images = np.asarray(representative_images)
    if images.ndim != 4 or tuple(images.shape[1:]) != tuple(shape[1:]):
        raise ValueError(
            f"representative_images for mode {mode!r} must be (N, {', '.join(map(str, shape[1:]))}) model inputs, "
            f"got shape {images.shape}."
        )
    if not np.issubdtype(images.dtype, np.floating):
        raise TypeError(
            f"representative_images must be float, already normalised model inputs, got dtype {images.dtype}."
        )
    if len(images) < batch_size:
        raise ValueError(
            f"mode {mode!r} calibrates on at least one batch of {batch_size} image(s), got {len(images)}; "
            f"pass representative images (a few hundred is typical)."
        )
    return images.astype(np.float32)


def convert_tflite(
    model: keras.Model,
    mode: str = "float32",
    representative_images: np.ndarray | None = None,
    int8_io: bool = False,
    batch_size: int = 1,
) -> bytes:
    """Converts a keras_vits model to a TFLite flatbuffer with builtin ops only.

    Args:
        model: a Keras model with a static input size.
        mode: one of `TFLITE_MODES`. Defaults to `"float32"`.
        representative_images: float32 `(N, H, W, C)` model inputs (already
            normalised) for calibration; required by `"int8"` and `"int16x8"`.
        int8_io: int8 input and output tensors in `"int8"` mode. Defaults to False.
        batch_size: the fixed batch of the converted model. Defaults to 1.

    Returns: the `.tflite` bytes.

    Raises:
        ValueError: unknown mode, missing calibration images, or an op without a builtin kernel.
    """
    if mode not in TFLITE_MODES:
        raise ValueError(f"mode must be one of {TFLITE_MODES}, got {mode!r}.")
    if mode in CALIBRATED_MODES and representative_images is None:
        raise ValueError(f"mode {mode!r} needs representative_images (float32 model inputs) for calibration.")
    if int8_io and mode != "int8":
        raise ValueError(f"int8_io applies to mode 'int8' only, got mode {mode!r}.")
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int (the converted model's fixed batch), got {batch_size!r}.")
    shape = (batch_size, *model.inputs[0].shape[1:])
    if None in shape[1:]:
        raise ValueError(
            f"TFLite needs a fixed input size; {model.name} takes images of shape {tuple(model.inputs[0].shape)} "
            f"(dynamic_img_size=True). Convert a fixed-size model: model.fixed_size_copy((H, W)) for ViT and DeiT."
        )
    function = tf.function(lambda images: model(images, training=False))
    concrete = function.get_concrete_function(tf.TensorSpec(shape, tf.float32, name="images"))
    # No trackable object: the converter then freezes variables into constants.
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete])
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS]
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    if mode in CALIBRATED_MODES:
        images = _calibration_images(representative_images, shape, batch_size, mode)

        def representative_dataset():
            for start in range(0, len(images) - batch_size + 1, batch_size):
                yield [images[start : start + batch_size]]

        converter.representative_dataset = representative_dataset
        if mode == "int8_dense":
            # TensorFlow's selective quantization: the debugger's denylist leaves those ops in float.
            options = tf.lite.experimental.QuantizationDebugOptions(denylisted_ops=list(INT8_DENSE_FLOAT_OPS))
            try:
                debugger = tf.lite.experimental.QuantizationDebugger(
                    converter=converter, debug_dataset=representative_dataset, debug_options=options
                )
                return debugger.get_nondebug_quantized_model()
            except Exception as error:
                raise ValueError(f"TFLite conversion of {model.name} in mode 'int8_dense' failed: {error}") from error
        if mode == "int8":
            converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        else:
            # 16x8 kernels do not cover every op (LayerNormalization lowers to NEG, which has none);
            # those run as float builtins, still with no Flex or custom op.
            converter.target_spec.supported_ops = [
                tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8,
                tf.lite.OpsSet.TFLITE_BUILTINS,
            ]
        if int8_io:
            converter.inference_input_type = tf.int8
            converter.inference_output_type = tf.int8
    try:
        return converter.convert()
    except Exception as error:  # the converter raises ConverterError and others for unsupported ops
        raise ValueError(f"TFLite conversion of {model.name} in mode {mode!r} failed: {error}") from error


def _flatbuffer(model):
    """The `.tflite` bytes of `model`: flatbuffer bytes (file identifier `TFL3`), or a path to read them from."""
    if isinstance(model, (bytes, bytearray)) and bytes(model[4:8]) == b"TFL3":
        return bytes(model)
    if isinstance(model, (str, bytes, os.PathLike)):
        path = os.fsdecode(os.fspath(model))
        if isinstance(model, bytes) and not os.path.isfile(path):
            raise ValueError("model_content is neither TFLite flatbuffer bytes (no TFL3 identifier) nor a file path.")
        if not os.path.isfile(path):
            raise FileNotFoundError(f"No TFLite model at {path!r}; pass the .tflite bytes or the path of a file.")
        content = pathlib.Path(path).read_bytes()
        if content[4:8] != b"TFL3":
            raise ValueError(f"{path!r} is not a TFLite model (no TFL3 file identifier).")
        return content
    raise TypeError(f"model_content must be .tflite bytes or a path, got {type(model).__name__}.")


class TFLiteModel:
    """Runs a `.tflite` model with the LiteRT interpreter, taking and returning float32.

    Quantized inputs and outputs are scaled with the model's own parameters.

    Args:
        model_content: the flatbuffer bytes, or the path (str, bytes, `os.PathLike`) of a `.tflite` file.
        num_threads: interpreter threads. Defaults to 1.
        use_xnnpack: apply LiteRT's default XNNPACK delegate. Defaults to True.
    """

    def __init__(self, model_content, num_threads=1, use_xnnpack=True):
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        model_content = _flatbuffer(model_content)
        if isinstance(num_threads, bool) or not isinstance(num_threads, (int, np.integer)) or num_threads < 1:
            raise ValueError(f"num_threads must be a positive int, got {num_threads!r}.")
        resolver = OpResolverType.AUTO if use_xnnpack else OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES
        try:
            self.interpreter = Interpreter(
                model_content=model_content, num_threads=num_threads, experimental_op_resolver_type=resolver
            )
        except (ValueError, RuntimeError) as error:
            raise ValueError(f"Cannot load this TFLite model ({error}).") from error
        self.interpreter.allocate_tensors()
        inputs, outputs = self.interpreter.get_input_details(), self.interpreter.get_output_details()
        if len(inputs) != 1:
            raise ValueError(f"TFLiteModel runs models with one image input; this one has {len(inputs)} inputs.")
        self.input, self.output = inputs[0], outputs[0]
        self.num_outputs = len(outputs)

    @property
    def batch_size(self):
        return int(self.input["shape"][0])

    def delegation(self):
        """`{op name: (count, delegated count)}`: which of the model's ops the delegate (XNNPACK) runs.

        LiteRT appends one `DELEGATE` node per delegated partition and keeps the
        original nodes in its node list; a partition's nodes are found by walking
        back from its output tensors to its input tensors.
        """
        self._invoke(np.zeros(self.input["shape"], np.float32))  # delegates are applied at the first invoke
        nodes = self.interpreter._get_ops_details()
        originals = [n for n in nodes if n["op_name"] != "DELEGATE"]
        producer = {int(t): n["index"] for n in originals for t in n["outputs"]}
        delegated = set()
        for partition in (n for n in nodes if n["op_name"] == "DELEGATE"):
            boundary = {int(t) for t in partition["inputs"]}
            pending = [int(t) for t in partition["outputs"]]
            while pending:
                tensor = pending.pop()
                node = producer.get(tensor)
                if node is None or node in delegated or tensor in boundary:
                    continue
                delegated.add(node)
                pending.extend(int(t) for t in nodes[node]["inputs"] if t >= 0)
        report = {}
        for node in originals:
            count, done = report.get(node["op_name"], (0, 0))
            report[node["op_name"]] = (count + 1, done + (node["index"] in delegated))
        return dict(sorted(report.items()))

    def _float_images(self, images):
        """`images` as float32 NumPy, refusing integer pixels, which are not the model's normalised input."""
        if hasattr(images, "dtype"):
            check_image_dtype(images.dtype, "TFLiteModel")
        images = np.asarray(images, np.float32)
        check_image_values(images, "TFLiteModel")
        return images

    def _shape_error(self, images, what_expects):
        """`what_expects` ("predict expects images of shape (N, H, W, C)") got `images`, with an NCHW hint."""
        hint = channels_first_hint(images.shape, (None, *self.input["shape"][1:]))
        return ValueError(f"{what_expects}, got {images.shape}{hint}.")

    def _invoke(self, images):
        """Runs one `(batch_size, H, W, C)` float32 batch (`_float_images`), quantizing it if the input is integer."""
        if images.shape != tuple(self.input["shape"]):
            raise self._shape_error(images, f"TFLite model expects input of shape {tuple(self.input['shape'])}")
        if self.input["dtype"] != np.float32:
            scale, zero_point = self.input["quantization"]
            info = np.iinfo(self.input["dtype"])
            images = np.clip(np.round(images / scale + zero_point), info.min, info.max).astype(self.input["dtype"])
        self.interpreter.set_tensor(self.input["index"], images)
        self.interpreter.invoke()

    def __call__(self, images):
        """`(batch_size, H, W, C)` float32 -> `(batch_size, num_classes)` float32."""
        self._require_one_output()
        return self._output_of(self._float_images(images))

    def _require_one_output(self):
        if self.num_outputs != 1:
            # Returning the first of a features_only model's maps would drop the others unseen.
            raise ValueError(
                f"TFLiteModel runs models with one output (a classifier's logits, one feature map); this one has "
                f"{self.num_outputs}. Read each from `.interpreter` (ai_edge_litert's Interpreter) by name."
            )

    def _output_of(self, images):
        """The float32 output of one batch already read by `_float_images` (each batch is checked once)."""
        self._invoke(images)
        out = self.interpreter.get_tensor(self.output["index"])
        if self.output["dtype"] != np.float32:
            scale, zero_point = self.output["quantization"]
            out = (out.astype(np.float32) - zero_point) * scale
        return out

    def predict(self, images):
        """Runs any number of images (at least one) through the fixed-batch model."""
        images = self._float_images(images)
        batch = self.batch_size
        expected = tuple(int(d) for d in self.input["shape"][1:])
        if images.ndim != len(self.input["shape"]) or tuple(images.shape[1:]) != expected:
            raise self._shape_error(images, f"predict expects images of shape (N, {', '.join(map(str, expected))})")
        if len(images) == 0:
            raise ValueError(f"predict needs at least one image of shape {expected}, got 0 images.")
        if len(images) % batch:
            raise ValueError(f"predict needs a multiple of the model's batch size {batch}, got {len(images)} images.")
        self._require_one_output()
        return np.concatenate([self._output_of(images[i : i + batch]) for i in range(0, len(images), batch)])


def delegation_report(model_content: bytes, num_threads: int = 1) -> dict:
    """`{op name: (count, count delegated to XNNPACK)}` for a `.tflite` model."""
    return TFLiteModel(model_content, num_threads=num_threads).delegation()
