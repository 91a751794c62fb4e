"""float32 against full-int8 TFLite latency of registry models at their full size (random weights).

    python tools/int8_latency.py [deit_tiny_patch16_224 pvt_v2_b0 ...]

LiteRT, 1 thread, XNNPACK, batch 1, median of 15 calls after 3 warm-up calls;
int8 calibrated on 16 random normal images (latency does not depend on the ranges).
Prints the ops XNNPACK does not take in each mode.
"""

import statistics
import sys
import time

import numpy as np

import keras_vits
from keras_vits.export import TFLiteModel, convert_tflite


def median_ms(runner, image, calls=15):
    for _ in range(3):
        runner(image)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        runner(image)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main(names):
    for name in names:
        model = keras_vits.create_model(name)
        images = np.random.default_rng(0).normal(size=(16, *model.inputs[0].shape[1:])).astype("float32")
        latency = {}
        for mode in ("float32", "int8"):
            runner = TFLiteModel(convert_tflite(model, mode, representative_images=images), num_threads=1)
            latency[mode] = median_ms(runner, images[:1])
            report = runner.delegation()
            missing = {op: count - done for op, (count, done) in report.items() if count != done}
            delegated = sum(done for _, done in report.values())
            total = sum(count for count, _ in report.values())
            print(f"| {name} | {mode} | {latency[mode]:.1f} | {delegated}/{total} | {missing or '-'} |", flush=True)
        print(f"| {name} | int8 speed vs float32 | {latency['float32'] / latency['int8']:.2f}x | | |")


if __name__ == "__main__":
    main(sys.argv[1:] or ["deit_tiny_patch16_224", "pvt_v2_b0"])
