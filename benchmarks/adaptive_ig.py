"""Adaptive-step Integrated Gradients: the passes it saves at equal completeness error.

    .venv/bin/python benchmarks/adaptive_ig.py                # about 2 minutes on 2 cores
    .venv/bin/python benchmarks/adaptive_ig.py --quick        # a smoke test

For each tolerance (in logits of the predicted class) it runs, on the demo's PyTorch CNN
trained on the clean digits (``imacs.demo``, 32x32, about 5 s of training) and the first
``--images`` digits (their scores move by 0.4 to 11 logits from the black baseline):

- ``n_steps="auto"`` (the trapezoid rule, 8 intervals, doubled per image until
  ``|convergence_delta| <= tolerance``, earlier points reused);
- the fixed trapezoid rule and the fixed Gauss-Legendre rule (imacs's and Captum's
  default) with the fewest points, from 9, 17, 33... (trapezoid) and 8, 16, 32...
  (Gauss-Legendre), whose largest completeness error over the images is within the same
  tolerance: what a user who must pick one ``n_steps`` for the whole dataset pays.

It reports gradient evaluations (passes) per image, the largest ``|delta|`` reached and
the wall time (the best of ``--repeats`` runs; this machine is shared, so times are
noisy, passes are exact). Writes ``benchmarks/results/adaptive_ig.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
import torch

import imacs
from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.demo.data import shortcut_digits
from imacs.demo.models import train_torch_cnn

RESULTS = Path(__file__).resolve().parent / "results"


def timed(method: IntegratedGradients, model, images, targets, batch_size, repeats):
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = method.attribute(model, images, targets, batch_size=batch_size)
        best = min(best, time.perf_counter() - start)
    return best, result


def fewest_fixed(quadrature, counts, tolerance, model, images, targets, args):
    """The fewest fixed points whose largest |delta| over the images is within tolerance."""
    for n in counts:
        method = IntegratedGradients(n_steps=n, quadrature=quadrature)
        seconds, result = timed(method, model, images, targets, args.batch_size, args.repeats)
        worst = float(np.abs(result.convergence_delta).max())
        if worst <= tolerance:
            return {"passes_per_image": n, "max_abs_delta": worst, "seconds": seconds}
    return {"passes_per_image": None, "max_abs_delta": worst, "seconds": None}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=32)
    parser.add_argument("--tolerances", default="0.1,0.05,0.02")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--max-steps", type=int, default=512)
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    if args.quick:
        args.images, args.tolerances, args.repeats, args.max_steps = 4, "0.1", 1, 64

    digits = shortcut_digits(shortcut=False, seed=0)
    model = imacs.load_model(train_torch_cnn(digits.images, digits.labels), device="cpu")
    images = digits.images[: args.images]
    targets = model.predict(images).argmax(axis=1)
    trapezoid_counts = [2**k + 1 for k in range(3, 1 + int(np.log2(args.max_steps)))]
    gauss_counts = [2**k for k in range(3, 1 + int(np.log2(args.max_steps)))]
    rows = []
    for tolerance in (float(t) for t in args.tolerances.split(",")):
        method = IntegratedGradients(
            n_steps="auto", quadrature="trapezoid", tolerance=tolerance, max_steps=args.max_steps
        )
        seconds, result = timed(method, model, images, targets, args.batch_size, args.repeats)
        steps = method.last_steps[0]
        row = {
            "tolerance": tolerance,
            "auto": {
                "passes_per_image": float((steps + 1).mean()),
                "max_abs_delta": float(np.abs(result.convergence_delta).max()),
                "seconds": seconds,
                "intervals_per_image": steps.tolist(),
            },
            "fixed_trapezoid": fewest_fixed(
                "trapezoid", trapezoid_counts, tolerance, model, images, targets, args
            ),
            "fixed_gausslegendre": fewest_fixed(
                "gausslegendre", gauss_counts, tolerance, model, images, targets, args
            ),
        }
        rows.append(row)
        auto, trap, gauss = row["auto"], row["fixed_trapezoid"], row["fixed_gausslegendre"]
        print(
            f"tolerance {tolerance}: auto {auto['passes_per_image']:.1f} passes/image "
            f"(max |delta| {auto['max_abs_delta']:.2e}, {auto['seconds']:.2f} s); "
            f"fixed trapezoid {trap['passes_per_image']} ({trap['seconds']} s); "
            f"fixed Gauss-Legendre {gauss['passes_per_image']} ({gauss['seconds']} s)"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / ("adaptive_ig-quick.json" if args.quick else "adaptive_ig.json")
    out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "torch": torch.__version__,
                "torch_threads": torch.get_num_threads(),
                "args": vars(args),
                "rows": rows,
            },
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
