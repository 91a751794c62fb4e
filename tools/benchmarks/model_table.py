"""Prints every registered model's trainable parameters and MACs at its default size, for docs/RESULTS.md.

python tools/benchmarks/model_table.py [PATTERN]
"""

import gc
import sys

import numpy as np

import keras_vits
from keras_vits.backend import keras


def main(pattern="*"):
    print("| model | input | trainable parameters | GMACs |")
    print("|---|---|---|---|")
    for name in keras_vits.list_models(pattern):
        model = keras_vits.create_model(name)
        params = sum(int(np.prod(v.shape)) for v in model.trainable_weights)
        size = tuple(model.inputs[0].shape[1:3])
        print(f"| {name} | {size[0]}x{size[1]} | {params:,} | {keras_vits.count_macs(model) / 1e9:.2f} |", flush=True)
        del model
        keras.backend.clear_session()
        gc.collect()


if __name__ == "__main__":
    main(*sys.argv[1:])
