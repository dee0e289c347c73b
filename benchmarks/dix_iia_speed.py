"""What DIX, IIA2 and IIA3 cost against the passes their formulas need.

On the demo's PyTorch CNN (``imacs.demo.models``, 32x32 digits, CPU), each method is
timed against the bare adapter calls its formula needs, made with the same arrays'
shapes and the same ``batch_size``: per image with ``n`` steps,

- DIX: one forward pass to the layer, ``n`` forward and backward passes of the tail;
- IIA2: ``n`` forward passes to the layer, ``n^2`` tail passes;
- IIA3: ``n`` passes to the inner layer, ``n^2`` from it to the layer, ``n^3`` tail passes.

The ratio (method / bare passes, best of each over ``--repeats`` interleaved runs, and the
median of the ratios of each method run to the bare run right after it) is the method's
overhead: path points, references, the Riemann sums and the upsampling. It is given in
the calling thread's CPU time (torch runs on one thread, so that is all the work, and
other programs on a shared machine change it less) and in wall-clock time; and within a
run, as the run's CPU time over that of the adapter calls it makes, which a busy moment
slows alike. The inputs each method sends to the model are counted too, and must equal
the formula's. Results go to ``benchmarks/results/dix_iia_speed.json``::

    .venv/bin/python benchmarks/dix_iia_speed.py          # about a minute on 2 cores
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

import imacs
from imacs.attribution.dix import DIX
from imacs.attribution.iia import IIA2, IIA3
from imacs.demo.data import shortcut_digits
from imacs.demo.models import train_torch_cnn
from imacs.testing import RecordingAdapter

RESULTS = Path(__file__).parent / "results" / "dix_iia_speed.json"


class CountingAdapter(RecordingAdapter):
    """Counts every input the method sends, by the capability it is sent to."""

    def __init__(self, adapter: Any):
        super().__init__(adapter)
        self.inputs: dict[str, int] = {}

    def _count(self, kind: str, n: int) -> None:
        self.inputs[kind] = self.inputs.get(kind, 0) + n

    def _layer_activations(self, inputs: np.ndarray, layer: str, from_layer: str | None) -> Any:
        self._count(
            f"forward to {layer}" + (f" from {from_layer}" if from_layer else ""), len(inputs)
        )
        return super()._layer_activations(inputs, layer, from_layer)

    def _injected_gradients(self, activations: np.ndarray, targets: np.ndarray, layer: str) -> Any:
        self._count(f"tail from {layer}", len(activations))
        return super()._injected_gradients(activations, targets, layer)


def within_run(method: Any, model: Any, images: np.ndarray, targets: np.ndarray, bs: int) -> float:
    """One run's CPU time over the CPU time of the adapter calls made in it.

    The method's own passes stand in for the bare ones, timed in the same run, so a busy
    moment of the machine slows both alike.
    """
    inside = [0.0]
    originals = {name: getattr(model, name) for name in ("layer_activations", "injected_gradients")}

    def clocked(function: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            start = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                inside[0] += time.thread_time() - start

        return call

    for name, function in originals.items():
        setattr(model, name, clocked(function))
    try:
        start = time.thread_time()
        method.attribute(model, images, targets, batch_size=bs)
        total = time.thread_time() - start
    finally:
        for name in originals:
            delattr(model, name)
    return total / inside[0]


def timed(function: Any) -> tuple[float, float]:
    """Wall-clock and CPU seconds of one call. With one torch thread every pass runs on
    the calling thread, so its CPU time is the call's work, whatever else the machine runs."""
    wall, cpu = time.perf_counter(), time.thread_time()
    function()
    return time.perf_counter() - wall, time.thread_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument(
        "--layer",
        default="4",
        help="the last integrated layer; default '4', the second convolution's ReLU (16x16x16),"
        " whose tail (pooling, a convolution, the classifier) is the network's larger half",
    )
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)  # one core: steadier timings on a shared machine

    data = shortcut_digits(slice(0, 300), shortcut=False, seed=0)
    model = imacs.load_model(
        train_torch_cnn(data.images, data.labels, epochs=2),
        device="cpu",
        batch_size=args.batch_size,
    )
    images, targets = data.images[: args.images], data.labels[: args.images]
    n, bs = args.steps, args.batch_size
    layer = args.layer
    inner = (
        IIA3(layer=layer, steps=1)
        .attribute(model, images[:1], targets[:1], batch_size=bs)
        .params["inner_layer"]
    )

    rng = np.random.default_rng(0)
    u = model.layer_activations(images, layer)
    inner_u = model.layer_activations(images, inner)

    def like(a: np.ndarray, count: int) -> np.ndarray:
        return rng.random((len(a) * count, *a.shape[1:]), dtype=np.float32)

    def repeat(count: int) -> np.ndarray:
        return np.repeat(targets, count)

    x_n = like(images, n)
    tail = {k: like(u, n**k) for k in (1, 2, 3)}
    middle = like(inner_u, n**2)
    bare = {
        "dix": lambda: (
            model.layer_activations(images, layer, batch_size=bs),
            model.injected_gradients(tail[1], repeat(n), layer, batch_size=bs),
        ),
        "iia2": lambda: (
            model.layer_activations(x_n, layer, batch_size=bs),
            model.injected_gradients(tail[2], repeat(n**2), layer, batch_size=bs),
        ),
        "iia3": lambda: (
            model.layer_activations(x_n, inner, batch_size=bs),
            model.layer_activations(middle, layer, from_layer=inner, batch_size=bs),
            model.injected_gradients(tail[3], repeat(n**3), layer, batch_size=bs),
        ),
    }
    needed = {
        "dix": {f"forward to {layer}": len(images), f"tail from {layer}": len(images) * n},
        "iia2": {f"forward to {layer}": len(images) * n, f"tail from {layer}": len(images) * n**2},
        "iia3": {
            f"forward to {inner}": len(images) * n,
            f"forward to {layer} from {inner}": len(images) * n**2,
            f"tail from {layer}": len(images) * n**3,
        },
    }
    methods = {
        "dix": DIX(layer=layer, steps=n),
        "iia2": IIA2(layer=layer, steps=n),
        "iia3": IIA3(layer=layer, steps=n, inner_layer=inner),
    }
    rows = {}
    for name, method in methods.items():
        counting = CountingAdapter(model)
        method.attribute(counting, images, targets, batch_size=bs)
        assert counting.inputs == needed[name], (name, counting.inputs, needed[name])
        # interleaved, best of each: the machine is shared, and the best time is the
        # one least disturbed by others
        method_times, bare_times = [], []
        for _ in range(args.repeats):
            method_times.append(
                timed(lambda m=method: m.attribute(model, images, targets, batch_size=bs))
            )
            bare_times.append(timed(bare[name]))
        row: dict[str, Any] = {"inputs_sent": counting.inputs}
        for k, clock in enumerate(("wall", "cpu")):
            method_time = min(t[k] for t in method_times)
            bare_time = min(t[k] for t in bare_times)
            paired = [m[k] / b[k] for m, b in zip(method_times, bare_times, strict=True)]
            row[clock] = {
                "method_s": round(method_time, 4),
                "bare_passes_s": round(bare_time, 4),
                "ratio": round(method_time / bare_time, 3),
                "median_paired_ratio": round(float(np.median(paired)), 3),
            }
        ratios = [within_run(method, model, images, targets, bs) for _ in range(args.repeats)]
        row["within_run"] = {
            "best_ratio": round(min(ratios), 3),
            "median_ratio": round(float(np.median(ratios)), 3),
        }
        rows[name] = row
        print(
            f"{name}: ratio {row['cpu']['ratio']:.3f} in CPU time "
            f"({row['cpu']['method_s']:.3f} s against {row['cpu']['bare_passes_s']:.3f} s; "
            f"median of paired runs {row['cpu']['median_paired_ratio']:.3f}), "
            f"{row['wall']['ratio']:.3f} in wall-clock time "
            f"(median of paired runs {row['wall']['median_paired_ratio']:.3f}); within a run "
            f"{row['within_run']['median_ratio']:.3f} (median), "
            f"{row['within_run']['best_ratio']:.3f} (best)",
            flush=True,
        )
    result = {
        "model": "imacs.demo.models.train_torch_cnn (digits, 32x32, 2 epochs), CPU, 1 thread",
        "images": len(images),
        "steps": n,
        "batch_size": bs,
        "layer": layer,
        "inner_layer": inner,
        "command": "benchmarks/dix_iia_speed.py",
        "methods": rows,
    }
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
