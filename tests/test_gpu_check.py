"""tools/gpu_check.py in its smoke mode: tiny models on the CPU, under JAX, against timm.

`make test` runs it in the JAX venv (no TensorFlow there, as on the GPU machine); elsewhere
it is skipped unless JAX, PyTorch and timm are all installed.
"""

import importlib.util
import json
import os
import pathlib
import subprocess
import sys

import pytest

SCRIPT = pathlib.Path(__file__).resolve().parent.parent / "tools" / "gpu_check.py"
NEEDED = ("jax", "torch", "timm")


def test_smoke_run_writes_parity_inference_and_training(tmp_path):
    missing = [name for name in NEEDED if importlib.util.find_spec(name) is None]
    if missing:
        assert os.environ.get("KERAS_BACKEND") != "jax", f"the JAX pass must run the GPU check; missing {missing}"
        pytest.skip(f"needs {', '.join(missing)} (the JAX venv of `make test` has them)")
    env = dict(os.environ, KERAS_BACKEND="jax")
    subprocess.run([sys.executable, str(SCRIPT), "--smoke", "--out", str(tmp_path)], check=True, env=env)
    report = json.loads((tmp_path / "gpu_check.json").read_text())
    assert set(report) == {"device", "parity", "inference", "training"}
    assert report["device"]["keras_backend"] == "jax" and report["device"]["smoke"] is True
    assert [row["model"] for row in report["parity"]] == [
        "vit_tiny_patch16_224",
        "deit_tiny_distilled_patch16_224",
        "swin_tiny_patch4_window7_224",
        "pvt_v2_b0",
    ]
    for row in report["parity"]:
        assert row["ok"] and row["max_abs_error"] < 1e-5 and row["top1_agreement"] == 1.0, row
    measured = [row for row in report["inference"] + report["training"] if "skipped" not in row]
    assert {(row.get("dtype"), row["batch"]) for row in report["inference"]} == {
        ("float32", 1),
        ("float32", 2),
        ("bfloat16", 1),
        ("bfloat16", 2),
    }
    for row in measured:
        assert row["keras_vits_jax"] > 0 and row["timm_eager"] > 0, row
