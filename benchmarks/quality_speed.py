"""Insertion/deletion speed: measured time over the cost of the forward passes it must make.

    python benchmarks/quality_speed.py            # 64 images of 32x32, 32 steps
    python benchmarks/quality_speed.py --quick    # smaller, for a smoke test
    PYTHONPATH=/tmp/quantus python benchmarks/quality_speed.py   # and Quantus beside it

Deletion with ``n`` steps must run the model on ``n + 1`` images per image. The floor is
the time of exactly those passes: the changed images the measure sends, recorded in one
run and sent again in the same calls of ``batch_size`` (the model's time depends a little
on the pixels, so an equal stack of unchanged images would be the wrong floor); the ratio
measured / floor says what imacs adds (building the changed images, ranking, the area).
Quantus's ``PixelFlipping`` (the same deletion curve, black baseline, ``features_in_step``
pixels per step) runs beside it when Quantus can be imported; it is not one of imacs's
dependencies, so install it into a throwaway folder on ``PYTHONPATH`` (see
benchmarks/README.md). Results are written as JSON beside this file.
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

RESULTS = Path(__file__).resolve().parent / "results"


def small_cnn(classes: int = 10) -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 32, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(32, 64, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(64, classes),
    ).eval()


def best_of(repeats: int, run) -> float:  # type: ignore[no-untyped-def]
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return min(times)


def watched_predict(model: imacs.ModelAdapter, run) -> tuple[float, float, list[np.ndarray]]:  # type: ignore[no-untyped-def]
    """Run ``run()``; its seconds, the seconds inside ``model.predict``, and the batches
    it sent there (copied, in order)."""
    inside, calls = 0.0, []
    predict = model.predict

    def watching(images: np.ndarray, **options):  # type: ignore[no-untyped-def]
        nonlocal inside
        calls.append(np.array(images, copy=True))
        start = time.perf_counter()
        try:
            return predict(images, **options)
        finally:
            inside += time.perf_counter() - start

    model.predict = watching  # type: ignore[method-assign]
    try:
        total = best_of(1, run)
    finally:
        del model.predict  # back to the class's method
    return total, inside, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    n_images, size, n_steps, batch_size, repeats = (
        (8, 16, 8, 64, 2) if args.quick else (64, 32, 32, 256, 7)
    )
    torch.set_num_threads(2)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    network = small_cnn().to(device)
    model = imacs.load_model(network, device=device)
    rng = np.random.default_rng(0)
    images = rng.random((n_images, size, size, 3)).astype(np.float32)
    targets = model.predict(images).argmax(axis=1)
    maps = imacs.attribute(model, images, targets, method="gradient").maps
    deletion = imacs.get_component("measure", "deletion", n_steps=n_steps)

    def measure() -> None:
        deletion.evaluate(model, images, targets, maps, batch_size=batch_size)

    *_, calls = watched_predict(model, measure)
    unchanged = np.repeat(images, n_steps + 1, axis=0)

    def passes() -> None:
        for batch in calls:
            model.predict(batch, batch_size=batch_size)

    # alternated, so that a change in the machine's load falls on all three; the stack of
    # unchanged images is timed to show why it is not the floor
    floor, measured, unchanged_seconds = np.inf, np.inf, np.inf
    for _ in range(repeats):
        floor = min(floor, best_of(1, passes))
        measured = min(measured, best_of(1, measure))
        unchanged_seconds = min(
            unchanged_seconds,
            best_of(1, lambda: model.predict(unchanged, batch_size=batch_size)),
        )
    # and within one run: the run's time over the time it spent inside the model's calls,
    # which a busy machine slows alike
    in_run = [watched_predict(model, measure)[:2] for _ in range(repeats)]
    result = {
        "device": torch.cuda.get_device_name()
        if device == "cuda"
        else f"cpu ({platform.machine()})",
        "torch_threads": torch.get_num_threads(),
        "images": n_images,
        "size": size,
        "n_steps": n_steps,
        "batch_size": batch_size,
        "forward_passes": sum(len(batch) for batch in calls),
        "passes_seconds": floor,
        "imacs_seconds": measured,
        "imacs_over_passes": measured / floor,
        "unchanged_stack_seconds": unchanged_seconds,
        "passes_over_unchanged_stack": floor / unchanged_seconds,
        "imacs_over_its_own_passes_median": float(np.median([t / p for t, p in in_run])),
    }
    try:
        import quantus
    except ImportError as exc:
        result["quantus"] = f"not importable here: {exc}"
    else:
        pixel_flipping = quantus.PixelFlipping(
            features_in_step=size * size // n_steps,
            perturb_baseline="black",
            # Quantus 0.6.0 takes the area with np.trapz, which numpy 2.4 (our pin) no
            # longer has; its curves are the same work, so time those
            return_auc_per_sample=False,
            disable_warnings=True,
            display_progressbar=False,
        )
        channels_first = images.transpose(0, 3, 1, 2)
        a_batch = maps.sum(axis=3)[:, None]

        def run_quantus() -> None:
            pixel_flipping(
                model=network,
                x_batch=channels_first,
                y_batch=targets,
                a_batch=a_batch,
                device=device,
                batch_size=batch_size,
            )

        quantus_seconds = best_of(repeats, run_quantus)
        result |= {
            "quantus_version": quantus.__version__,
            "quantus_seconds": quantus_seconds,
            "quantus_over_imacs": quantus_seconds / measured,
        }
    for key, value in result.items():
        print(f"{key:>20}: {value:.4g}" if isinstance(value, float) else f"{key:>20}: {value}")
    if not args.quick:
        RESULTS.mkdir(exist_ok=True)
        name = "quality_speed_gpu.json" if device == "cuda" else "quality_speed.json"
        (RESULTS / name).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
