"""The transfer table: does a pretrained checkpoint help on a small labelled set, and does layer decay?

    python tools/benchmarks/transfer_table.py [--work runs/transfer] [--out docs/benchmarks/transfer.json]
    python tools/benchmarks/transfer_table.py --evaluate-only   # the json again from the saved .keras files

No pretrained checkpoint can be downloaded here, so the script makes one: a small ViT (28x28,
patch 7, 4 blocks, width 64) trained on Fashion-MNIST's classes 0-4 (T-shirt, trouser, pullover,
dress, coat). The transfer task is classes 5-9 (sandal, shirt, sneaker, bag, ankle boot) with 1%
and 10% of their training labels (a class-balanced sample per seed), scored on all 5000 of their
test images. Rows: from scratch; full fine-tuning; fine-tuning with layer decay; a linear probe
(the head alone). Every fine-tuned model starts from the pretrained weights with a fresh head
(the classes are new). Every score comes from the saved `.keras` file, loaded afresh.
"""

import argparse
import json
import math
import pathlib
import platform
import statistics
import time

import numpy as np

import keras_vits
from keras_vits.backend import keras, load_keras_file
from keras_vits.finetune import layer_decay_optimizer, set_trainable
from keras_vits.training.data import load_fashion_mnist
from keras_vits.training.loop import copy_weights_from_keras_file

MEAN, STD = 0.2860, 0.3530
MODEL = dict(image_size=28, patch_size=7, embed_dim=64, depth=4, num_heads=4, in_chans=1, num_classes=5)
PRETRAIN = dict(classes=(0, 1, 2, 3, 4), epochs=4, batch_size=128, learning_rate=2e-3, seed=0)
TARGET_CLASSES = (5, 6, 7, 8, 9)
LABEL_FRACTIONS = (0.01, 0.1)
SEEDS = (0, 1, 2)
#: `{labels fraction: (epochs, batch size)}`: 400 steps at 1%, 470 at 10%.
SCHEDULE = {0.01: (40, 32), 0.1: (10, 64)}
#: `{method: (initial weights, trainable, layer decay, peak learning rate)}`; one rate for every method that
#: trains all weights, a larger one for the head alone (nothing below it moves).
METHODS = {
    "scratch": (None, "all", 1.0, 1e-3),
    "fine_tune": ("pretrained", "all", 1.0, 1e-3),
    "fine_tune_layer_decay": ("pretrained", "all", 0.65, 1e-3),
    "linear_probe": ("pretrained", "head", 1.0, 1e-2),
}
WEIGHT_DECAY = 0.05


def normalise(images):
    return ((images.astype("float32") / 255.0 - MEAN) / STD)[..., None]


def subset(images, labels, classes):
    """The images of `classes`, relabelled 0..len(classes)-1 in that order."""
    keep = np.isin(labels, classes)
    relabel = {c: i for i, c in enumerate(classes)}
    return normalise(images[keep]), np.array([relabel[c] for c in labels[keep]], dtype="int32")


def labelled_sample(labels, fraction, seed):
    """Indices of a class-balanced `fraction` of `labels`, drawn by `seed`."""
    rng = np.random.default_rng(seed)
    picked = [
        rng.choice(np.flatnonzero(labels == c), size=max(1, round(fraction * np.sum(labels == c))), replace=False)
        for c in np.unique(labels)
    ]
    return np.sort(np.concatenate(picked))


def schedule(peak, steps):
    warmup = max(1, steps // 10)
    return keras.optimizers.schedules.CosineDecay(
        0.0, decay_steps=max(1, steps - warmup), alpha=0.01, warmup_target=peak, warmup_steps=warmup
    )


def train_one(model, images, labels, *, epochs, batch_size, learning_rate, layer_decay, seed):
    """Trains `model` in place with AdamW (warm-up and cosine); returns the training seconds."""
    steps = epochs * math.ceil(len(images) / batch_size)
    optimizer = layer_decay_optimizer(
        model, schedule(learning_rate, steps), layer_decay, weight_decay=WEIGHT_DECAY, global_clipnorm=1.0
    )
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    keras.utils.set_random_seed(seed)
    started = time.perf_counter()
    model.fit(images, labels, epochs=epochs, batch_size=batch_size, shuffle=True, verbose=0)
    return time.perf_counter() - started


def top1(path, images, labels):
    """Top-1 of the `.keras` file at `path`, loaded afresh (safe mode)."""
    model = load_keras_file(path)
    logits = model.predict(images, batch_size=500, verbose=0)
    return float(np.mean(np.argmax(logits, -1) == labels))


def pretrain(work, data):
    path = work / "pretrained.keras"
    images, labels = subset(*data[0], PRETRAIN["classes"])
    meta_path = work / "pretrained.json"
    if not path.exists():
        keras.utils.set_random_seed(PRETRAIN["seed"])
        model = keras_vits.VisionTransformer(**MODEL)
        seconds = train_one(
            model,
            images,
            labels,
            epochs=PRETRAIN["epochs"],
            batch_size=PRETRAIN["batch_size"],
            learning_rate=PRETRAIN["learning_rate"],
            layer_decay=1.0,
            seed=PRETRAIN["seed"],
        )
        model.save(path)
        meta_path.write_text(json.dumps({"train_seconds": seconds, "train_images": len(images)}))
    return path


def transfer_model(method, pretrained_path, seed):
    """The model a row starts from: random, or the pretrained weights with a fresh head."""
    initial, trainable, _, _ = METHODS[method]
    keras.utils.set_random_seed(1000 + seed)
    model = keras_vits.VisionTransformer(**MODEL)
    if initial == "pretrained":
        fresh_head = {name: [w.numpy() for w in model.get_layer(name).weights] for name in model.classifier_layers()}
        copy_weights_from_keras_file(model, pretrained_path)
        for name, values in fresh_head.items():  # the target classes are new: the head starts fresh
            model.get_layer(name).set_weights(values)
    set_trainable(model, trainable)
    return model


def run_rows(work, pretrained_path, data):
    train_images, train_labels = subset(*data[0], TARGET_CLASSES)
    for fraction in LABEL_FRACTIONS:
        epochs, batch_size = SCHEDULE[fraction]
        for seed in SEEDS:
            picked = labelled_sample(train_labels, fraction, seed)
            for method, (_, _, layer_decay, learning_rate) in METHODS.items():
                path = work / f"{method}_{fraction:g}_seed{seed}.keras"
                if path.exists():
                    continue
                model = transfer_model(method, pretrained_path, seed)
                seconds = train_one(
                    model,
                    train_images[picked],
                    train_labels[picked],
                    epochs=epochs,
                    batch_size=batch_size,
                    learning_rate=learning_rate,
                    layer_decay=layer_decay,
                    seed=seed,
                )
                model.save(path)
                meta = {"train_seconds": seconds, "epochs": epochs, "train_images": len(picked)}
                path.with_suffix(".json").write_text(json.dumps(meta))
                print(f"{method:24s} {fraction:5g} seed {seed}: {seconds:.0f} s", flush=True)


def summary(rows):
    """Mean, sd and standard error of top-1 per method and fraction."""
    groups = {}
    for row in rows:
        groups.setdefault((row["method"], row["labels_fraction"]), []).append(row["top1"])
    out = []
    for (method, fraction), values in groups.items():
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        out.append(
            {
                "method": method,
                "labels_fraction": fraction,
                "seeds": len(values),
                "mean": statistics.fmean(values),
                "sd": sd,
                "se": sd / math.sqrt(len(values)),
            }
        )
    return out


def evaluate_all(work, data):
    """The json: every `.keras` file scored afresh on the test images of its classes."""
    pretrain_images, pretrain_labels = subset(*data[1], PRETRAIN["classes"])
    test_images, test_labels = subset(*data[1], TARGET_CLASSES)
    pretrained_meta = json.loads((work / "pretrained.json").read_text())
    rows = []
    for fraction in LABEL_FRACTIONS:
        for seed in SEEDS:
            for method in METHODS:
                path = work / f"{method}_{fraction:g}_seed{seed}.keras"
                meta = json.loads(path.with_suffix(".json").read_text())
                rows.append(
                    {
                        "method": method,
                        "labels_fraction": fraction,
                        "seed": seed,
                        "top1": top1(path, test_images, test_labels),
                        "epochs": meta["epochs"],
                        "train_seconds": round(meta["train_seconds"], 1),
                        "train_images": meta["train_images"],
                    }
                )
    return {
        "pretrain": {
            "classes": list(PRETRAIN["classes"]),
            "model": dict(MODEL),
            "train_images": pretrained_meta["train_images"],
            "epochs": PRETRAIN["epochs"],
            "batch_size": PRETRAIN["batch_size"],
            "peak_learning_rate": PRETRAIN["learning_rate"],
            "top1": top1(work / "pretrained.keras", pretrain_images, pretrain_labels),
            "train_seconds": round(pretrained_meta["train_seconds"], 1),
        },
        "target": {
            "classes": list(TARGET_CLASSES),
            "labels_fractions": list(LABEL_FRACTIONS),
            "test_images": len(test_labels),
            "schedule": {f"{k:g}": {"epochs": e, "batch_size": b} for k, (e, b) in SCHEDULE.items()},
            "methods": {
                name: {"initial_weights": w, "trainable": t, "layer_decay": d, "peak_learning_rate": lr}
                for name, (w, t, d, lr) in METHODS.items()
            },
            "optimizer": f"AdamW, weight decay {WEIGHT_DECAY}, warm-up 10% then cosine, clip norm 1, no augmentation",
        },
        "summary": summary(rows),
        "rows": rows,
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
            "keras": keras.__version__,
            "note": "2 CPU cores shared with other jobs during the run: train_seconds are not benchmarks.",
        },
    }


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--work", default="runs/transfer", help="Folder for the .keras files. Default: runs/transfer.")
    parser.add_argument("--out", default="docs/benchmarks/transfer.json")
    parser.add_argument("--evaluate-only", action="store_true", help="Only score the saved .keras files.")
    args = parser.parse_args(argv)
    work = pathlib.Path(args.work)
    work.mkdir(parents=True, exist_ok=True)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist()
    data = ((x_train, y_train), (x_test, y_test))
    if not args.evaluate_only:
        pretrained_path = pretrain(work, data)
        run_rows(work, pretrained_path, data)
    table = evaluate_all(work, data)
    pathlib.Path(args.out).write_text(json.dumps(table, indent=1) + "\n")
    for row in sorted(table["summary"], key=lambda r: (r["labels_fraction"], r["method"])):
        print(f"{row['labels_fraction']:5g} {row['method']:24s} {100 * row['mean']:.2f} +- {100 * row['se']:.2f}")


if __name__ == "__main__":
    main()
