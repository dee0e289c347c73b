"""How many rows must the final k-means fit see? Labels and objective against a full fit.

``KMeansClusterer`` chooses k on a sample of the regions (``silhouette_sample``) and then
fits the chosen k. Fitting it on every region makes the clustering's memory and time
grow with the dataset: a float64 copy of every region's features, ``n_init`` restarts
over all of them. With ``fit_sample`` rows the restarts see a seeded sample only, and
Lloyd's iterations then go on over every region from the best restart's centres, a
chunk of rows at a time, until no label changes.

This measures what the sample costs in quality, on the features of a real comparison:
the planted-shortcut digits pair (``benchmarks/compare_speed.py``'s models) compared on
``--images`` digits with Integrated Gradients (16 steps); a clusterer passed to
``imacs.compare`` keeps the standardized features it is given. On those features, at
the k the comparison chose and at each ``--more-k`` (12 and 20):

- the reference: a fit on every row (``fit_sample=None``) with seed 0;
- the noise floor: fits on every row with seeds 1..``--seeds``, against the reference.
  k-means finds local optima, so two full fits differ too;
- for every candidate sample size, fits with seeds 0..``--seeds``: the adjusted Rand
  index of their labels against the reference, and their k-means objective (the sum of
  squared distances of every row to its centre) over the reference's; once as the
  clusterer fits (with Lloyd's iterations over all rows) and once with every row given
  its nearest sample centre only (rows marked "nearest").

At k = 12 and 20 the full fits with other seeds already disagree with the reference, so
a sample size is judged against their range: the default, 20,000, was the size whose
fits' objective stayed within the full fits' range at every k, with about their
agreement; smaller samples' objectives went up to 1.4% above the reference's
(docs/comparison.md has the table)::

    .venv/bin/python benchmarks/cluster_sample.py       # about 4 minutes on 2 CPU cores

Writes ``benchmarks/results/cluster_sample.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "cluster_sample.json"


def comparison_features(n_images: int, seed: int) -> tuple[np.ndarray, int]:
    """The standardized region features of one comparison, and the k it chose."""
    import imacs
    from imacs.comparison.clustering import KMeansClusterer
    from imacs.demo.data import shortcut_digits, split_indices
    from imacs.demo.models import train_torch_cnn

    kept: dict[str, Any] = {}

    class Keeping(KMeansClusterer):
        name = "kmeans-keeping"

        def _fit_predict(self, features: np.ndarray, seed: int) -> np.ndarray:
            kept["features"] = np.array(features, dtype=np.float32)
            labels = super()._fit_predict(features, seed)
            kept["k"] = self.chosen_k_
            return labels

    train_idx, _ = split_indices()
    models = []
    for shortcut in (False, True):
        data = shortcut_digits(train_idx, shortcut=shortcut, seed=seed)
        models.append(train_torch_cnn(data.images, data.labels, seed=seed))
    parts, repeat = [], 0
    while sum(len(p) for p in parts) < n_images:
        parts.append(shortcut_digits(shortcut=False, seed=100 + repeat).images)
        repeat += 1
    images = np.concatenate(parts)[:n_images]
    labels = np.tile(shortcut_digits(shortcut=False).labels, repeat)[:n_images]
    with tempfile.TemporaryDirectory() as store:
        imacs.compare(
            *models,
            images,
            labels,
            store=store,
            method_params={"n_steps": 16},
            clusterer=Keeping(),
            causal=None,
            progress=False,
        )
    return kept["features"], int(kept["k"])


def objective(features: np.ndarray, labels: np.ndarray) -> float:
    """The k-means objective of ``labels``: squared distances to each cluster's mean."""
    total = 0.0
    for cluster in np.unique(labels):
        rows = features[labels == cluster].astype(np.float64)
        total += float(((rows - rows.mean(axis=0)) ** 2).sum())
    return total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=10_000)
    parser.add_argument("--samples", type=int, nargs="+", default=[2500, 5000, 10_000, 20_000])
    parser.add_argument("--seeds", type=int, default=4, help="further seeds per fit")
    parser.add_argument(
        "--more-k",
        type=int,
        nargs="*",
        default=[12, 20],
        help="numbers of clusters fitted besides the one the comparison chose",
    )
    parser.add_argument("--seed", type=int, default=0, help="the models' training seed")
    parser.add_argument(
        "--keep", type=Path, help="an .npz file to keep the features in, and read them from"
    )
    args = parser.parse_args()

    from sklearn.cluster import KMeans
    from sklearn.metrics import adjusted_rand_score

    from imacs.comparison.clustering import KMeansClusterer, kmeans_plusplus

    start = time.perf_counter()
    if args.keep is not None and args.keep.exists():
        with np.load(args.keep) as kept:
            features, k = kept["features"], int(kept["k"])
    else:
        features, k = comparison_features(args.images, args.seed)
        if args.keep is not None:
            np.savez(args.keep, features=features, k=k)
    print(
        f"{args.images} images: {len(features)} regions x {features.shape[1]} features, k={k} "
        f"({time.perf_counter() - start:.0f} s)"
    )

    def fit(k: int, sample: int | None, seed: int, *, iterate: bool = True) -> tuple[Any, float]:
        began = time.perf_counter()
        if iterate or sample is None:
            clusterer = KMeansClusterer(n_clusters=k, fit_sample=sample)
            labels = clusterer.fit_predict(features, seed=seed)
        else:
            # the restarts on the same seeded sample, every row then given its nearest
            # centre, without Lloyd's iterations over all rows
            rows = np.sort(np.random.default_rng([seed, 1]).choice(len(features), sample, False))
            model = KMeans(n_clusters=k, n_init=10, random_state=seed, init=kmeans_plusplus)
            model.fit(features[rows].astype(np.float64))
            labels = model.predict(features.astype(np.float64))
        return labels, time.perf_counter() - began

    rows = []
    for k_fitted in [k, *(extra for extra in args.more_k if extra != k)]:
        reference, reference_s = fit(k_fitted, None, 0)
        reference_objective = objective(features, reference)
        print(
            f"k={k_fitted}: the reference, a fit on all {len(features)} rows with seed 0, "
            f"took {reference_s:.2f} s"
        )
        print(
            f"{'fit rows':>13} {'ARI min':>8} {'ARI median':>11} {'objective max':>14} "
            f"{'objective median':>17} {'s median':>9}"
        )
        runs = [(None, True)] + [
            (sample, iterate)
            for iterate in (True, False)
            for sample in args.samples
            if sample < len(features)
        ]
        for sample, iterate in runs:
            seeds = range(1, args.seeds + 1) if sample is None else range(args.seeds + 1)
            agreement, ratio, seconds = [], [], []
            for seed in seeds:
                labels, elapsed = fit(k_fitted, sample, seed, iterate=iterate)
                agreement.append(adjusted_rand_score(reference, labels))
                ratio.append(objective(features, labels) / reference_objective)
                seconds.append(elapsed)
            row = {
                "k": k_fitted,
                "fit_sample": sample,
                "lloyd_over_all_rows": iterate,
                "adjusted_rand": agreement,
                "objective_ratio": ratio,
                "seconds": seconds,
                "reference_seconds": reference_s,
            }
            rows.append(row)
            name = "all" if sample is None else f"{sample}{'' if iterate else ' nearest'}"
            print(
                f"{name:>13} {min(agreement):>8.4f} {np.median(agreement):>11.4f} "
                f"{max(ratio):>14.5f} {np.median(ratio):>17.5f} {np.median(seconds):>9.2f}"
            )
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(
        json.dumps(
            {
                "machine": platform.processor() or platform.machine(),
                "args": {**vars(args), "keep": str(args.keep) if args.keep else None},
                "n_regions": len(features),
                "n_features": features.shape[1],
                "k": k,
                "rows": rows,
            },
            indent=2,
        )
        + "\n"
    )
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
