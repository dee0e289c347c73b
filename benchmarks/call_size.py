"""What one PyTorch pass costs per image as a function of the images per call, on the CPU.

The PyTorch adapter splits calls on the CPU so that one carries at most ``call_pixels``
pixels (131,072 by default). This measures the per-image cost of a forward and backward
pass (``value_and_gradients``) at 1, 2, 4, ... 64 images per call, with the limit off, on
two CNNs (the ~1M-parameter one of ``attribution_speed.py`` and the demo's 7k-parameter
one) at 32, 64, 128 and 224 px, and prints, per model and size, the cheapest call size,
the one the default limit picks, and the cost at 64 per call against the default's; then,
for each candidate limit, how much more than the cheapest call its calls cost, at worst
and on average over the models and sizes: the default is the candidate with the
smallest worst case.

    .venv/bin/python benchmarks/call_size.py              # about 3 minutes on 2 CPU cores
    .venv/bin/python benchmarks/call_size.py --sizes 64   # one size
    .venv/bin/python benchmarks/call_size.py --framework keras   # the Keras adapter

``--framework keras`` measures the same through the Keras adapter (TensorFlow), on Keras
models of the same two shapes, to see whether a limit would pay there too; the Keras
adapter applies none.

Writes ``benchmarks/results/call_size-cpu.json`` (``call_size-keras-cpu.json``).
"""

from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

import imacs
from imacs.demo.models import keras_cnn, torch_cnn

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attribution_speed import build_cnn, natural_images

RESULTS = Path(__file__).resolve().parent / "results"
CALLS = (1, 2, 4, 8, 16, 32, 64)
#: the limits compared: 16 to 256 inputs' worth of 32x32 pixels
CANDIDATE_PIXELS = (16_384, 32_768, 65_536, 131_072, 262_144)


def per_image_ms(model: imacs.ModelAdapter, images: np.ndarray, n: int, repeats: int) -> float:
    """The best per-image time of ``value_and_gradients`` on ``n`` images per call."""
    x, t = images[:n], np.zeros(n, dtype=np.int64)
    model.value_and_gradients(x, t)  # warm-up
    calls = max(1, 64 // n)  # about 64 images a measurement, whatever the call size
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for _ in range(calls):
            model.value_and_gradients(x, t)
        best = min(best, (time.perf_counter() - start) / (calls * n))
    return 1000 * best


def keras_models() -> list[tuple[str, object]]:
    """Keras models of the two shapes, channels last, untrained (the cost is measured)."""
    import keras

    keras.utils.set_random_seed(0)
    layers = keras.layers

    def cnn(*stack: object) -> object:
        return keras.Sequential([keras.Input((None, None, 3)), *stack])

    wide = cnn(
        layers.Conv2D(32, 3, padding="same", activation="relu"),
        layers.Conv2D(64, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(128, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(256, 3, strides=2, padding="same", activation="relu"),
        layers.Conv2D(256, 3, padding="same", activation="relu"),
        layers.GlobalAveragePooling2D(),
        layers.Dense(10),
    )
    return [("attribution_speed CNN", wide), ("demo CNN", keras_cnn())]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[32, 64, 128, 224])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--framework", choices=("torch", "keras"), default="torch")
    args = parser.parse_args()
    from imacs_torch.adapter import CPU_CALL_PIXELS

    rows = []
    if args.framework == "torch":
        models = [
            (name, imacs.load_model(module, device="cpu", call_pixels=None))
            for name, module in (("attribution_speed CNN", build_cnn()), ("demo CNN", torch_cnn()))
        ]
    else:
        models = [(name, imacs.load_model(module)) for name, module in keras_models()]
    for name, model in models:
        for size in args.sizes:
            images = natural_images(max(CALLS), size)
            costs = {n: per_image_ms(model, images, n, args.repeats) for n in CALLS}
            cheapest = min(costs, key=lambda n: costs[n])
            default = min(max(CALLS), max(1, CPU_CALL_PIXELS // (size * size)))
            rows.append(
                {
                    "model": name,
                    "size": size,
                    "ms_per_image": {str(n): costs[n] for n in CALLS},
                    "cheapest_call": cheapest,
                    "default_call": default,
                    "default_over_cheapest": costs[default] / costs[cheapest],
                    "call_64_over_default": costs[64] / costs[default],
                }
            )
            print(
                f"{name:>22} {size:>4} px: "
                + " ".join(f"{n}:{costs[n]:.2f}" for n in CALLS)
                + f" ms/image; cheapest {cheapest}, default {default} "
                f"({costs[default] / costs[cheapest]:.2f}x the cheapest), "
                f"64 per call {costs[64] / costs[default]:.2f}x the default",
                flush=True,
            )
    # each candidate limit: how far its call size is from the cheapest, at worst and on average
    budgets = {}
    for budget in CANDIDATE_PIXELS:
        ratios = []
        for row in rows:
            # the largest measured call size within the limit (the limit itself may fall
            # between two measured sizes: 5 images of 224x224 for 262,144 pixels)
            n = max(c for c in CALLS if c <= max(1, budget // (row["size"] ** 2)))
            costs = row["ms_per_image"]
            ratios.append(costs[str(n)] / costs[str(row["cheapest_call"])])
        budgets[budget] = {"worst": max(ratios), "mean": float(np.mean(ratios))}
        print(
            f"call_pixels {budget:>7}: worst {max(ratios):.2f}x the cheapest call, "
            f"mean {np.mean(ratios):.2f}x"
        )
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / (
        "call_size-cpu.json" if args.framework == "torch" else "call_size-keras-cpu.json"
    )
    out.write_text(
        json.dumps(
            {
                "machine": platform.platform(),
                "framework": args.framework,
                "torch_threads": torch.get_num_threads(),
                "call_pixels": CPU_CALL_PIXELS if args.framework == "torch" else None,
                "rows": rows,
                "candidates": {str(k): v for k, v in budgets.items()},
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
