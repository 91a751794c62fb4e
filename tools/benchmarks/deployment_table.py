"""The deployment table: each family trained briefly on Fashion-MNIST, then converted to TFLite in every mode.

    python tools/benchmarks/deployment_table.py [--families vit deit swin pvt_v1 pvt_v2] [--epochs 3]
        [--modes float32 int8 ...] [--test-images 10000] [--threads 1] [--json docs/deployment.json]

For each family: a small model (1 input channel, 32x32: the 28x28 images
zero-padded by 2 pixels) is trained with AdamW for `--epochs` epochs, its Keras
top-1 measured on the test set, then converted in every TFLite mode (full int8
calibrated on 256 training images) and run with the LiteRT interpreter
(XNNPACK, batch 1, `--threads` threads): top-1, top-1 agreement with the Keras
model, max |logit - Keras logit|, file size, median latency over 200 single
images, and the share of ops XNNPACK runs.
"""

import argparse
import json
import statistics
import time

import numpy as np

import keras_vits
from keras_vits.backend import keras
from keras_vits.export import TFLITE_MODES, TFLiteModel, convert_tflite
from keras_vits.training.data import load_fashion_mnist

MEAN, STD = 0.2860, 0.3530  # Fashion-MNIST training-set statistics on [0, 1] pixels

FAMILIES = {
    "vit": lambda: keras_vits.VisionTransformer(
        image_size=32, patch_size=4, in_chans=1, num_classes=10, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2
    ),
    "deit": lambda: keras_vits.DeiT(
        image_size=32, patch_size=4, in_chans=1, num_classes=10, embed_dim=64, depth=4, num_heads=4, mlp_ratio=2
    ),
    "swin": lambda: keras_vits.SwinTransformer(
        image_size=32,
        patch_size=2,
        in_chans=1,
        num_classes=10,
        embed_dim=32,
        depths=(2, 2, 2),
        num_heads=(2, 4, 8),
        window_size=4,
        mlp_ratio=2,
    ),
    "pvt_v1": lambda: keras_vits.PyramidVisionTransformer(
        image_size=32,
        in_chans=1,
        num_classes=10,
        embed_dims=(32, 64, 96, 128),
        depths=(1, 1, 1, 1),
        num_heads=(1, 2, 2, 4),
        mlp_ratios=(2, 2, 2, 2),
        patch_sizes=(2, 2, 2, 2),
        sr_ratios=(4, 2, 1, 1),
    ),
    "pvt_v2": lambda: keras_vits.PyramidVisionTransformerV2(
        image_size=32,
        in_chans=1,
        num_classes=10,
        embed_dims=(32, 64, 96, 128),
        depths=(1, 1, 1, 1),
        num_heads=(1, 2, 2, 4),
        mlp_ratios=(2, 2, 2, 2),
        sr_ratios=(4, 2, 1, 1),
    ),
}


def fashion_mnist_32():
    """Normalised `(N, 32, 32, 1)` float32 images and int labels, train and test."""
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()

    def prepare(x):
        x = np.pad(x, ((0, 0), (2, 2), (2, 2)))[..., None].astype(np.float32)
        return (x / 255.0 - MEAN) / STD

    return (prepare(x_train), y_train.astype(np.int64)), (prepare(x_test), y_test.astype(np.int64))


def train(model, x_train, y_train, epochs, batch_size=128):
    """AdamW with a cosine schedule; DeiT's two heads both learn from the labels (no teacher here)."""
    steps = epochs * (len(x_train) // batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(1e-3, steps)
    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=True)
    heads = len(model.outputs)
    model.compile(
        optimizer=keras.optimizers.AdamW(schedule, weight_decay=0.05), loss=[loss] * heads if heads > 1 else loss
    )
    targets = (y_train,) * heads if heads > 1 else y_train
    model.fit(x_train, targets, batch_size=batch_size, epochs=epochs, verbose=2, shuffle=True)


def latency_ms(runner, image, repeats=200):
    for _ in range(10):
        runner(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        runner(image)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--families", nargs="+", default=list(FAMILIES), choices=list(FAMILIES))
    parser.add_argument("--epochs", type=int, default=3, help="Training epochs per family. Default: 3.")
    parser.add_argument("--test-images", type=int, default=10000, help="Test images evaluated. Default: all 10000.")
    parser.add_argument("--threads", type=int, default=1, help="LiteRT interpreter threads. Default: 1.")
    parser.add_argument(
        "--modes",
        nargs="+",
        default=list(TFLITE_MODES) + ["int8_io"],
        choices=list(TFLITE_MODES) + ["int8_io"],
        help="TFLite modes (int8_io: full int8 with int8 input and output). Default: all. "
        "float32 is always included: speeds are relative to it.",
    )
    parser.add_argument("--json", default=None, help="Also write the rows to this JSON file.")
    args = parser.parse_args(argv)

    (x_train, y_train), (x_test, y_test) = fashion_mnist_32()
    x_test, y_test = x_test[: args.test_images], y_test[: args.test_images]
    calibration = x_train[np.random.default_rng(0).choice(len(x_train), 256, replace=False)]
    rows = []
    for family in args.families:
        keras.utils.set_random_seed(0)
        model = FAMILIES[family]()
        start = time.perf_counter()
        train(model, x_train, y_train, args.epochs)
        train_minutes = (time.perf_counter() - start) / 60
        keras_logits = model.predict(x_test, batch_size=256, verbose=0)
        keras_top1 = float((keras_logits.argmax(-1) == y_test).mean())
        rows.append(dict(family=family, mode="keras", top1=keras_top1, train_minutes=train_minutes))
        print(f"{family}: keras top-1 {100 * keras_top1:.2f}% after {train_minutes:.1f} min", flush=True)
        modes = ["float32"] + [mode for mode in args.modes if mode != "float32"]
        variants = [("int8", True) if mode == "int8_io" else (mode, False) for mode in modes]
        for mode, int8_io in variants:
            content = convert_tflite(model, mode, representative_images=calibration, int8_io=int8_io)
            runner = TFLiteModel(content, num_threads=args.threads)
            logits = runner.predict(x_test)
            report = runner.delegation()
            rows.append(
                dict(
                    family=family,
                    mode=mode + (" (int8 io)" if int8_io else ""),
                    top1=float((logits.argmax(-1) == y_test).mean()),
                    agreement=float((logits.argmax(-1) == keras_logits.argmax(-1)).mean()),
                    max_logit_error=float(np.abs(logits - keras_logits).max()),
                    size_kb=len(content) / 1024,
                    latency_ms=latency_ms(runner, x_test[:1]),
                    delegated=f"{sum(d for _, d in report.values())}/{sum(c for c, _ in report.values())}",
                    not_delegated={op: c - d for op, (c, d) in report.items() if c != d},
                )
            )
            print(json.dumps(rows[-1]), flush=True)
    print(f"\nLiteRT {args.threads} thread(s), XNNPACK, batch 1; {len(y_test)} test images")
    print(
        "| family | mode | top-1 | vs Keras | agreement | max logit error | size KB | latency ms | "
        "speed vs float32 | XNNPACK ops |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for family in args.families:
        family_rows = [r for r in rows if r["family"] == family]
        keras_top1 = family_rows[0]["top1"]
        float_latency = next(r["latency_ms"] for r in family_rows if r["mode"] == "float32")
        print(f"| {family} | Keras | {100 * keras_top1:.2f} | | | | | | | |")
        for r in family_rows[1:]:
            print(
                f"| {family} | {r['mode']} | {100 * r['top1']:.2f} | {100 * (r['top1'] - keras_top1):+.2f} | "
                f"{100 * r['agreement']:.2f}% | {r['max_logit_error']:.3g} | {r['size_kb']:.0f} | "
                f"{r['latency_ms']:.3f} | {float_latency / r['latency_ms']:.2f}x | {r['delegated']} |"
            )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(rows, file, indent=1)


if __name__ == "__main__":
    main()
