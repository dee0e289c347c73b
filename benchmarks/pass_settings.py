"""Cheaper PyTorch passes: channels-last memory and parameters without autograd.

    .venv/bin/python benchmarks/pass_settings.py          # about a minute on 2 cores

On the CNN of ``attribution_speed.py`` (64x64 photographs, batches of 64, the adapter's
``value_and_gradients``), times one forward+backward pass per input for:

- ``default``: the module as given (contiguous NCHW input);
- ``channels_last``: the adapter's ``channels_last=True`` option;
- ``frozen``: a copy whose parameters have ``requires_grad_(False)``, so autograd records
  nothing for them;
- ``frozen + channels_last``;

at 1 and 2 torch threads, alternating the variants so that drift in the machine's load
falls on all alike, best of ``--repeats``. Each variant's gradients are compared with
the default's and with a float64 copy's (relative to the largest gradient). A setting
becomes a default only if it is faster and its gradients stay within 1e-5 of today's.
Writes ``benchmarks/results/pass_settings.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attribution_speed import build_cnn, natural_images

import imacs

RESULTS = Path(__file__).resolve().parent / "results"


def relative(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    module = build_cnn()
    frozen = copy.deepcopy(module)
    for parameter in frozen.parameters():
        parameter.requires_grad_(False)
    variants = {
        "default": imacs.load_model(module, device="cpu"),
        "channels_last": imacs.load_model(module, device="cpu", channels_last=True),
        "frozen": imacs.load_model(frozen, device="cpu"),
        "frozen + channels_last": imacs.load_model(frozen, device="cpu", channels_last=True),
    }
    reference64 = imacs.load_model(copy.deepcopy(module).double(), device="cpu")
    images = natural_images(16, args.size)
    inputs = np.concatenate([images] * (args.batch_size // 16 + 1))[: args.batch_size]
    targets = variants["default"].predict(inputs).argmax(axis=1)
    exact = reference64.gradients(inputs.astype(np.float64), targets)
    today = variants["default"].gradients(inputs, targets)
    rows = []
    for threads in (1, 2):
        torch.set_num_threads(threads)
        best = dict.fromkeys(variants, float("inf"))
        for model in variants.values():
            model.value_and_gradients(inputs, targets)
        for _ in range(args.repeats):
            for name, model in variants.items():
                start = time.perf_counter()
                model.value_and_gradients(inputs, targets)
                best[name] = min(best[name], time.perf_counter() - start)
        for name, model in variants.items():
            grads = model.gradients(inputs, targets)
            rows.append(
                {
                    "threads": threads,
                    "variant": name,
                    "ms_per_input": 1000 * best[name] / len(inputs),
                    "speedup": best["default"] / best[name],
                    "vs_default": relative(grads, today),
                    "vs_float64": relative(grads, exact),
                }
            )
            r = rows[-1]
            print(
                f"{threads} thread(s) {name:24s} {r['ms_per_input']:.2f} ms/input "
                f"({r['speedup']:.2f}x), vs default {r['vs_default']:.1e}, "
                f"vs float64 {r['vs_float64']:.1e}",
                flush=True,
            )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "pass_settings.json"
    out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "torch": torch.__version__,
                "args": vars(args),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
