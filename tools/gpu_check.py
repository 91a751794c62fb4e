"""keras_vits on a GPU under JAX, against timm on PyTorch: parity, inference and training speed, peak memory.

    make gpu-wheels                                  # here: .whl/ with keras, its missing needs, keras_vits
    python3 tools/gpu_check.py --out DIR             # there: the GPU machine, one command
    python tools/gpu_check.py --smoke --out DIR      # anywhere: tiny models on the CPU, in seconds

Written for the lent GPU machine as it is: Python 3.12, jax with CUDA, torch, timm,
safetensors; no TensorFlow, no Keras, no network. Its first step installs the carried
wheels (`--wheels`, default `.whl/`) into a temporary folder with
`pip install --no-index --no-deps --target`, unless Keras and keras_vits are importable
already. Keras runs on JAX (`KERAS_BACKEND=jax`).

- parity: for each family, a timm model with random weights (perturbed, so that no
  LayerNorm is the identity) is saved as safetensors on the spot and loaded through
  `keras_vits.create_model(name, weights=...)`; logits compared in float32 with TF32
  off on both sides (JAX matmul precision "highest").
- inference: images/s of keras_vits on JAX (a jitted `stateless_call`) and of timm,
  eager and `torch.compile`d (batch 128 only, and not in `--smoke`: each compile costs tens of seconds), at
  batch 1 and 128, in float32 and bfloat16 (Keras `mixed_bfloat16`, torch autocast).
- training: forward, loss, backward and AdamW, images/s (Keras `train_on_batch` with
  XLA against an eager timm step), in bfloat16 mixed precision.
- peak memory: per row for PyTorch (`max_memory_allocated`); JAX's peak is the
  process's high-water mark so far (`peak_bytes_in_use`), read after each row.

Rows that would start after `--budget-seconds` are recorded as skipped, so the
command ends inside the machine's limit. Writes `DIR/gpu_check.json` with the
top-level keys `device`, `parity`, `inference` and `training`.
"""

import argparse
import functools
import glob
import importlib.util
import json
import os
import subprocess
import sys
import tempfile
import time

PARITY_MODELS = ("vit_tiny_patch16_224", "deit_tiny_distilled_patch16_224", "swin_tiny_patch4_window7_224", "pvt_v2_b0")
SECTIONS = ("parity", "inference", "training")
SPEED_MODELS = ("deit_small_patch16_224", "swin_tiny_patch4_window7_224", "pvt_v2_b1")

#: Tiny stand-ins of each model for `--smoke`, in the argument names both libraries share
#: (`image_size` becomes timm's `img_size`; PVT v2 in timm takes no image size).
SMOKE_OVERRIDES = {
    "vit": dict(image_size=32, patch_size=8, embed_dim=32, depth=1, num_heads=2),
    "swin": dict(image_size=32, patch_size=2, window_size=4, embed_dim=16, depths=(2, 2), num_heads=(1, 2)),
    "pvt_v2": dict(image_size=32, embed_dims=(8, 16, 16, 32), depths=(1, 1, 1, 1), num_heads=(1, 1, 2, 2)),
}


def family_of(name):
    return "swin" if name.startswith("swin") else "pvt_v2" if name.startswith("pvt_v2") else "vit"


def install_carried_wheels(wheel_dir):
    """Makes Keras and keras_vits importable: already installed, or from the wheels in `wheel_dir`."""
    if importlib.util.find_spec("keras") and importlib.util.find_spec("keras_vits"):
        return None
    wheels = sorted(glob.glob(os.path.join(wheel_dir, "*.whl")))
    if not wheels:
        raise SystemExit(f"Keras is not installed and {wheel_dir!r} holds no wheels: run `make gpu-wheels` first.")
    target = tempfile.mkdtemp(prefix="keras_vits_site_")
    command = [sys.executable, "-m", "pip", "install", "-q", "--no-index", "--no-deps", "--no-compile"]
    subprocess.run([*command, "--target", target, *wheels], check=True)
    sys.path.insert(0, target)
    return target


class Clock:
    """The time budget: rows that would start after it are skipped."""

    def __init__(self, budget_seconds):
        self.start = time.perf_counter()
        self.budget = budget_seconds

    def out_of_time(self):
        return time.perf_counter() - self.start > self.budget


def block(function, *args):
    """`function(*args)`, waited for on the device."""
    return function(*args).block_until_ready()


def images_per_second(step, batch, min_seconds, min_calls=5):
    """Calls `step()` (which blocks until done) until `min_seconds` and `min_calls` have passed."""
    calls, start = 0, time.perf_counter()
    while calls < min_calls or time.perf_counter() - start < min_seconds:
        step()
        calls += 1
    return batch * calls / (time.perf_counter() - start)


class Check:
    def __init__(self, args):
        import jax
        import torch

        self.args = args
        self.jax, self.torch = jax, torch
        self.smoke = args.smoke
        self.torch_device = "cpu" if self.smoke else "cuda"
        self.clock = Clock(args.budget_seconds)
        jax.config.update("jax_default_matmul_precision", "highest")  # no TF32 on the JAX side
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        self.tmp = tempfile.mkdtemp(prefix="gpu_check_")

    # ------------------------------------------------------------------ models

    def overrides(self, name):
        return dict(SMOKE_OVERRIDES[family_of(name)]) if self.smoke else {}

    def image_size(self, name):
        return self.overrides(name).get("image_size", 224)

    def timm_model(self, name, num_classes):
        import timm

        kwargs = {("img_size" if k == "image_size" else k): v for k, v in self.overrides(name).items()}
        if family_of(name) == "pvt_v2":
            kwargs.pop("img_size", None)
        self.torch.manual_seed(0)
        return timm.create_model(name, pretrained=False, num_classes=num_classes, **kwargs)

    def keras_model(self, name, num_classes, weights=None, policy="float32"):
        import keras

        import keras_vits

        keras.config.set_dtype_policy(policy)
        try:
            keras.utils.set_random_seed(0)
            return keras_vits.create_model(name, weights=weights, num_classes=num_classes, **self.overrides(name))
        finally:
            keras.config.set_dtype_policy("float32")

    def random_images(self, batch, size, seed=0):
        import numpy as np

        return np.random.default_rng(seed).normal(size=(batch, size, size, 3)).astype("float32")

    def to_torch(self, images):
        """NHWC NumPy images as a contiguous NCHW tensor on the PyTorch device (timm's layout)."""
        return self.torch.from_numpy(images).permute(0, 3, 1, 2).contiguous().to(self.torch_device)

    def jax_peak_bytes(self):
        stats = self.jax.devices()[0].memory_stats() or {}
        return stats.get("peak_bytes_in_use")

    def torch_peak_bytes(self):
        return self.torch.cuda.max_memory_allocated() if self.torch_device == "cuda" else None

    def reset_torch_peak(self):
        if self.torch_device == "cuda":
            self.torch.cuda.reset_peak_memory_stats()

    def torch_sync(self):
        if self.torch_device == "cuda":
            self.torch.cuda.synchronize()

    # ------------------------------------------------------------------ parity

    def parity(self, name):
        import numpy as np
        from safetensors.torch import save_file

        num_classes = 10 if self.smoke else 1000
        reference = self.timm_model(name, num_classes).eval()
        with self.torch.no_grad():  # random weights off their initial values: no identity LayerNorm, no zero head
            generator = self.torch.Generator().manual_seed(1)
            for parameter in reference.parameters():
                parameter.add_(self.torch.randn(parameter.shape, generator=generator) * 0.02)
        path = os.path.join(self.tmp, f"{name}.safetensors")
        save_file({k: v.detach().cpu().contiguous().clone() for k, v in reference.state_dict().items()}, path)
        images = self.random_images(2, self.image_size(name))
        with self.torch.no_grad():
            expected = reference.to(self.torch_device)(self.to_torch(images))
        expected = expected.float().cpu().numpy()
        model = self.keras_model(name, num_classes=None, weights=path)
        got = np.asarray(model(images, training=False), dtype="float32")
        error = float(np.max(np.abs(got - expected)))
        return dict(
            model=name,
            max_abs_error=error,
            max_abs_logit=float(np.max(np.abs(expected))),
            top1_agreement=float(np.mean(got.argmax(-1) == expected.argmax(-1))),
            ok=bool(error <= 1e-4),
        )

    # ------------------------------------------------------------------ inference

    def keras_forward(self, model):
        jax = self.jax
        trainable = [v.value for v in model.trainable_variables]
        non_trainable = [v.value for v in model.non_trainable_variables]

        @jax.jit
        def forward(trainable, non_trainable, images):
            return model.stateless_call(trainable, non_trainable, images, training=False)[0]

        return lambda images: forward(trainable, non_trainable, images)

    def inference_rows(self, name, batches, dtype):
        policy = "mixed_bfloat16" if dtype == "bfloat16" else "float32"
        size, seconds = self.image_size(name), self.args.seconds
        rows = []
        model = self.keras_model(name, num_classes=1000, policy=policy)
        forward = self.keras_forward(model)
        reference = self.timm_model(name, 1000).eval().to(self.torch_device)
        autocast = dict(device_type=self.torch_device, dtype=self.torch.bfloat16, enabled=dtype == "bfloat16")
        for batch in batches:
            if self.clock.out_of_time():
                rows.append(dict(model=name, batch=batch, dtype=dtype, skipped="time budget"))
                continue
            images = self.jax.device_put(self.random_images(batch, size))
            compile_start = time.perf_counter()
            forward(images).block_until_ready()
            keras_compile = time.perf_counter() - compile_start
            keras_ips = images_per_second(functools.partial(block, forward, images), batch, seconds)
            row = dict(
                model=name, batch=batch, dtype=dtype, keras_vits_jax=keras_ips, keras_vits_jit_seconds=keras_compile
            )
            row["keras_vits_peak_bytes_so_far"] = self.jax_peak_bytes()
            torch_images = self.to_torch(self.random_images(batch, size))

            def run(module, torch_images=torch_images):
                with self.torch.no_grad(), self.torch.autocast(**autocast):
                    module(torch_images)
                self.torch_sync()

            self.reset_torch_peak()
            for _ in range(3):
                run(reference)
            row["timm_eager"] = images_per_second(functools.partial(run, reference), batch, seconds)
            row["timm_eager_peak_bytes"] = self.torch_peak_bytes()
            if batch == max(batches) and not self.smoke and not self.clock.out_of_time():
                compiled = self.torch.compile(reference)
                compile_start = time.perf_counter()
                for _ in range(3):
                    run(compiled)
                row["timm_compile_seconds"] = time.perf_counter() - compile_start
                row["timm_compiled"] = images_per_second(functools.partial(run, compiled), batch, seconds)
            row["keras_vits_vs_timm_eager"] = keras_ips / row["timm_eager"]
            if "timm_compiled" in row:
                row["keras_vits_vs_timm_compiled"] = keras_ips / row["timm_compiled"]
            rows.append(row)
            print(json.dumps(row), flush=True)
        return rows

    # ------------------------------------------------------------------ training

    def training_row(self, name, batch):
        import keras
        import numpy as np

        size, seconds = self.image_size(name), self.args.seconds
        if self.clock.out_of_time():
            return dict(model=name, batch=batch, skipped="time budget")
        images = self.random_images(batch, size)
        labels = np.random.default_rng(1).integers(0, 1000, size=(batch,)).astype("int32")
        model = self.keras_model(name, num_classes=1000, policy="mixed_bfloat16")
        model.compile(
            optimizer=keras.optimizers.AdamW(1e-4, weight_decay=0.05),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            jit_compile=True,
        )
        images_on_device, labels_on_device = self.jax.device_put(images), self.jax.device_put(labels)
        compile_start = time.perf_counter()
        model.train_on_batch(images_on_device, labels_on_device)
        keras_compile = time.perf_counter() - compile_start
        keras_ips = images_per_second(
            functools.partial(model.train_on_batch, images_on_device, labels_on_device), batch, seconds
        )
        row = dict(model=name, batch=batch, dtype="mixed_bfloat16", keras_vits_jax=keras_ips)
        row["keras_vits_jit_seconds"] = keras_compile
        row["keras_vits_peak_bytes_so_far"] = self.jax_peak_bytes()

        torch = self.torch
        reference = self.timm_model(name, 1000).train().to(self.torch_device)
        optimizer = torch.optim.AdamW(reference.parameters(), lr=1e-4, weight_decay=0.05)
        torch_images = self.to_torch(images)
        torch_labels = torch.from_numpy(labels).long().to(self.torch_device)

        def step():
            optimizer.zero_grad(set_to_none=True)
            with torch.autocast(device_type=self.torch_device, dtype=torch.bfloat16):
                loss = torch.nn.functional.cross_entropy(reference(torch_images), torch_labels)
            loss.backward()
            optimizer.step()
            self.torch_sync()

        self.reset_torch_peak()
        for _ in range(3):
            step()
        row["timm_eager"] = images_per_second(step, batch, seconds)
        row["timm_eager_peak_bytes"] = self.torch_peak_bytes()
        row["keras_vits_vs_timm_eager"] = keras_ips / row["timm_eager"]
        print(json.dumps(row), flush=True)
        return row

    # ------------------------------------------------------------------ report

    def device(self):
        import jax
        import keras
        import timm

        import keras_vits

        device = jax.devices()[0]
        return dict(
            jax_device=f"{device.platform}: {device.device_kind}",
            torch_device=self.torch.cuda.get_device_name() if self.torch_device == "cuda" else "cpu",
            smoke=self.smoke,
            float32_matmuls="TF32 off on both sides (JAX precision 'highest', torch allow_tf32=False)",
            versions=dict(
                python=sys.version.split()[0],
                jax=jax.__version__,
                torch=self.torch.__version__,
                timm=timm.__version__,
                keras=keras.__version__,
                keras_vits=keras_vits.__version__,
            ),
            keras_backend=keras.backend.backend(),
        )

    def run(self):
        args = self.args
        speed_models = args.models or (PARITY_MODELS[:1] if self.smoke else SPEED_MODELS)
        batches = tuple(args.batches or ((1, 2) if self.smoke else (1, 128)))
        report = dict(device=self.device(), parity=[], inference=[], training=[])
        for section in args.sections:
            if section == "parity":
                for name in PARITY_MODELS:
                    report["parity"].append(self.parity(name))
                    print(json.dumps(report["parity"][-1]), flush=True)
            elif section == "inference":
                for dtype in args.dtypes:
                    for name in speed_models:
                        report["inference"].extend(self.inference_rows(name, batches, dtype))
            else:
                for name in speed_models:
                    report["training"].append(self.training_row(name, batches[-1]))
                report["training"].append(
                    dict(
                        model="DistillationModel",
                        skipped="DistillationModel's train_step runs on the TensorFlow backend only so far",
                    )
                )
        report["device"]["seconds"] = time.perf_counter() - self.clock.start
        return report


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder for gpu_check.json")
    parser.add_argument("--smoke", action="store_true", help="tiny models on the CPU, in seconds")
    parser.add_argument("--wheels", default=".whl", help="folder of the carried wheels. Defaults to .whl")
    parser.add_argument("--seconds", type=float, default=None, help="timing per row. Defaults to 1.5 (0.05 smoke)")
    parser.add_argument("--budget-seconds", type=float, default=None, help="start no row after. Defaults to 400")
    parser.add_argument("--sections", nargs="+", default=list(SECTIONS), choices=SECTIONS, help="in this order")
    parser.add_argument("--models", nargs="+", help=f"speed rows' models. Defaults to {' '.join(SPEED_MODELS)}")
    parser.add_argument("--dtypes", nargs="+", default=["float32", "bfloat16"], choices=("float32", "bfloat16"))
    parser.add_argument("--batches", nargs="+", type=int, help="inference batches; training takes the last")
    args = parser.parse_args(argv)
    args.seconds = args.seconds if args.seconds is not None else (0.05 if args.smoke else 1.5)
    args.budget_seconds = args.budget_seconds if args.budget_seconds is not None else (120 if args.smoke else 400)
    os.environ["KERAS_BACKEND"] = "jax"
    os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")  # leave GPU memory to PyTorch too
    if args.smoke:
        os.environ["JAX_PLATFORMS"] = "cpu"
    install_carried_wheels(args.wheels)
    report = Check(args).run()
    os.makedirs(args.out, exist_ok=True)
    path = os.path.join(args.out, "gpu_check.json")
    with open(path, "w") as f:
        json.dump(report, f, indent=1)
    failed = [row["model"] for row in report["parity"] if not row["ok"]]
    print(f"wrote {path}; parity {'failed for ' + ', '.join(failed) if failed else 'ok'}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
