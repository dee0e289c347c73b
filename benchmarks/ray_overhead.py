"""Ray on this machine against one process on the same cores: what scale-out costs.

    .venv/bin/python benchmarks/ray_overhead.py                      # 2,000 images
    .venv/bin/python benchmarks/ray_overhead.py --images 250 500     # smaller sizes

For each size, the same comparison (``--images`` digits of 32x32 with random patch
shades, the demo's PyTorch CNN against its Keras twin loaded from files, Integrated
Gradients with ``--steps`` steps, every per-image stage, the positional maps, no causal
check) runs in this process (``executor="in-process"``) and on Ray
(``executor=RayExecutor()``: a Ray instance on this machine with ``--cpus`` CPUs, one actor
per CPU), each on a fresh store, the in-process run with the thread settings the actors
give themselves (``imacs.set_threads``; ``--in-process-threads default`` leaves the
frameworks' own), interleaved and alternating which goes first,
``--repeats`` times. Ray starts once before the runs (its start is reported apart). The
ratio is Ray's best wall time over the in-process best; the target is at most 1.10.

Also times the dispatch of ``--dispatch-tasks`` tasks that do nothing, through the pool
of plain actors the executor uses and through Ray Data's ``map_batches`` with an actor
pool (``ActorPoolStrategy``), the design Ray's docs suggest for batch inference: the
overhead each design adds per task.

Writes ``benchmarks/results/ray_overhead.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results"


def digits(n: int) -> tuple[np.ndarray, np.ndarray]:
    """``n`` digits of 32x32 with random patch shades, repeating the 1,797 with new shades."""
    from imacs.demo.data import shortcut_digits

    images, labels, seed = [], [], 0
    while sum(len(part) for part in images) < n:
        batch = shortcut_digits(shortcut=False, seed=seed)
        images.append(batch.images)
        labels.append(batch.labels)
        seed += 1
    return np.concatenate(images)[:n], np.concatenate(labels)[:n]


def model_files(folder: Path) -> tuple[str, str]:
    """The demo's PyTorch CNN and Keras CNN, trained one epoch, saved as files."""
    import torch

    from imacs.demo.models import train_keras_cnn, train_torch_cnn

    images, labels = digits(512)
    torch_path, keras_path = folder / "a.pt", folder / "b.keras"
    torch.save(train_torch_cnn(images, labels, epochs=1), torch_path)
    train_keras_cnn(images, labels, epochs=1).save(keras_path)
    return str(torch_path), str(keras_path)


def one_run(models: tuple[str, str], n: int, steps: int, executor: Any) -> dict[str, Any]:
    import imacs

    images, labels = digits(n)
    store = Path(tempfile.mkdtemp(prefix="ray-overhead-"))
    try:
        start = time.perf_counter()
        comparison = imacs.compare(
            imacs.load_model(models[0], trust=True),
            imacs.load_model(models[1]),
            images,
            labels,
            method_params={"n_steps": steps},
            causal="none",
            spatial=["positional"],
            store=store,
            executor=executor,
            progress=False,
        )
        seconds = time.perf_counter() - start
    finally:
        shutil.rmtree(store, ignore_errors=True)
    return {
        "seconds": seconds,
        "stages": {k: round(v, 3) for k, v in comparison.timings.items()},
        "regions": len(comparison.regions),
    }


def dispatch(n_tasks: int, workers: int) -> dict[str, float]:
    """Seconds to run ``n_tasks`` tasks that do nothing: plain actors, then Ray Data."""
    import ray
    from imacs_ray import RayExecutor
    from ray_overhead import _Nothing, _nothing  # by name, so that the workers import it

    executor = RayExecutor()  # the comparisons' pool of actors, one per CPU, started
    start = time.perf_counter()
    done = sum(1 for _ in executor.map(_nothing, range(n_tasks)))
    actors = time.perf_counter() - start
    assert done == n_tasks

    executor.shutdown()  # Ray Data needs the CPUs
    start = time.perf_counter()
    dataset = ray.data.from_items([{"id": i} for i in range(n_tasks)]).map_batches(
        _Nothing, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers)
    )
    rows = sum(1 for _ in dataset.iter_rows())
    data = time.perf_counter() - start
    assert rows == n_tasks
    return {"plain_actors_seconds": actors, "ray_data_seconds": data}


def _nothing(task: int) -> int:
    return task


class _Nothing:
    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, nargs="+", default=[2000])
    parser.add_argument("--steps", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--cpus", type=int, default=os.cpu_count() or 2)
    parser.add_argument("--dispatch-tasks", type=int, default=313)
    parser.add_argument(
        "--in-process-threads",
        choices=("matched", "default"),
        default="matched",
        help="matched: imacs.set_threads(--cpus) in this process, the settings each actor "
        "applies to itself (passive waiting, one thread per CPU); default: the frameworks' own",
    )
    parser.add_argument("--out", default=str(RESULTS / "ray_overhead.json"))
    args = parser.parse_args()
    if args.in_process_threads == "matched":
        import imacs

        # before torch or TensorFlow load, as the actors do: otherwise the in-process run
        # pays for threads that spin while they wait, and Ray wins by a setting
        imacs.set_threads(args.cpus)

    import ray
    from imacs_ray import RayExecutor

    folder = Path(tempfile.mkdtemp(prefix="ray-overhead-models-"))
    models = model_files(folder)
    # the benchmark module is imported by name on the workers (the dispatch check)
    os.environ["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(Path(__file__).parent), os.environ.get("PYTHONPATH")])
    )
    start = time.perf_counter()
    ray.init(num_cpus=args.cpus, include_dashboard=False, log_to_driver=False)
    ray_start = time.perf_counter() - start
    rows = []
    for n in args.images:
        runs: dict[str, list[dict[str, Any]]] = {"in-process": [], "ray": []}
        for repeat in range(args.repeats):
            order = ["in-process", "ray"] if repeat % 2 == 0 else ["ray", "in-process"]
            for name in order:
                executor = RayExecutor() if name == "ray" else "in-process"
                runs[name].append(one_run(models, n, args.steps, executor))
                print(n, name, round(runs[name][-1]["seconds"], 2), flush=True)
        best = {name: min(r["seconds"] for r in found) for name, found in runs.items()}
        rows.append(
            {
                "images": n,
                "in_process_seconds": best["in-process"],
                "ray_seconds": best["ray"],
                "ray_over_in_process": best["ray"] / best["in-process"],
                "runs": runs,
            }
        )
        print(f"{n} images: Ray / in-process = {rows[-1]['ray_over_in_process']:.3f}", flush=True)
    overhead = dispatch(args.dispatch_tasks, args.cpus)
    print("dispatch", overhead, flush=True)
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)
    result = {
        "benchmark": "ray_overhead",
        "command": "benchmarks/ray_overhead.py "
        + " ".join(f"--{k.replace('_', '-')} {v}" for k, v in vars(args).items() if k != "out"),
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "ray": ray.__version__,
            "note": "2 CPU cores shared with other work while measuring: timings are noisy",
        },
        "steps": args.steps,
        "ray_start_seconds": ray_start,
        "rows": rows,
        "dispatch": {"tasks": args.dispatch_tasks, **overhead},
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
