"""TFLite latency of registry models at full size in float32 and the int8 modes (random weights).

    python tools/benchmarks/int8_latency.py [deit_tiny_patch16_224 pvt_v2_b0 ...] [--rounds 5] [--calls 10]
    python tools/benchmarks/int8_latency.py --gemm 197x192x576 197x384x1536 197x768x3072

`--gemm MxKxN` times one Dense layer instead (an (M, K) input times a (K, N)
kernel, the shape of a transformer's projections): float32 against int8 with
int8 input and output, so no QUANTIZE/DEQUANTIZE around it. It is the ceiling of
what int8 can gain on this CPU: a whole model cannot beat its matrix kernels.

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


def alternating_latency(runners, image, rounds, calls):
    """Median over `rounds` of each runner's median ms per call; runners alternate within each round."""
    for runner in runners.values():
        for _ in range(3):
            runner(image)
    times = {key: [] for key in runners}
    for _ in range(rounds):
        for key, runner in runners.items():
            times[key].append(median_ms(runner, image, calls))
    return {key: statistics.median(values) for key, values in times.items()}


def gemm_table(shapes, rounds, calls):
    """float32 against int8-in-int8-out TFLite for one Dense layer of each `MxKxN` shape."""
    from keras_vits.backend import keras

    print("| GEMM M x K x N | float32 ms | int8 ms | int8 speed vs float32 | float32 GFLOP/s |")
    print("|---|---|---|---|---|")
    for shape in shapes:
        m, k, n = (int(v) for v in shape.split("x"))
        # A (1, M, K) "image": the converter's calibration takes 4-D model inputs only.
        inputs = keras.Input((1, m, k), batch_size=1)
        model = keras.Model(inputs, keras.layers.Dense(n)(inputs))
        images = np.random.default_rng(0).normal(size=(16, 1, m, k)).astype("float32")
        runners = {
            "float32": TFLiteModel(convert_tflite(model, "float32")),
            "int8": TFLiteModel(convert_tflite(model, "int8", representative_images=images, int8_io=True)),
        }
        latency = alternating_latency(runners, images[:1], rounds, calls)
        print(
            f"| {shape} | {latency['float32']:.3f} | {latency['int8']:.3f} | "
            f"{latency['float32'] / latency['int8']:.2f}x | {2 * m * k * n / latency['float32'] / 1e6:.1f} |",
            flush=True,
        )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("models", nargs="*", default=["deit_tiny_patch16_224", "pvt_v2_b0"])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=10)
    parser.add_argument("--gemm", nargs="+", default=None, metavar="MxKxN", help="Time single Dense layers instead.")
    args = parser.parse_args(argv)
    if args.gemm:
        return gemm_table(args.gemm, args.rounds, args.calls)
    print("| model | mode | ms / image | speed vs float32 | XNNPACK ops | not delegated |")
    print("|---|---|---|---|---|---|")
    for name in args.models:
        model = keras_vits.create_model(name)
        images = np.random.default_rng(0).normal(size=(16, *model.inputs[0].shape[1:])).astype("float32")
        runners = {mode: TFLiteModel(convert_tflite(model, mode, representative_images=images)) for mode in MODES}
        latency = alternating_latency(runners, images[:1], args.rounds, args.calls)
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
