"""Full-int8 TFLite accuracy of a tiny ViT on Fashion-MNIST: post-training quantization against QAT.

    TF_CPP_MIN_LOG_LEVEL=3 python tools/benchmarks/qat_vs_ptq.py [--epochs 2] [--qat-epochs 1] [--json out.json]

Runs under tf-keras (the script sets TF_USE_LEGACY_KERAS=1 before TensorFlow
is imported; tfmot needs it). Steps, all with seed 0:
    1. train a float ViT (32x32 input, patch 8, width 64, depth 4) for `--epochs`;
    2. PTQ: `convert_tflite(model, "int8")` calibrated on `--calibration` training images;
    3. QAT: `quantize_aware` (ranges calibrated on the same images), fine-tune
       `--qat-epochs` at `--qat-lr`, then `convert_qat_tflite`;
    4. control: the float model fine-tuned as long at the same rate, then PTQ, so
       that QAT is not credited with the extra epoch.
Reports top-1 on the 10k test images: float (Keras), the int8 TFLite models
(LiteRT, batch 1, float input and output), and the QAT model in Keras (fake quantization).
Images are zero-padded 28 -> 32 and normalised as (x / 255 - 0.5) / 0.25.
"""

import argparse
import json
import os
import pathlib
import sys
import time

import numpy as np

# Before TensorFlow is imported (by keras_vits): tfmot needs tf-keras.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[2]))

import keras_vits  # noqa: E402
from keras_vits.backend import keras  # noqa: E402
from keras_vits.export.qat import convert_qat_tflite, quantize_aware  # noqa: E402
from keras_vits.export.tflite import TFLiteModel, convert_tflite  # noqa: E402
from keras_vits.training.data import load_fashion_mnist  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="Float training epochs. Default: 2.")
    parser.add_argument("--qat-epochs", type=int, default=1, help="QAT (and control) fine-tuning epochs. Default: 1.")
    parser.add_argument("--batch-size", type=int, default=128, help="Default: 128.")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam rate of float training. Default: 1e-3.")
    parser.add_argument("--qat-lr", type=float, default=1e-4, help="Adam rate of QAT and control. Default: 1e-4.")
    parser.add_argument(
        "--calibration", type=int, default=256, help="Training images for int8 calibration. Default: 256."
    )
    parser.add_argument("--no-control", action="store_true", help="Skip the float fine-tuning control.")
    parser.add_argument("--json", default=None, help="Also write the results to this JSON file.")
    return parser.parse_args(argv)


def prepare(images):
    """`(N, 28, 28)` uint8 -> `(N, 32, 32, 1)` float32, zero-padded then normalised."""
    images = np.pad(images, ((0, 0), (2, 2), (2, 2)))[..., None]
    return ((images.astype(np.float32) / 255.0 - 0.5) / 0.25).astype(np.float32)


def compile_for_training(model, lr):
    model.compile(
        keras.optimizers.Adam(lr),
        keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        metrics=["accuracy"],
    )


def keras_top1(model, images, labels):
    return float(np.mean(np.argmax(model.predict(images, batch_size=500, verbose=0), -1) == labels))


def tflite_top1(content, images, labels):
    return float(np.mean(np.argmax(TFLiteModel(content).predict(images), -1) == labels))


def main(argv=None):
    args = parse_args(argv)
    keras.utils.set_random_seed(0)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    x_train, x_test = prepare(x_train), prepare(x_test)
    calibration = x_train[np.random.default_rng(0).choice(len(x_train), args.calibration, replace=False)]
    results, seconds = {}, {}

    def timed(name, function, *a, **kw):
        start = time.perf_counter()
        out = function(*a, **kw)
        seconds[name] = round(time.perf_counter() - start, 1)
        print(f"  {name}: {seconds[name]} s", flush=True)
        return out

    model = keras_vits.VisionTransformer(
        image_size=32, patch_size=8, in_chans=1, num_classes=10, embed_dim=64, depth=4, num_heads=4
    )
    compile_for_training(model, args.lr)
    timed("float training", model.fit, x_train, y_train, batch_size=args.batch_size, epochs=args.epochs, verbose=2)
    results["float"] = keras_top1(model, x_test, y_test)
    weights = model.get_weights()
    results["ptq_int8"] = tflite_top1(
        timed("ptq conversion", convert_tflite, model, "int8", calibration), x_test, y_test
    )
    print(f"float {results['float']:.4f}  ptq int8 {results['ptq_int8']:.4f}", flush=True)

    qat_model = quantize_aware(model, calibration_images=calibration)
    results["qat_keras_before"] = keras_top1(qat_model, x_test, y_test)
    compile_for_training(qat_model, args.qat_lr)
    timed(
        "qat training", qat_model.fit, x_train, y_train, batch_size=args.batch_size, epochs=args.qat_epochs, verbose=2
    )
    results["qat_keras"] = keras_top1(qat_model, x_test, y_test)
    results["qat_int8"] = tflite_top1(
        timed("qat conversion", convert_qat_tflite, qat_model, calibration), x_test, y_test
    )
    print(
        f"qat keras {results['qat_keras_before']:.4f} -> {results['qat_keras']:.4f}  qat int8 {results['qat_int8']:.4f}"
    )

    if not args.no_control:
        model.set_weights(weights)
        compile_for_training(model, args.qat_lr)
        timed(
            "control training",
            model.fit,
            x_train,
            y_train,
            batch_size=args.batch_size,
            epochs=args.qat_epochs,
            verbose=2,
        )
        results["control_float"] = keras_top1(model, x_test, y_test)
        results["control_ptq_int8"] = tflite_top1(convert_tflite(model, "int8", calibration), x_test, y_test)
        print(f"control float {results['control_float']:.4f}  control ptq int8 {results['control_ptq_int8']:.4f}")

    print("\ntop-1 on the 10k test images")
    for name, value in results.items():
        print(f"  {name:<18} {value:.4f}")
    if args.json:
        pathlib.Path(args.json).write_text(
            json.dumps({"args": vars(args), "top1": results, "seconds": seconds}, indent=2)
        )


if __name__ == "__main__":
    main()
