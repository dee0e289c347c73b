"""How large a difference can two models trained alike produce? The basis of ``min_effect``.

For each seed, trains on the demo digits (``imacs.demo.data``) a PyTorch CNN with random
corner-patch shades (A), one whose patch shade encodes the label (B, the planted
shortcut), and A's seed-twin (A's recipe and data, another weight seed). Compares A with
B and A with its twin on 200 held-out digits with random shades, and records per seed:

- the planted comparison's top cluster: its difference, interval, significance and the
  share of its pixels inside the patch;
- the twin comparison's largest ``|difference|`` overall and among significant clusters.

``min_effect``'s default must sit above what twins produce and below what the planted
shortcut produces. Run::

    .venv/bin/python benchmarks/seed_twins.py [--seeds 10] [--targets own]

and read ``benchmarks/results/seed_twins.json``.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

import imacs
from imacs.demo.data import shortcut_digits, split_indices
from imacs.demo.models import train_torch_cnn
from imacs.testing.planted import patch_share

N_TEST = 200


def trained(seed: int, shortcut: bool, model_seed: int) -> Any:
    train, _ = split_indices()
    data = shortcut_digits(train, shortcut=shortcut, seed=seed)
    return train_torch_cnn(data.images, data.labels, seed=model_seed)


def run_seed(seed: int, targets: str, store: str) -> dict[str, Any]:
    _, test = split_indices()
    data = shortcut_digits(test[:N_TEST], shortcut=False, seed=1000 + seed)
    settings = {"method_params": {"n_steps": 16}, "progress": False, "targets": targets}
    model_a = trained(seed, shortcut=False, model_seed=seed)
    model_b = trained(seed, shortcut=True, model_seed=seed)
    twin = trained(seed, shortcut=False, model_seed=seed + 100)
    planted = imacs.compare(model_a, model_b, data.images, data.labels, store=store, **settings)
    noise = imacs.compare(model_a, twin, data.images, data.labels, store=store, **settings)
    top = planted.clusters.iloc[0]
    significant = noise.clusters[noise.clusters["significant"]]
    return {
        "seed": seed,
        "planted_top": {
            "difference": float(top["difference"]),
            "ci": [float(top["ci_low"]), float(top["ci_high"])],
            "significant": bool(top["significant"]),
            "patch_share": patch_share(planted, int(top["cluster"])),
            "n_clusters": len(planted.clusters),
        },
        "twins": {
            "largest_difference": float(np.abs(noise.clusters["difference"]).max()),
            "largest_significant_difference": float(
                np.abs(significant["difference"]).max() if len(significant) else 0.0
            ),
            "significant_clusters": len(significant),
            "n_clusters": len(noise.clusters),
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--targets", default="own", choices=["own", "label"])
    parser.add_argument("--out", default=str(Path(__file__).parent / "results" / "seed_twins.json"))
    args = parser.parse_args()
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as store:
        for seed in range(args.seeds):
            rows.append(run_seed(seed, args.targets, store))
            print(json.dumps(rows[-1]), flush=True)
    twins = [r["twins"]["largest_difference"] for r in rows]
    planted = [abs(r["planted_top"]["difference"]) for r in rows]
    summary = {
        "targets": args.targets,
        "seconds": round(time.perf_counter() - start, 1),
        "twins_largest_difference": {"max": max(twins), "median": float(np.median(twins))},
        "planted_top_difference": {"min": min(planted), "median": float(np.median(planted))},
        "seeds": rows,
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2) + "\n")
    print(json.dumps({k: v for k, v in summary.items() if k != "seeds"}, indent=2))


if __name__ == "__main__":
    main()
