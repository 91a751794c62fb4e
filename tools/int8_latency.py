"""TFLite latency of registry models at full size in float32 and the int8 modes (random weights).

    python tools/int8_latency.py [deit_tiny_patch16_224 pvt_v2_b0 ...] [--rounds 5] [--calls 10]

LiteRT, 1 thread, XNNPACK, batch 1. The modes of one model alternate: each round
times every mode (median of `calls` after warm-up), and the table gives the median
over rounds, so machine noise hits all modes alike. Calibration: 16 random normal
images (latency does not depend on the ranges). Prints the ops XNNPACK leaves out.
"""

import argparse
import statistics
import time

import numpy as np

import keras_vits
from keras_vits.export import TFLiteModel, convert_tflite

MODES = ("float32", "dynamic_int8", "int8", "int8_dense")


def median_ms(runner, image, calls):
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        runner(image)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=["deit_tiny_patch16_224", "pvt_v2_b0"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    args = parser.parse_args(argv)
    print("| model | mode | ms / image | speed vs float32 | XNNPACK ops | not delegated |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        model = keras_vits.create_model(name)
        images = np.random.default_rng(0).normal(size=(16, *model.inputs[0].shape[1:])).astype("float32")
        runners = {mode: TFLiteModel(convert_tflite(model, mode, representative_images=images)) for mode in MODES}
        for runner in runners.values():
            for _ in range(3):
                runner(images[:1])
        rounds = {mode: [] for mode in MODES}
        for _ in range(args.rounds):
            for mode, runner in runners.items():
                rounds[mode].append(median_ms(runner, images[:1], args.calls))
        latency = {mode: statistics.median(values) for mode, values in rounds.items()}
        for mode, runner in runners.items():
            report = runner.delegation()
            missing = {op: count - done for op, (count, done) in report.items() if count != done}
            delegated = sum(done for _, done in report.values())
            total = sum(count for count, _ in report.values())
            print(
                f"| {name} | {mode} | {latency[mode]:.1f} | {latency['float32'] / latency[mode]:.2f}x | "
                f"{delegated}/{total} | {missing or '-'} |",
                flush=True,
            )


if __name__ == "__main__":
    main()
