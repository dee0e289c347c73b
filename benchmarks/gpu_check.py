"""The GPU check: the PyTorch adapter, every method and the speed benchmarks on CUDA.

    python benchmarks/gpu_check.py                 # on a machine with a CUDA build of torch
    python benchmarks/gpu_check.py --quick --device cpu   # a smoke test of the script itself
    bash benchmarks/gpu_check.sh                   # installs imacs there first, then this

Four parts, each timed, each recorded even when another fails (``gpu_check.sh`` stops
it at 290 s; not yet timed on a GPU; on the CPU, ``--quick``, it takes 36 s here):

1. **adapter**: the conformance suite of ``imacs.testing`` on the demo CNN (with Softplus,
   so that finite differences apply) placed on the device.
2. **methods**: every attribution method registered for PyTorch runs on the device and on
   the CPU on the same weights and inputs; the largest difference of the two maps over
   the largest map value is recorded, with TF32 off (the float32 the CPU computes) and
   with PyTorch's own TF32 settings, since on Ampere and later GPUs TF32 convolutions are
   PyTorch's default and move maps by about 1e-3.
3. **benchmarks**: ``attribution_speed.py`` (imacs against Captum and PAIR saliency, where
   they are installed) and ``quality_speed.py`` on the device.
4. **memory**: the peak device memory of Integrated Gradients at each batch size.

Results go to ``gpu_check.json`` under ``--out`` (default benchmarks/results). The exit
status is 1 when a check failed (the JSON says which).
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import imacs
from imacs.plugins import get_host
from imacs.testing import check_model_adapter

HERE = Path(__file__).resolve().parent

#: how far a device's map may be from the CPU's, over the largest map value, with TF32 off
TOLERANCE = 1e-4

#: methods that need options to run on the small CNN here
OPTIONS: dict[str, dict[str, Any]] = {
    "integrated-gradients": {"n_steps": 32},
    "guided-ig": {"x_steps": 32},
    "blur-ig": {"steps": 32},
    "pami": {"shifts": [(0, 0)]},
    "smoothgrad": {"n_samples": 8},
    "vargrad": {"n_samples": 8},
    "ltx": {"pretrain_epochs": 1, "finetune_epochs": 2},
}


def demo_cnn(channels: int = 3, classes: int = 10, seed: int = 0) -> nn.Module:
    """The demo's CNN shape with Softplus in place of ReLU, its weights seeded."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(channels, 8, 3, padding=1),
        nn.Softplus(beta=4.0),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 16, 3, padding=1),
        nn.Softplus(beta=4.0),
        nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1),
        nn.Softplus(beta=4.0),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(32, classes),
    ).eval()


def timed(record: dict[str, Any], name: str, part: Callable[[], Any]) -> None:
    """Run ``part``; record its result, its seconds, or the error it raised."""
    start = time.perf_counter()
    try:
        record[name] = {"ok": True, "result": part()}
    except Exception as exc:  # the check reports every failure and goes on
        record[name] = {
            "ok": False,
            "error": f"{type(exc).__name__}: {exc}",
            "traceback": traceback.format_exc(limit=6),
        }
    record[name]["seconds"] = round(time.perf_counter() - start, 3)
    status = "ok" if record[name]["ok"] else f"FAILED: {record[name]['error'][:300]}"
    print(f"[{record[name]['seconds']:7.1f} s] {name}: {status}", flush=True)


def set_tf32(on: bool) -> None:
    torch.backends.cuda.matmul.allow_tf32 = on
    torch.backends.cudnn.allow_tf32 = on


def check_adapter(device: str, images: np.ndarray, targets: np.ndarray) -> str:
    set_tf32(False)
    adapter = imacs.load_model(demo_cnn(), device=device)
    check_model_adapter(adapter, images[:4], targets[:4])
    return f"conformance suite passed on {adapter.device}"


def methods_for_torch() -> list[str]:
    names = get_host().registry.names("attribution_method")
    return [name for name in names if not name.startswith("tf-explain-")]


def compare_method(
    name: str, device: str, images: np.ndarray, targets: np.ndarray
) -> dict[str, Any]:
    network = demo_cnn()
    on_cpu = imacs.load_model(copy.deepcopy(network), device="cpu")
    on_device = imacs.load_model(copy.deepcopy(network), device=device)
    options = OPTIONS.get(name, {})
    reference = imacs.attribute(on_cpu, images, targets, method=name, **options).maps
    result: dict[str, Any] = {}
    for tf32 in (False, True):
        set_tf32(tf32)
        imacs.attribute(on_device, images[:2], targets[:2], method=name, **options)  # warm-up
        if device.startswith("cuda"):
            torch.cuda.synchronize()
        start = time.perf_counter()
        maps = imacs.attribute(on_device, images, targets, method=name, **options).maps
        seconds = time.perf_counter() - start
        scale = float(np.abs(reference).max()) or 1.0
        difference = float(np.abs(np.asarray(maps) - reference).max()) / scale
        result["tf32" if tf32 else "float32"] = {
            "seconds": round(seconds, 4),
            "difference_over_largest": difference,
        }
    set_tf32(False)
    if result["float32"]["difference_over_largest"] > TOLERANCE:
        raise AssertionError(
            f"{name}: the {device} map differs from the CPU's by "
            f"{result['float32']['difference_over_largest']:.2e} of its largest value "
            f"with TF32 off (tolerance {TOLERANCE:g}); details: {result}"
        )
    return result


def peak_memory(device: str, images: np.ndarray, targets: np.ndarray) -> dict[str, int]:
    if not device.startswith("cuda"):
        return {}
    adapter = imacs.load_model(demo_cnn(), device=device)
    peaks = {}
    for batch_size in (16, 64, 256):
        torch.cuda.reset_peak_memory_stats()
        imacs.attribute(
            adapter, images, targets, method="integrated-gradients", batch_size=batch_size
        )
        peaks[str(batch_size)] = int(torch.cuda.max_memory_allocated())
    return peaks


def run_benchmark(arguments: list[str], timeout: float) -> str:
    command = [sys.executable, *arguments]
    print("  $", " ".join(command), flush=True)
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    tail = (done.stdout + done.stderr)[-4000:]
    if done.returncode != 0:
        raise RuntimeError(f"exit status {done.returncode}:\n{tail}")
    return tail


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--out", type=Path, default=HERE / "results")
    parser.add_argument("--quick", action="store_true", help="few images, no benchmarks")
    args = parser.parse_args()
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"torch {torch.__version__} sees no CUDA device; run this on a machine with a GPU "
            "and a CUDA build of PyTorch, or pass --device cpu for a smoke test",
            file=sys.stderr,
        )
        return 2
    start = time.perf_counter()
    n_images, size = (6, 16) if args.quick else (16, 32)
    rng = np.random.default_rng(0)
    images = rng.random((n_images, size, size, 3), dtype=np.float32)
    targets = rng.integers(0, 10, n_images)
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "imacs": imacs.__version__,
        "device": args.device,
        "device_name": torch.cuda.get_device_name() if args.device.startswith("cuda") else "cpu",
        "parts": {},
        "methods": {},
    }
    parts = report["parts"]
    timed(parts, "adapter", lambda: check_adapter(args.device, images, targets))
    for name in methods_for_torch():
        timed(
            report["methods"], name, lambda n=name: compare_method(n, args.device, images, targets)
        )
    timed(
        parts, "peak memory of IG by batch size", lambda: peak_memory(args.device, images, targets)
    )
    if not args.quick:
        timed(
            parts,
            "attribution_speed.py",
            lambda: run_benchmark(
                [
                    str(HERE / "attribution_speed.py"),
                    "--device",
                    args.device,
                    "--images",
                    "64,32",
                    "--repeats",
                    "3",
                ],
                timeout=150,
            ),
        )
        timed(
            parts,
            "quality_speed.py",
            lambda: run_benchmark([str(HERE / "quality_speed.py")], timeout=60),
        )
    report["seconds"] = round(time.perf_counter() - start, 1)
    failed = [n for n, r in {**parts, **report["methods"]}.items() if not r["ok"]]
    report["failed"] = failed
    args.out.mkdir(parents=True, exist_ok=True)
    name = "gpu_check-quick.json" if args.quick else "gpu_check.json"
    (args.out / name).write_text(json.dumps(report, indent=2) + "\n")
    print(f"{len(failed)} failed: {failed}" if failed else "all passed", f"({report['seconds']} s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
