"""Write keras_vits/variant_sizes.json: every registry variant's parameters and MACs at its default arguments.

Each variant is built with `keras_vits.create_model(name)` (random weights, a 1000-class head, its
own image size), and counted with `model.count_params()` and `keras_vits.count_macs(model)`.
`keras-vits info NAME` prints these without building the model (or loading Keras);
tests/test_variants.py checks the table against `estimate_size` for every variant and against
built models for the smallest of each family. Building vit_huge_patch14_224 needs about 3 GB of
memory. Run from the repository root with the project's venv after changing a variant::

    python tools/reference/make_variant_sizes.py [--names NAME ...] [--output FILE]

`--names` rebuilds only those entries and keeps the others of the existing file.
"""

import argparse
import gc
import json
import pathlib
import time

import keras_vits
from keras_vits.backend import keras
from keras_vits.variants import SIZES_FILE, VARIANTS

ABOUT = (
    "Parameters (model.count_params()) and MACs per image (keras_vits.count_macs) of each registry variant built "
    "with keras_vits.create_model(name): default arguments, 1000 classes. Written by "
    "tools/reference/make_variant_sizes.py."
)


def variant_size(name):
    """`{"parameters": int, "macs": int}` of `name` built at its default arguments."""
    model = keras_vits.create_model(name)
    size = {"parameters": int(model.count_params()), "macs": int(keras_vits.count_macs(model))}
    del model
    keras.backend.clear_session()
    gc.collect()
    return size


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--names", nargs="+", default=None, help="Only these variants. Default: every variant.")
    parser.add_argument("--output", type=pathlib.Path, default=SIZES_FILE, help=f"Default: {SIZES_FILE}.")
    args = parser.parse_args(argv)
    unknown = sorted(set(args.names or ()) - set(VARIANTS))
    if unknown:
        parser.error(f"not registry names: {', '.join(unknown)} (see keras-vits list).")
    sizes = {}
    if args.names and args.output.is_file():
        sizes = {name: entry for name, entry in json.loads(args.output.read_text()).items() if name in VARIANTS}
    for name in args.names or VARIANTS:
        start = time.perf_counter()
        sizes[name] = variant_size(name)
        print(f"{name:34s} {sizes[name]['parameters']:>13,d} parameters {sizes[name]['macs']:>17,d} MACs "
              f"({time.perf_counter() - start:.1f} s)", flush=True)  # fmt: skip
    missing = [name for name in VARIANTS if name not in sizes]
    if missing:
        raise SystemExit(f"No size for {', '.join(missing)}: run without --names to build every variant.")
    table = {"_about": ABOUT, **{name: sizes[name] for name in VARIANTS}}
    args.output.write_text(json.dumps(table, indent=1) + "\n")
    print(f"Wrote {args.output} ({len(VARIANTS)} variants).")


if __name__ == "__main__":
    main()
