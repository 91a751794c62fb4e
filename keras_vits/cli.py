"""The `keras-vits` command line: list models, describe, export, train, evaluate, run the demo.

keras-vits list 'deit_*'
keras-vits info vit_small_patch16_224 --image-size 384
keras-vits export deit_small_patch16_224 --weights model.safetensors --format saved_model
keras-vits demo
keras-vits train --recipe fmnist_deit_hard --strategy mirrored
keras-vits evaluate runs/fmnist_deit_hard/model.keras
"""

import argparse
import dis
import errno
import importlib
import json
import os
import pathlib
import sys

from keras_vits._cli_startup import VERBOSE_FLAG, is_the_command_line, quiet_tensorflow_python_logs


class LibraryChoices:
    """A flag's choices: the library's own tuple `module_name.name`, read when argparse first needs it.

    The modules that define the training and export choices import TensorFlow, so reading them
    lazily keeps the parser (`--help`, `list`, `info`) from loading those modules. Where a module
    cannot load (no TensorFlow), every value passes here and the command itself says what to install.
    """

    def __init__(self, module_name, name):
        self.module_name, self.name = module_name, name

    def load(self):
        """The library's tuple, or None where its module cannot load."""
        try:
            return getattr(importlib.import_module(self.module_name), self.name)
        except (ImportError, RuntimeError):
            return None

    def __iter__(self):
        return iter(self.load() or ())

    def __contains__(self, value):
        choices = self.load()
        return choices is None or value in choices


KERAS_MODES = LibraryChoices("keras_vits.benchmark", "KERAS_MODES")
COMPILE_MODES = LibraryChoices("keras_vits.compile_modes", "COMPILE_MODES")
DISTILLATION_MODES = LibraryChoices("keras_vits.distillation", "DISTILLATION_MODES")
TFLITE_MODES = LibraryChoices("keras_vits.export.tflite", "TFLITE_MODES")
CALIBRATED_MODES = LibraryChoices("keras_vits.export.tflite", "CALIBRATED_MODES")
PRECISIONS = LibraryChoices("keras_vits.training.recipes", "PRECISIONS")
STRATEGIES = LibraryChoices("keras_vits.training.strategies", "STRATEGIES")


def _int_at_least(minimum):
    """An argparse type: an int >= `minimum`; anything else is a usage error (exit 2)."""

    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"expected an int >= {minimum}, got {value}")
        return value

    parse.__name__ = f"int >= {minimum}"
    return parse


POSITIVE_INT, NON_NEGATIVE_INT = _int_at_least(1), _int_at_least(0)

#: The demo's timm fixture (a 2-block ViT and timm's logits for it), shipped as package data.
DEMO_DATA = pathlib.Path(__file__).resolve().parent / "demo_data"


def _cmd_list(args):
    from keras_vits.variants import list_models

    names = list_models(args.pattern)
    if not names:
        print(f"No model matches {args.pattern!r}.", file=sys.stderr)
        return 1
    print("\n".join(names))
    return 0


def _info_builds_the_model(args):
    """True for `info` with `--summary`, `--image-size` or another head than 1000 classes.

    Otherwise the model is the variant at its defaults, whose sizes `keras_vits/variant_sizes.json` holds.
    """
    from keras_vits.variants import DEFAULT_NUM_CLASSES

    return args.summary or args.image_size is not None or args.num_classes != DEFAULT_NUM_CLASSES


def _cmd_info(args):
    from keras_vits import variants

    pretrained = dict(variants.get_variant_data(args.name).pretrained)
    if _info_builds_the_model(args):
        import keras_vits

        model = keras_vits.create_model(args.name, num_classes=args.num_classes, image_size=args.image_size)
        if args.summary:
            model.summary(line_length=110)
        input_shape, parameters, macs = tuple(model.inputs[0].shape), model.count_params(), keras_vits.count_macs(model)
    else:
        size = variants.default_sizes()[args.name]
        input_shape, parameters, macs = variants.default_input_shape(args.name), size["parameters"], size["macs"]
    print(f"model:            {args.name}")
    print(f"input:            {input_shape}")
    print(f"parameters:       {parameters:,}")
    print(f"MACs per image:   {macs / 1e9:.2f} G")
    print(f"pretrained:       {json.dumps(pretrained)}")
    return 0


DEMO_TOLERANCE = 1e-4


def _cmd_demo(args):
    """Builds a small ViT, loads a timm checkpoint shipped with the package, and checks timm's logits."""
    import numpy as np
    from safetensors.numpy import load_file

    import keras_vits

    fixtures = pathlib.Path(args.fixtures)
    cases_file = fixtures / "cases.json"
    if not cases_file.is_file():
        raise FileNotFoundError(f"No demo fixtures at {fixtures} (expected cases.json there).")
    cases = json.loads(cases_file.read_text())
    if args.case not in cases:
        raise ValueError(f"--case {args.case!r} is not in {cases_file}; it holds {sorted(cases)}.")
    case = cases[args.case]
    model = keras_vits.VisionTransformer(name=f"demo_{args.case}", **case["config"])
    keras_vits.load_timm_weights(model, fixtures / case["checkpoint"])
    model.summary(line_length=110)
    io = load_file(str(fixtures / f"{args.case}_io.safetensors"))
    logits = model.predict(io["images"], verbose=0)
    probs = np.exp(logits - logits.max(-1, keepdims=True))
    probs /= probs.sum(-1, keepdims=True)
    print(f"\ncheckpoint:       {fixtures / case['checkpoint']} (timm {case['timm_model'].split('(')[0]})")
    print(f"parameters:       {model.count_params():,}")
    print(f"MACs per image:   {keras_vits.count_macs(model):,}")
    for index, row in enumerate(probs):
        top = np.argsort(row)[::-1][:3]
        ranked = ", ".join(f"class {c}: {row[c]:.3f}" for c in top)
        print(f"image {index}: top-3 {ranked}")
    error = float(np.abs(logits - io["logits"]).max())
    print(f"max |logits - timm logits| = {error:.2e}")
    if error > DEMO_TOLERANCE:
        print(f"keras-vits demo: error: logits differ from timm's by {error:.2e} > {DEMO_TOLERANCE}.", file=sys.stderr)
        return 1
    return 0


def _trained_model(args):
    """A `.keras` model (safe mode) with the normalisation and labels its training run wrote beside it."""
    from keras_vits.backend import load_keras_file
    from keras_vits.training import run_folder

    path = pathlib.Path(args.name)
    model = load_keras_file(path)
    recipe, labels = run_folder.run_metadata(path)
    if args.mean and args.std:
        cfg = {"mean": args.mean, "std": args.std}
    elif recipe is not None:
        cfg = {"mean": recipe["mean"], "std": recipe["std"]}
    else:
        raise ValueError(
            f"No {run_folder.RECIPE_FILE} beside {path}: pass --mean and --std (per channel, on [0, 1] pixels)."
        )
    num_classes = int(model.outputs[0].shape[-1])
    return model, cfg, labels or [f"class_{i}" for i in range(num_classes)]


def _check_writable(folder):
    """Creates `folder` and checks that a file can be written there; raises a clear error if not."""
    folder = pathlib.Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as error:
        raise ValueError(f"Cannot write to the output folder {folder}: {error.strerror or error}.") from error


#: `export --weights random`: a registry model with random weights, asked for by name.
RANDOM_WEIGHTS = "random"


def _registry_weights(args):
    """What `create_model(weights=...)` takes for `export NAME`: refuses to export random weights unasked."""
    import keras_vits

    hub_id = keras_vits.get_pretrained_cfg(args.name).get("hf_hub_id")
    if args.weights is None:
        example = f" (e.g. --weights {hub_id})" if hub_id else ""
        raise ValueError(
            f"export {args.name} needs --weights: a .safetensors file or a Hub id{example}; "
            f"--weights {RANDOM_WEIGHTS} exports randomly initialised weights, for trying the export only."
        )
    return None if args.weights == RANDOM_WEIGHTS else args.weights


def _cmd_export(args):
    """Writes a SavedModel for TF Serving or a TFLite file."""
    import numpy as np

    import keras_vits
    from keras_vits._io import atomic_write_bytes
    from keras_vits.export import convert_tflite, export_saved_model

    if args.name.endswith(".keras"):
        model, cfg, labels = _trained_model(args)
        args.export_name = args.export_name or pathlib.Path(args.name).parent.name
    else:
        model = keras_vits.create_model(
            args.name, weights=_registry_weights(args), num_classes=args.num_classes, image_size=args.image_size
        )
        cfg = keras_vits.get_pretrained_cfg(args.name)
        labels = [f"class_{i}" for i in range(int(model.outputs[0].shape[-1]))]
    if args.labels:
        from keras_vits.training.run_folder import read_labels

        labels = read_labels(args.labels)
    if args.format == "saved_model":
        _check_writable(args.output)
        limit = {} if args.max_image_pixels is None else {"max_image_pixels": args.max_image_pixels}
        path = export_saved_model(
            model,
            labels,
            cfg["mean"],
            cfg["std"],
            base_dir=args.output,
            name=args.export_name,
            version=args.version,
            **limit,
        )
        print(f"SavedModel written to {path} (signatures: serving_default, serving_uint8, serving_bytes)")
        return 0
    representative = None
    if args.mode in CALIBRATED_MODES:
        if not args.calibration:
            print(f"keras-vits export: error: --mode {args.mode} needs --calibration IMAGES.npy", file=sys.stderr)
            return 2
        representative = np.load(args.calibration, allow_pickle=False)
    path = pathlib.Path(args.output) / f"{pathlib.Path(args.export_name or args.name).stem}_{args.mode}.tflite"
    _check_writable(path.parent)  # before the conversion, which can take minutes
    content = convert_tflite(model, args.mode, representative_images=representative, int8_io=args.int8_io)
    atomic_write_bytes(path, content)
    print(f"TFLite ({args.mode}) written to {path}, {len(content) / 1e6:.1f} MB")
    return 0


def _cmd_train(args):
    """Trains a recipe (with overrides) under a tf.distribute strategy; resumes from --output."""
    from keras_vits.training import RECIPES, get_recipe, load_recipe_file, parse_overrides
    from keras_vits.training.recipes import format_recipe

    if args.list_recipes:
        for name, recipe in RECIPES.items():
            print(f"{name:22s} {recipe.description}")
        return 0
    overrides = parse_overrides(args.set)
    for flag in (
        "epochs", "batch_size", "dataset", "data_dir", "teacher", "distillation", "precision", "compile_mode",
        "initial_weights", "layer_decay", "trainable", "head_init_scale",
    ):  # fmt: skip
        if getattr(args, flag) is not None:
            overrides[flag] = getattr(args, flag)
    if overrides.get("distillation") == "none" and "teacher" not in overrides:
        overrides["teacher"] = None  # --distillation none drops the recipe's teacher rather than ignoring it
    if args.config:
        recipe = load_recipe_file(args.config)
        recipe = recipe.replace(**overrides) if overrides else recipe
    else:
        recipe = get_recipe(args.recipe, **overrides)
    if args.show:
        print(format_recipe(recipe))
        return 0

    from keras_vits.training import NaNLossError, run_folder, train

    output = args.output or str(pathlib.Path("runs") / recipe.name)
    try:
        result = train(recipe, output, strategy=args.strategy, tpu=args.tpu, max_steps=args.max_steps)
    except NaNLossError as error:
        print(f"keras-vits train: stopped: {error}", file=sys.stderr)
        return 3
    print(f"Trained model: {pathlib.Path(output) / run_folder.MODEL_FILE} ({result['steps']} steps)")
    return 0


def _cmd_evaluate(args):
    """Prints top-1 of saved models side by side: one head, or cls, dist and average heads for DeiT."""
    from keras_vits.training import evaluate

    columns = {"top1": "top-1", "top1_cls": "class head", "top1_dist": "distillation head", "top1_avg": "average"}
    results = {}
    for model in args.model:
        results[model] = evaluate(
            model,
            dataset=args.dataset,
            split=args.split,
            batch_size=args.batch_size,
            data_dir=args.data_dir,
            mean=args.mean,
            std=args.std,
        )
    shown = [key for key in columns if any(key in logs for logs in results.values())]
    width = max(len(str(model)) for model in results)
    where = f"{args.dataset or 'its own data set'} {args.split or '(evaluation split)'}"
    print(f"Top-1 on {where}:")
    print(f"  {'model':{width}s}  " + "  ".join(f"{columns[key]:>17s}" for key in shown))
    for model, logs in results.items():
        cells = [f"{100 * logs[key]:16.2f}%" if key in logs else " " * 17 for key in shown]
        print(f"  {model:{width}s}  " + "  ".join(cells))
    return 0


def _cmd_benchmark(args):
    """Images per second in each mode, timm alongside, and the fraction of the matmul limit."""
    from keras_vits.benchmark import format_table, run_benchmark

    rows, machine = run_benchmark(
        args.models,
        args.batch_sizes,
        args.image_size,
        args.modes,
        args.repeats,
        args.calls,
        reference_python=args.reference_python,
        kecam_python=args.kecam_python,
        log=lambda message: print(message, file=sys.stderr),
    )
    if args.json:
        pathlib.Path(args.json).write_text(json.dumps({"rows": rows, "machine": machine}, indent=1))
    print(format_table(rows, machine))
    return 0


def build_parser():
    parser = argparse.ArgumentParser(
        prog="keras-vits", description="Vision transformers for Keras with timm's weights."
    )
    parser.add_argument("--debug", action="store_true", help="Show the traceback of an error.")
    parser.add_argument(
        VERBOSE_FLAG,
        action="store_true",
        help="Show TensorFlow's start-up and converter logs (hidden by default: they are not about your command).",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    listing = commands.add_parser("list", help="List registered model names.")
    listing.add_argument("pattern", nargs="?", default="*", help="Shell-style pattern, e.g. 'deit_*'. Default: all.")
    listing.set_defaults(func=_cmd_list)

    info = commands.add_parser(
        "info",
        help="Print a model's parameters, MACs and pretrained config; built only for --summary, --image-size "
        "or --num-classes other than 1000.",
    )
    info.add_argument("name", help="Registered model name (see `keras-vits list`).")
    info.add_argument("--image-size", type=POSITIVE_INT, default=None, help="Input size; default: the variant's own.")
    info.add_argument(
        "--num-classes", type=NON_NEGATIVE_INT, default=1000, help="Classes of the head; 0 for features. Default: 1000."
    )
    info.add_argument("--summary", action="store_true", help="Also print the Keras layer summary.")
    info.set_defaults(func=_cmd_info)

    export = commands.add_parser(
        "export", help="Export a registered model as a SavedModel for TF Serving or as a TFLite file."
    )
    export.add_argument(
        "name",
        help="Registered model name (see `keras-vits list`), or a .keras file from `keras-vits train` "
        "(its run folder's recipe.json and labels.txt give normalisation and labels).",
    )
    export.add_argument(
        "--weights",
        default=None,
        help="A .safetensors path or a HuggingFace repo id ('timm/<name>', 'owner/name'); needed for a registered "
        f"model name, where '{RANDOM_WEIGHTS}' asks for randomly initialised weights.",
    )
    export.add_argument(
        "--format", choices=("saved_model", "tflite"), default="saved_model", help="Default: saved_model."
    )
    export.add_argument("--output", default="saved_models", help="Base folder. Default: saved_models.")
    export.add_argument("--export-name", default=None, help="Name in the path. Default: the model name.")
    export.add_argument(
        "--version", type=POSITIVE_INT, default=None, help="SavedModel version. Default: the next free one."
    )
    export.add_argument("--labels", default=None, help="Text file, one class name per line. Default: class_<i>.")
    export.add_argument(
        "--num-classes",
        type=NON_NEGATIVE_INT,
        default=None,
        help="Classes of the head. Default: the checkpoint's (--weights), else 1000.",
    )
    export.add_argument("--image-size", type=POSITIVE_INT, default=None, help="Input size. Default: the variant's own.")
    export.add_argument(
        "--mode",
        default="float32",
        choices=TFLITE_MODES,
        metavar="MODE",
        help="TFLite quantization mode: %(choices)s. Default: float32.",
    )
    export.add_argument(
        "--calibration", default=None, help="int8/int16x8/int8_dense: .npy of normalised (N, H, W, C) images."
    )
    export.add_argument("--int8-io", action="store_true", help="int8: int8 input and output tensors.")
    export.add_argument(
        "--max-image-pixels",
        type=POSITIVE_INT,
        default=None,
        help="SavedModel: the signatures refuse images of more pixels (height x width). Default: 4096 x 4096.",
    )
    export.add_argument("--mean", type=float, nargs="+", default=None, help="Per-channel mean for a .keras model.")
    export.add_argument("--std", type=float, nargs="+", default=None, help="Per-channel std for a .keras model.")
    export.set_defaults(func=_cmd_export)

    demo = commands.add_parser(
        "demo",
        help="Load a timm checkpoint shipped with the package into a small ViT; check its logits against timm's.",
    )
    demo.add_argument("--fixtures", default=str(DEMO_DATA), help="Fixture folder. Default: the package's demo_data.")
    demo.add_argument("--case", default="vit_token", help="Fixture case to load. Default: vit_token.")
    demo.set_defaults(func=_cmd_demo)

    train = commands.add_parser(
        "train",
        help="Train or distil a model from a named recipe; resumes from the output folder's last checkpoint.",
        description="Train a recipe shipped with the package (--list-recipes) or a recipe file (--config). "
        "Every recipe field can be overridden with --set; the common ones also have their own flags. "
        "Checkpoints, TensorBoard logs, history.json, curves.png and the final model.keras go to --output.",
    )
    train.add_argument(
        "--recipe", default="fmnist_deit_hard", help="Recipe name (--list-recipes). Default: fmnist_deit_hard."
    )
    train.add_argument(
        "--config", default=None, help="A recipe file: .py defining RECIPE, or .json of fields. Replaces --recipe."
    )
    train.add_argument("--list-recipes", action="store_true", help="Print the recipes and exit.")
    train.add_argument(
        "--show",
        action="store_true",
        help="Print the recipe's fields and values (with --set and the other overrides) and exit without training.",
    )
    train.add_argument(
        "--output", default=None, help="Run folder; an existing run there is resumed. Default: runs/<recipe>."
    )
    train.add_argument(
        "--strategy",
        default="default",
        choices=STRATEGIES,
        metavar="STRATEGY",
        help="tf.distribute strategy: default (one device), mirrored (all local GPUs), multi_worker "
        "(reads TF_CONFIG), tpu. Default: default.",
    )
    train.add_argument("--tpu", default=None, help="TPU name or address for --strategy tpu.")
    train.add_argument("--epochs", type=POSITIVE_INT, default=None, help="Override the recipe's epochs.")
    train.add_argument(
        "--batch-size",
        dest="batch_size",
        type=POSITIVE_INT,
        default=None,
        help="Global batch over all replicas; the learning rate scales as base_lr * batch / 512.",
    )
    train.add_argument("--dataset", default=None, help="fashion_mnist, a tensorflow-datasets name, or folder:<path>.")
    train.add_argument("--data-dir", dest="data_dir", default=None, help="tensorflow-datasets data_dir.")
    train.add_argument("--teacher", default=None, help="Teacher model (.keras) for distillation.")
    train.add_argument(
        "--distillation",
        default=None,
        choices=DISTILLATION_MODES,
        metavar="MODE",
        help="Override the distillation mode: %(choices)s.",
    )
    train.add_argument(
        "--initial-weights",
        dest="initial_weights",
        default=None,
        help="Start from these weights: a .keras file that fits the model exactly (an earlier run's model.keras), "
        "or a timm .safetensors file or Hub id for registry models (a head of another size starts fresh).",
    )
    train.add_argument(
        "--layer-decay",
        dest="layer_decay",
        type=float,
        default=None,
        help="Fine-tuning: each layer's learning rate times DECAY ** (top depth - its depth), as timm's; in (0, 1].",
    )
    train.add_argument(
        "--trainable",
        default=None,
        help="Fine-tuning: 'all', 'head' (a linear probe) or 'freeze:N' (the stem and the first N stages or blocks).",
    )
    train.add_argument(
        "--head-init-scale",
        dest="head_init_scale",
        type=float,
        default=None,
        help="Fine-tuning: a fresh head (other classes than the checkpoint's) starts at its initial weights times this",
    )
    train.add_argument(
        "--set",
        nargs="+",
        action="extend",
        default=[],
        metavar="KEY=VALUE",
        help="Override any recipe field; may be repeated, e.g. --set epochs=2 --set randaugment=[2,0.9].",
    )
    train.add_argument(
        "--precision",
        default=None,
        choices=PRECISIONS,
        metavar="PRECISION",
        help="Override the recipe's precision: float32, mixed_float16 (GPUs, with dynamic loss scaling) or "
        "mixed_bfloat16 (TPUs and CPUs with bfloat16 units). Variables stay float32.",
    )
    train.add_argument(
        "--compile-mode",
        dest="compile_mode",
        default=None,
        choices=COMPILE_MODES,
        metavar="MODE",
        help="How the training step runs: graph, xla (jit_compile), or auto (measured per device and model family; "
        "keras_vits.compile_modes). Default: the recipe's (auto).",
    )
    train.add_argument(
        "--max-steps", dest="max_steps", type=POSITIVE_INT, default=None, help="Stop after this many steps in total."
    )
    train.set_defaults(func=_cmd_train)

    evaluate = commands.add_parser("evaluate", help="Top-1 of a saved model: class head, distillation head, average.")
    evaluate.add_argument(
        "model",
        nargs="+",
        help="One or more .keras models written by `keras-vits train` (loaded in safe mode), shown side by side.",
    )
    evaluate.add_argument(
        "--dataset", default=None, help="Data set as for train. Default: the run's (recipe.json), else fashion_mnist."
    )
    evaluate.add_argument("--split", default=None, help="Split to evaluate. Default: the run's eval split, else test.")
    evaluate.add_argument("--data-dir", dest="data_dir", default=None, help="tensorflow-datasets data_dir.")
    evaluate.add_argument("--batch-size", dest="batch_size", type=POSITIVE_INT, default=256, help="Default: 256.")
    evaluate.add_argument(
        "--mean", type=float, nargs="+", default=None, help="Per-channel mean. Default: the run's recipe.json."
    )
    evaluate.add_argument(
        "--std", type=float, nargs="+", default=None, help="Per-channel std. Default: the run's recipe.json."
    )
    evaluate.set_defaults(func=_cmd_evaluate)

    benchmark = commands.add_parser(
        "benchmark",
        help="Images per second of registry models (float32, XLA, bfloat16, training), timm alongside.",
        description="Times each model, batch size and mode, alternating cases in every repetition, and prints "
        "medians with the fraction of this machine's matmul limit (a float32 and a bfloat16 2048^3 matmul "
        "timed in the same run). With --reference-python, the same models run in timm (HF transformers for "
        "PVT v1) in that Python, and with --kecam-python in keras_cv_attention_models, alternating with these.",
    )
    benchmark.add_argument(
        "models",
        nargs="+",
        help="Registry names (see `keras-vits list`), or fmnist_student: the small Fashion-MNIST DeiT at "
        "patch 4 (the recipes train it at patch 7; 28x28x1, 10 classes; --image-size does not apply to it).",
    )
    benchmark.add_argument("--batch-sizes", type=POSITIVE_INT, nargs="+", default=[1, 16], help="Default: 1 16.")
    benchmark.add_argument("--image-size", type=POSITIVE_INT, default=224, help="Square input size. Default: 224.")
    benchmark.add_argument(
        "--modes",
        nargs="+",
        default=["float32", "xla", "bfloat16"],
        choices=KERAS_MODES,
        metavar="MODE",
        help="%(choices)s: float32 graph, XLA (jit_compile), mixed bfloat16 (graph or XLA), and/or a training step "
        "(forward, backward, AdamW; graph or XLA). Default: float32 xla bfloat16.",
    )
    benchmark.add_argument(
        "--repeats", type=POSITIVE_INT, default=5, help="Timed repetitions; medians reported. Default: 5."
    )
    benchmark.add_argument("--calls", type=POSITIVE_INT, default=3, help="Calls per repetition. Default: 3.")
    benchmark.add_argument(
        "--reference-python",
        default=None,
        help="A Python with torch and timm (pip install -e '.[reference]' in its own venv) to time the references.",
    )
    benchmark.add_argument(
        "--kecam-python",
        default=None,
        help="A Python with tf-keras and keras-cv-attention-models (the 'peers' extra; this venv's python "
        "works) to time keras_cv_attention_models in graph mode and with XLA.",
    )
    benchmark.add_argument("--json", default=None, help="Also write rows and machine to this JSON file.")
    benchmark.set_defaults(func=_cmd_benchmark)
    return parser


def main(argv=None):
    """Runs the command line: exits 0, 1 (a failed check, or a bug), 2 (bad input) or 3 (`train`: a NaN loss).

    Bad input prints one line and exits 2. Anything else is a bug: it prints the error, names it
    as one, and asks for `--debug`, which shows the traceback (`--debug` re-raises every error).
    """
    args = build_parser().parse_args(argv)
    if not args.verbose and is_the_command_line():
        quiet_tensorflow_python_logs()
    try:
        return args.func(args)
    except Exception as error:
        if args.debug:
            raise
        message = user_error_message(error)
        if message is not None:
            print(f"keras-vits {args.command}: error: {message}", file=sys.stderr)
            return 2
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
        print(
            f"keras-vits {args.command}: unexpected error: {type(error).__name__}: {first_line}\n"
            f"This looks like a bug in keras-vits rather than a problem with the input: run the same command "
            f"with --debug (keras-vits --debug {args.command} ...) for the full traceback, and report it.",
            file=sys.stderr,
        )
        return 1  # Python's own status for an uncaught exception, as before the message existed


def user_error_message(error):
    """The one-line message for an error the user can act on (bad input, a file, a full disk); None for a bug.

    User errors are: a `ValueError`, `TypeError`, `ImportError` (a missing extra) or `RuntimeError`
    (another Keras backend) that keras_vits raised itself (`raised_by_keras_vits`); any `OSError`
    (a missing file, a permission, a full disk); TensorFlow's out-of-space errors from checkpoint
    writes; TensorFlow missing. A `TypeError` from inside TensorFlow, or from Python on a keras_vits
    line that is not a `raise`, is a bug.
    """
    if isinstance(error, OSError):
        if error.errno in (errno.ENOSPC, errno.EDQUOT) and "No space left to" not in str(error):
            return f"no space left on the device ({error}); free some space and run again (training resumes)."
        return str(error)
    if isinstance(error, (ValueError, TypeError, ImportError, RuntimeError)) and raised_by_keras_vits(error):
        return str(error)
    if isinstance(error, ImportError) and error.name == "tensorflow":  # TensorFlow is an extra
        return f"{error}: this command needs TensorFlow: pip install 'keras-vits[tensorflow]' (or 'keras-vits[all]')."
    if "No space left on device" in str(error):  # TensorFlow's own file writes (checkpoints, TensorBoard)
        return (
            f"no space left on the device while writing ({str(error).splitlines()[0]}); the last complete "
            f"checkpoint is kept: free some space and run again (training resumes from it)."
        )
    return None


_PACKAGE_DIR = str(pathlib.Path(__file__).resolve().parent)
_RAISE_OPCODES = {dis.opmap[name] for name in ("RAISE_VARARGS", "RERAISE") if name in dis.opmap}


def raised_by_keras_vits(error):
    """True when a `raise` statement in keras_vits's own code raised `error` (its traceback's innermost frame).

    The library's checks raise their errors with a `raise` statement; an error that Python raises
    for an operation (`None + 1`), or that a call into another library raises, is a bug here.
    """
    frame = error.__traceback__
    if frame is None:
        return False
    while frame.tb_next is not None:
        frame = frame.tb_next
    code = frame.tb_frame.f_code
    if not str(pathlib.Path(code.co_filename).resolve()).startswith(_PACKAGE_DIR + os.sep):
        return False
    instructions = code.co_code
    return 0 <= frame.tb_lasti < len(instructions) and instructions[frame.tb_lasti] in _RAISE_OPCODES


if __name__ == "__main__":
    sys.exit(main())
