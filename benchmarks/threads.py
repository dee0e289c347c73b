"""PyTorch and Keras in one process, on a quiet and on a busy machine: thread settings.

    .venv/bin/python benchmarks/threads.py                 # about 4 minutes on 2 cores
    .venv/bin/python benchmarks/threads.py --repeats 1     # a quicker look

Times the attribution stage of a comparison (Integrated Gradients, ``--steps`` steps, on
``--images`` digits of 32x32) for the demo's PyTorch CNN and its Keras twin (same
shape, trained one epoch: weights do not change the cost), each in a fresh process:

- ``torch alone`` and ``keras alone``: a process that imports only that framework;
- ``mixed``: one process that loads both models and attributes one after the other, as
  ``imacs.compare`` does, ``--repeats`` times; its time is the sum of the two;

under two settings: ``default`` (nothing set) and ``set_threads`` (``imacs.set_threads(2)``
before the frameworks load: passive OpenMP waiting, 2 intra-op threads each, 1 TensorFlow
inter-op thread), and with the machine otherwise idle (``quiet``) or with one competing
busy process (``python -c "while True: pass"``) running throughout (``busy``). Each time
is the best of ``--repeats`` runs in the process. The targets: mixed / (torch alone +
keras alone) <= 1.15, and busy / quiet <= 2.5 for the mixed run.

Writes ``benchmarks/results/threads.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"

CHILD = """
import json, sys, time
mode, setting, n_images, n_steps, repeats = sys.argv[1], sys.argv[2], *map(int, sys.argv[3:6])
import imacs
if setting == "set_threads":
    applied = imacs.set_threads(2)
import numpy as np
from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.demo.data import shortcut_digits
digits = shortcut_digits(shortcut=False, seed=0)
train, labels = digits.images[:256], digits.labels[:256]
images = digits.images[:n_images]
models = {}
if mode in ("torch", "mixed"):
    from imacs.demo.models import train_torch_cnn
    models["torch"] = imacs.load_model(train_torch_cnn(train, labels, epochs=1), device="cpu")
if mode in ("keras", "mixed"):
    from imacs.demo.models import train_keras_cnn
    models["keras"] = imacs.load_model(train_keras_cnn(train, labels, epochs=1))
method = IntegratedGradients(n_steps=n_steps)
targets = np.zeros(n_images, dtype=int)
for model in models.values():  # warm-up: first calls trace and allocate
    method.attribute(model, images[:4], targets[:4], batch_size=64)
best = {name: float("inf") for name in models}
for _ in range(repeats):
    for name, model in models.items():
        start = time.perf_counter()
        method.attribute(model, images, targets, batch_size=64)
        best[name] = min(best[name], time.perf_counter() - start)
loaded = [m for m in ("torch", "tensorflow") if m in sys.modules]
print(json.dumps({"seconds": best, "loaded": loaded}))
"""


def run_child(mode: str, setting: str, args: argparse.Namespace) -> dict:
    out = subprocess.run(
        [sys.executable, "-c", CHILD, mode, setting]
        + [str(v) for v in (args.images, args.steps, args.repeats)],
        capture_output=True,
        text=True,
        check=True,
        env={**__import__("os").environ, "TF_CPP_MIN_LOG_LEVEL": "2"},
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", type=int, default=64)
    parser.add_argument("--steps", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--settings", default="default,set_threads")
    args = parser.parse_args()
    rows = []
    for load in ("quiet", "busy"):
        busy = None
        if load == "busy":
            busy = subprocess.Popen([sys.executable, "-c", "while True: pass"])
        try:
            for setting in args.settings.split(","):
                times = {
                    mode: run_child(mode, setting, args) for mode in ("torch", "keras", "mixed")
                }
                alone = times["torch"]["seconds"]["torch"] + times["keras"]["seconds"]["keras"]
                mixed = sum(times["mixed"]["seconds"].values())
                row = {
                    "load": load,
                    "setting": setting,
                    "torch_alone_s": times["torch"]["seconds"]["torch"],
                    "keras_alone_s": times["keras"]["seconds"]["keras"],
                    "mixed_torch_s": times["mixed"]["seconds"]["torch"],
                    "mixed_keras_s": times["mixed"]["seconds"]["keras"],
                    "mixed_over_alone": mixed / alone,
                    "loaded": {mode: t["loaded"] for mode, t in times.items()},
                }
                rows.append(row)
                print(
                    f"{load:5s} {setting:11s} torch alone {row['torch_alone_s']:.2f} s, "
                    f"keras alone {row['keras_alone_s']:.2f} s, mixed {row['mixed_torch_s']:.2f}"
                    f" + {row['mixed_keras_s']:.2f} s = {mixed / alone:.2f}x the sum",
                    flush=True,
                )
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
    for setting in args.settings.split(","):
        quiet, busy_row = (
            next(r for r in rows if r["load"] == load and r["setting"] == setting)
            for load in ("quiet", "busy")
        )
        ratio = (busy_row["mixed_torch_s"] + busy_row["mixed_keras_s"]) / (
            quiet["mixed_torch_s"] + quiet["mixed_keras_s"]
        )
        busy_row["mixed_busy_over_quiet"] = ratio
        print(f"{setting}: mixed run busy / quiet = {ratio:.2f}x")
    RESULTS.mkdir(exist_ok=True)
    out = RESULTS / "threads.json"
    out.write_text(
        json.dumps(
            {"machine": platform.platform(), "args": vars(args), "rows": rows},
            indent=2,
        )
    )
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
