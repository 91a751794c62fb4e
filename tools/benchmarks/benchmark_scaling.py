"""Time per image against image size: Swin's window attention grows linearly, ViT's global attention faster.

    python tools/benchmarks/benchmark_scaling.py [--models swin_tiny_patch4_window7_224 deit_small_patch16_224]
                                      [--sizes 224 448] [--repeats 7] [--batch-size 1] [--plot curves.png]

Each model is built at each size (random weights: the cost does not depend on
them), compiled as a float32 `tf.function`, warmed up, then timed; sizes and
models alternate inside every repetition so that machine noise hits all of
them alike. Prints medians, the time ratio to the first size, the pixel ratio
and the MAC ratio (`count_macs`), and writes the table as JSON if asked.
"""

# isort: off
import keras_vits  # noqa: F401 - first, so TensorFlow loads with oneDNN on (keras_vits/_onednn.py)
# isort: on

import argparse
import json
import statistics
import time

import numpy as np
import tensorflow as tf


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--models",
        nargs="+",
        default=["swin_tiny_patch4_window7_224", "deit_small_patch16_224"],
        help="Registry names. Default: Swin-T and DeiT-S (same width as ViT-S).",
    )
    parser.add_argument(
        "--sizes", nargs="+", type=int, default=[224, 448], help="Square image sizes. Default: 224 448."
    )
    parser.add_argument("--batch-size", type=int, default=1, help="Images per call. Default: 1.")
    parser.add_argument("--repeats", type=int, default=7, help="Timed repetitions (median reported). Default: 7.")
    parser.add_argument("--calls", type=int, default=3, help="Calls per repetition. Default: 3.")
    parser.add_argument("--json", default=None, help="Also write the table to this JSON file.")
    parser.add_argument("--plot", default=None, help="Also draw ms per image against image size to this PNG.")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    runners, macs = {}, {}
    for name in args.models:
        for size in args.sizes:
            model = keras_vits.create_model(name, image_size=size)
            images = tf.constant(np.random.default_rng(0).normal(size=(args.batch_size, size, size, 3)), tf.float32)
            function = tf.function(lambda x, model=model: model(x, training=False))
            function(images)  # trace and warm up
            function(images)
            runners[name, size] = (function, images)
            macs[name, size] = keras_vits.count_macs(model)
    seconds = {key: [] for key in runners}
    for _ in range(args.repeats):
        for key, (function, images) in runners.items():
            start = time.perf_counter()
            for _ in range(args.calls):
                function(images).numpy()
            seconds[key].append((time.perf_counter() - start) / (args.calls * args.batch_size))
    rows = []
    for name in args.models:
        base = statistics.median(seconds[name, args.sizes[0]])
        for size in args.sizes:
            per_image = statistics.median(seconds[name, size])
            rows.append(
                dict(
                    model=name,
                    size=size,
                    ms_per_image=1000 * per_image,
                    time_ratio=per_image / base,
                    pixel_ratio=(size / args.sizes[0]) ** 2,
                    macs_ratio=macs[name, size] / macs[name, args.sizes[0]],
                    gmacs=macs[name, size] / 1e9,
                )
            )
    print(f"batch {args.batch_size}, float32 tf.function, median of {args.repeats} x {args.calls} calls")
    print("| model | size | ms / image | time vs first size | pixels vs first size | MACs vs first size |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['model']} | {r['size']} | {r['ms_per_image']:.1f} | {r['time_ratio']:.2f}x | "
            f"{r['pixel_ratio']:.2f}x | {r['macs_ratio']:.2f}x ({r['gmacs']:.1f} G) |"
        )
    if args.json:
        with open(args.json, "w") as file:
            json.dump(rows, file, indent=1)
    if args.plot:
        plot(rows, args)


def plot(rows, args):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_time, ax_ratio) = plt.subplots(1, 2, figsize=(11, 4))
    for name in args.models:
        mine = [r for r in rows if r["model"] == name]
        sizes = [r["size"] for r in mine]
        ax_time.plot(sizes, [r["ms_per_image"] for r in mine], "o-", label=name)
        ax_ratio.plot(sizes, [r["time_ratio"] for r in mine], "o-", label=name)
    sizes = args.sizes
    ax_ratio.plot(sizes, [(s / sizes[0]) ** 2 for s in sizes], "k--", label="pixels (linear cost)")
    ax_time.set(xlabel="image size (pixels per side)", ylabel="ms per image", title=f"float32, batch {args.batch_size}")
    ax_ratio.set(xlabel="image size (pixels per side)", ylabel=f"time / time at {sizes[0]}", title="growth")
    for ax in (ax_time, ax_ratio):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(args.plot, dpi=100)


if __name__ == "__main__":
    main()
