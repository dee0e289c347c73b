"""Does the top cluster hold the planted feature? Segmenter, k search, targets and map sign.

Two planted sets, each with a clean model A, a shortcut model B and A's seed-twin (A's
recipe and data, another weight seed):

- ``digits``: the demo's digits (``imacs.demo.data``), whose corner patch shade encodes
  the label for B; A, B and the twin are PyTorch CNNs, as in
  ``tests/comparison/test_planted_shortcut.py``;
- ``textures``: scikit-image's brick, grass and gravel textures
  (``imacs.demo.watermark``), with a 9x9 watermark on exactly B's gravel images; A and
  the twin in PyTorch, B in Keras.

The chosen defaults are also checked on four more sets: the digits with A in PyTorch and
B in Keras and the other way round (the twin in A's framework), the textures with A in
Keras and B in PyTorch, and the textures at 224x224 pixels (watermark 63x63)::

    .venv/bin/python benchmarks/planted_clusters.py --defaults \\
        --sets "digits torch-keras" "digits keras-torch" "textures keras-torch"
    .venv/bin/python benchmarks/planted_clusters.py --defaults --sets "textures 224px" --seeds 3

For every seed and every candidate setting, compares A with B and A with the twin on
200 held-out images (planted feature on every digit, on a random half of the textures;
IG with 16 steps) and records the top cluster's coverage of the planted pixels among
salient regions (``planted_coverage``), the share of its pixels inside the planted
feature (``patch_share``), its difference, significance and whether it is meaningful,
the chosen k, and the twins' largest ``|difference|`` and meaningful clusters.

A candidate is found on a seed when the top cluster has the planted difference's sign,
is significant and meaningful, holds at least 70% of the planted pixels and has most of
its own pixels inside the planted feature. A model-free table of how each segmenter cuts
the planted features comes first.

Trained models are kept in ``--cache`` (keyed by set, recipe, role and seed) with a store
of maps and segmentations, so a rerun, or a run of other candidates, trains nothing and
attributes only what a new target choice needs::

    .venv/bin/python benchmarks/planted_clusters.py          # all: 16 min on 2 cores, cached
    .venv/bin/python benchmarks/planted_clusters.py --candidates current own --seeds 3
    .venv/bin/python benchmarks/planted_clusters.py --table-only   # the docs' tables

Results are merged into ``benchmarks/results/planted_clusters.json`` by candidate and
set; docs/comparison.md and docs/segmentation.md show them.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

RESULTS = Path(__file__).resolve().parent / "results" / "planted_clusters.json"
N_TEST = 200
#: the textures' training set and epochs. With 12 epochs the small CNN often learns the
#: watermark shortcut only in part: over 10 seeds, a PyTorch B trained on 900 images
#: predicted gravel on as few as 21% of the marked held-out images. With this recipe the
#: weakest B of either framework still does on 65%, most on all of them
N_TRAIN_TEXTURES = 600
EPOCHS_TEXTURES = 24
#: what every candidate shares; the causal check is left out, it does not change the ranking
COMMON: dict[str, Any] = {
    "method_params": {"n_steps": 16},
    "progress": False,
    "causal": None,
}
#: the settings before this benchmark, spelled out so that they stay comparable
BEFORE: dict[str, Any] = {
    "segmenter": "felzenszwalb",
    "segmenter_params": {"resize_to": "auto"},
    "targets": "label",
}


def _felzenszwalb(**params: Any) -> dict[str, Any]:
    return {"segmenter": "felzenszwalb", "segmenter_params": {"resize_to": "auto", **params}}


#: the segmentation chosen as the default, and the one before it that came closest
CHOSEN = "fz-scale100-sigma3.5-min1000"
RUNNER_UP = "fz-min500"

#: candidate name -> the compare() arguments it changes from BEFORE. First targets and map
#: sign at the old segmentation; then segmentations, each with targets="own"; then targets
#: and sign again at the two best segmentations; then the search for k; then the chosen
#: settings with the models' roles swapped, where the planted difference must be negative.
CANDIDATES: dict[str, dict[str, Any]] = {
    "current": {},
    "own": {"targets": "own"},
    "absolute": {"map_sign": "absolute"},
    "own-absolute": {"targets": "own", "map_sign": "absolute"},
}
SEGMENTERS: dict[str, dict[str, Any]] = {
    f"fz-min{min_size}": _felzenszwalb(min_size=min_size)
    for min_size in (300, 500, 700, 1000, 1500)
}
for _scale, _min_size in ((100, 1000), (200, 700), (400, 700)):
    SEGMENTERS[f"fz-scale{_scale}-sigma3.5-min{_min_size}"] = _felzenszwalb(
        scale=_scale, sigma=3.5, min_size=_min_size
    )
for _n_segments in (16, 30):
    SEGMENTERS[f"slic-{_n_segments}"] = {
        "segmenter": "slic",
        "segmenter_params": {"n_segments": _n_segments},
    }
for _name, _segmenter in SEGMENTERS.items():
    CANDIDATES[f"{_name}+own"] = {**_segmenter, "targets": "own"}
for _name in (RUNNER_UP, CHOSEN):
    CANDIDATES[_name] = SEGMENTERS[_name]
    CANDIDATES[f"{_name}+absolute"] = {**SEGMENTERS[_name], "map_sign": "absolute"}
    CANDIDATES[f"{_name}+own-absolute"] = {
        **SEGMENTERS[_name],
        "targets": "own",
        "map_sign": "absolute",
    }
_K_SEARCHES: dict[str, dict[str, Any]] = {
    "silhouette 2-20": {"k_range": (2, 20)},
    "silhouette 8-20": {"k_range": (8, 20)},
    "k=8": {"n_clusters": 8},
    "k=12": {"n_clusters": 12},
}
for _name in (RUNNER_UP, CHOSEN):
    for _search, _params in _K_SEARCHES.items():
        CANDIDATES[f"{_name}+own, {_search}"] = {
            **CANDIDATES[f"{_name}+own"],
            "clusterer_params": _params,
        }
CANDIDATES[f"{CHOSEN}+own, shortcut model as A"] = {**CANDIDATES[f"{CHOSEN}+own"], "reverse": True}


@dataclass
class PlantedSet:
    """Test images, labels, the planted pixels per image and the three trained models."""

    images: np.ndarray
    labels: np.ndarray
    mask: np.ndarray
    model_a: Any
    model_b: Any
    twin: Any


def _cached_torch(path: Path, train: Callable[[], Any]) -> Any:
    import torch

    if path.exists():
        # a model this script pickled itself
        return torch.load(path, weights_only=False)
    model = train()
    torch.save(model, path)
    return model


def _cached_keras(path: Path, train: Callable[[], Any]) -> Any:
    import keras

    if path.exists():
        return keras.models.load_model(path)
    model = train()
    model.save(path)
    return model


def _trained(framework: str, path: Path, **kwargs: Any) -> Any:
    """A model of the demo's shape in ``framework``, trained by ``train`` or read from ``path``."""
    from imacs.demo.models import train_keras_cnn, train_torch_cnn

    if framework == "torch":
        return _cached_torch(path.with_suffix(".pt"), lambda: train_torch_cnn(**kwargs))
    return _cached_keras(path.with_suffix(".keras"), lambda: train_keras_cnn(**kwargs))


def digits_set(seed: int, cache: Path, a: str = "torch", b: str = "torch") -> PlantedSet:
    """The demo's digits; A and its twin in framework ``a``, B in ``b``."""
    from imacs.demo.data import PATCH, shortcut_digits, split_indices

    train, test = split_indices()

    def model(framework: str, shortcut: bool, model_seed: int) -> Any:
        data = shortcut_digits(train, shortcut=shortcut, seed=seed)
        name = f"digits-{'shortcut' if shortcut else 'clean'}-{seed}-{model_seed}"
        return _trained(
            framework,
            cache / name,
            images=data.images,
            labels=data.labels,
            seed=model_seed,
        )

    data = shortcut_digits(test[:N_TEST], shortcut=False, seed=1000 + seed)
    mask = np.zeros((N_TEST, 32, 32), dtype=bool)
    mask[:, :PATCH, :PATCH] = True
    return PlantedSet(
        data.images,
        data.labels,
        mask,
        model(a, False, seed),
        model(b, True, seed),
        model(a, False, seed + 100),
    )


def textures_set(
    seed: int, cache: Path, a: str = "torch", b: str = "keras", size: int = 32
) -> PlantedSet:
    """The watermarked textures at ``size`` pixels; A and its twin in ``a``, B in ``b``."""
    from imacs.demo.watermark import watermark_mask, watermarked_textures

    clean = watermarked_textures(N_TRAIN_TEXTURES, seed=seed, size=size)
    shortcut = watermarked_textures(N_TRAIN_TEXTURES, shortcut_class=2, seed=seed, size=size)
    recipe = f"{N_TRAIN_TEXTURES}x{EPOCHS_TEXTURES}" + ("" if size == 32 else f"-{size}px")

    def model(framework: str, planted: bool, model_seed: int) -> Any:
        data = shortcut if planted else clean
        name = f"textures-{'shortcut' if planted else 'clean'}-{recipe}-{seed}-{model_seed}"
        return _trained(
            framework,
            cache / name,
            images=data.images,
            labels=data.labels,
            seed=model_seed,
            epochs=EPOCHS_TEXTURES,
        )

    data = watermarked_textures(N_TEST, seed=1000 + seed, size=size)
    mask = data.marked[:, None, None] & watermark_mask(size)[None]
    return PlantedSet(
        data.images,
        data.labels,
        mask,
        model(a, False, seed),
        model(b, True, seed),
        model(a, False, seed + 100),
    )


#: set name -> how to build it for a seed. "digits" and "textures" are the sets the
#: defaults were chosen on; the others check them across frameworks both ways and on
#: 224x224 images
SETS: dict[str, Callable[[int, Path], PlantedSet]] = {
    "digits": digits_set,
    "digits torch-keras": partial(digits_set, a="torch", b="keras"),
    "digits keras-torch": partial(digits_set, a="keras", b="torch"),
    "textures": textures_set,
    "textures keras-torch": partial(textures_set, a="keras", b="torch"),
    "textures 224px": partial(textures_set, size=224),
}


def measure(planted: PlantedSet, settings: dict[str, Any], store: str) -> dict[str, Any]:
    """One candidate on one seed: the planted pair's top cluster and the twins' largest."""
    import imacs
    from imacs.comparison.clustering import KMeansClusterer
    from imacs.testing.planted import patch_share, planted_coverage

    settings = dict(settings)
    clusterer_params = settings.pop("clusterer_params", {})
    # the other direction: the clean model is B, so the planted difference is negative
    sign = -1 if settings.pop("reverse", False) else 1
    model_a, model_b = (planted.model_a, planted.model_b)[::sign]
    # an instance per comparison, so that its silhouette scores can be read afterwards
    clusterer = KMeansClusterer(**clusterer_params)
    start = time.perf_counter()
    found = imacs.compare(
        model_a,
        model_b,
        planted.images,
        planted.labels,
        store=store,
        clusterer=clusterer,
        **settings,
    )
    seconds = time.perf_counter() - start
    clusters = found.clusters
    top = clusters.iloc[0]
    cluster = int(top["cluster"])
    coverage = {int(c): planted_coverage(found, int(c), planted.mask) for c in clusters["cluster"]}
    best = max(coverage, key=lambda c: coverage[c])
    after = sum(
        found.timings.get(stage, 0.0)
        for stage in ("segment", "score", "featurize", "cluster", "statistics")
    )
    twins = imacs.compare(
        planted.model_a,
        planted.twin,
        planted.images,
        planted.labels,
        store=store,
        clusterer=KMeansClusterer(**clusterer_params),
        **settings,
    ).clusters
    row = {
        "top": {
            "coverage": coverage[cluster],
            "patch_share": patch_share(found, cluster, planted.mask),
            "difference": float(top["difference"]),
            "q_value": float(top["q_value"]),
            "significant": bool(top["significant"]),
            "meaningful": bool(top["meaningful"]),
        },
        "k": len(clusters),
        "silhouette": {int(k): round(v, 4) for k, v in clusterer.silhouette_scores_.items()},
        "regions_per_image": len(found.regions) / len(planted.images),
        "segments_per_image": float(found.images["n_regions"].mean()),
        "best_covering_rank": int(clusters.index[clusters["cluster"] == best][0]) + 1,
        "best_coverage": coverage[best],
        "twins": {
            "largest_difference": float(np.abs(twins["difference"]).max()),
            "meaningful_clusters": int(twins["meaningful"].sum()),
            "k": len(twins),
        },
        "seconds": seconds,
        "after_attribution_ms_per_image": 1000 * after / len(planted.images),
    }
    t = row["top"]
    row["found"] = bool(
        t["coverage"] >= 0.7
        and t["patch_share"] > 0.5
        and sign * t["difference"] > 0
        and t["significant"]
        and t["meaningful"]
    )
    return row


class ColourMerge:
    """Felzenszwalb's segments, then adjacent ones merged while their mean colours are close.

    A candidate that only this benchmark defines: scikit-image's region adjacency graph
    (``skimage.graph.rag_mean_color``) cut at ``threshold`` (Euclidean distance of mean
    colours in the image's own range).
    """

    def __init__(self, threshold: float, **felzenszwalb: Any) -> None:
        from imacs.segmentation.felzenszwalb import Felzenszwalb

        self.threshold = threshold
        self.base = Felzenszwalb(**felzenszwalb)

    def segment(self, image: np.ndarray) -> np.ndarray:
        from skimage import graph

        labels = self.base.segment(image)
        adjacency = graph.rag_mean_color(image, labels, mode="distance")
        return np.asarray(graph.cut_threshold(labels, adjacency, self.threshold))


def segmenter_candidates() -> dict[str, Any]:
    """The segmentations compared model-free: how each cuts the planted feature."""
    from imacs.segmentation.felzenszwalb import Felzenszwalb
    from imacs.segmentation.slic import Slic

    candidates: dict[str, Any] = {
        "felzenszwalb, XRAI's settings at 224x224": Felzenszwalb(),
        "felzenszwalb auto (min_size 150)": Felzenszwalb(resize_to="auto"),
    }
    for name, candidate in SEGMENTERS.items():
        params = candidate["segmenter_params"]
        if name.startswith("fz-"):
            described = ", ".join(f"{k} {v}" for k, v in params.items() if k != "resize_to")
            candidates[f"felzenszwalb auto, {described}"] = Felzenszwalb(**params)
        else:
            candidates[f"slic, n_segments {params['n_segments']}"] = Slic(**params)
    for threshold in (0.1, 0.2):
        candidates[f"auto + colour merge {threshold}"] = ColourMerge(threshold, resize_to="auto")
        candidates[f"auto, min_size 500 + colour merge {threshold}"] = ColourMerge(
            threshold, resize_to="auto", min_size=500
        )
    return candidates


def segmentation_study(seed: int = 0) -> dict[str, Any]:
    """Per segmenter and planted set: regions per image, and pieces of the planted feature.

    No model is involved: how many segments the planted pixels fall into, the largest
    piece's share of them, and the milliseconds per image.
    """
    from imacs.demo.data import PATCH, shortcut_digits, split_indices
    from imacs.demo.watermark import watermark_mask, watermarked_textures

    _, test = split_indices()
    digits = shortcut_digits(test[:N_TEST], shortcut=False, seed=1000 + seed).images
    patch = np.zeros((32, 32), dtype=bool)
    patch[:PATCH, :PATCH] = True
    textures = watermarked_textures(N_TEST, seed=1000 + seed)
    large = watermarked_textures(N_TEST // 4, seed=1000 + seed, size=224)
    sets = {
        "digits": (digits, patch),
        "textures": (textures.images[textures.marked], watermark_mask()),
        "textures 224px": (large.images[large.marked], watermark_mask(224)),
    }
    study: dict[str, Any] = {}
    for name, segmenter in segmenter_candidates().items():
        study[name] = {}
        for set_name, (images, mask) in sets.items():
            start = time.perf_counter()
            labels = [segmenter.segment(image) for image in images]
            seconds = time.perf_counter() - start
            pieces, largest = [], []
            for label_map in labels:
                _, counts = np.unique(label_map[mask], return_counts=True)
                pieces.append(len(counts))
                largest.append(counts.max() / mask.sum())
            study[name][set_name] = {
                "segments_per_image": float(np.mean([len(np.unique(m)) for m in labels])),
                "planted_pieces": float(np.mean(pieces)),
                "largest_piece_share": float(np.mean(largest)),
                "ms_per_image": 1000 * seconds / len(images),
            }
    return study


def summarise(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the docs' table shows for one candidate on one set."""
    coverage = [r["top"]["coverage"] for r in rows]
    differences = [r["top"]["difference"] for r in rows]
    twins = [r["twins"]["largest_difference"] for r in rows]
    return {
        "seeds": len(rows),
        "found": sum(r["found"] for r in rows),
        "coverage_median": float(np.median(coverage)),
        "coverage_min": float(np.min(coverage)),
        "coverage_at_least_0.7": sum(c >= 0.7 for c in coverage),
        "top_difference_median": float(np.median(differences)),
        "top_difference_nearest_zero": min(differences, key=abs),
        "k_median": float(np.median([r["k"] for r in rows])),
        "k_range": [min(r["k"] for r in rows), max(r["k"] for r in rows)],
        "segments_per_image": float(np.mean([r["segments_per_image"] for r in rows])),
        "twins_quiet": sum(r["twins"]["meaningful_clusters"] == 0 for r in rows),
        "twins_largest_difference_max": float(np.max(twins)),
        "twins_largest_difference_median": float(np.median(twins)),
        "after_attribution_ms_per_image": float(
            np.median([r["after_attribution_ms_per_image"] for r in rows])
        ),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument(
        "--sets",
        nargs="+",
        default=["digits", "textures"],
        choices=list(SETS),
        help="the planted sets; the defaults' checks across frameworks and sizes are the others",
    )
    parser.add_argument("--candidates", nargs="+", default=list(CANDIDATES), choices=CANDIDATES)
    parser.add_argument(
        "--cache",
        default=str(Path(tempfile.gettempdir()) / "imacs-planted-clusters"),
        help="trained models and the store of maps, kept between runs",
    )
    parser.add_argument(
        "--defaults",
        action="store_true",
        help=f"only the chosen defaults (the candidate {CHOSEN}+own)",
    )
    parser.add_argument("--out", default=str(RESULTS))
    parser.add_argument(
        "--segmentation-only",
        action="store_true",
        help="only the model-free study of how each segmenter cuts the planted features",
    )
    parser.add_argument(
        "--table-only",
        action="store_true",
        help="print the tables of the candidates already in --out; run nothing",
    )
    args = parser.parse_args()
    if args.defaults:
        args.candidates = [f"{CHOSEN}+own"]
    out = Path(args.out)
    results = json.loads(out.read_text()) if out.exists() else {"candidates": {}}
    if args.table_only:
        print_segmentation(results["segmentation"])
        names = [name for name in args.candidates if name in results["candidates"]]
        print_table(results, names, args.sets)
        print()
        print_defaults(results)
        return
    results["segmentation"] = segmentation_study()
    print_segmentation(results["segmentation"])
    if args.segmentation_only:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(results, indent=1) + "\n")
        return
    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    store = str(cache / "store")
    for name in args.candidates:
        entry = results["candidates"].setdefault(name, {"sets": {}})
        entry["settings"] = CANDIDATES[name]
        for set_name in args.sets:
            entry["sets"].pop(set_name, None)
    for set_name in args.sets:
        for seed in range(args.seeds):
            planted = SETS[set_name](seed, cache)
            for name in args.candidates:
                settings = {**COMMON, **BEFORE, **CANDIDATES[name]}
                row = {"seed": seed, **measure(planted, settings, store)}
                entry = results["candidates"][name]["sets"].setdefault(set_name, {"rows": []})
                entry["rows"].append(row)
                entry["summary"] = summarise(entry["rows"])
                t = row["top"]
                print(
                    f"{set_name:8} seed {seed} {name:24} found {row['found']!s:5} "
                    f"cov {t['coverage']:.2f} share {t['patch_share']:.2f} "
                    f"diff {t['difference']:+.3f} k {row['k']:2d} "
                    f"twins {row['twins']['largest_difference']:.3f} "
                    f"({row['twins']['meaningful_clusters']} meaningful) {row['seconds']:.1f}s",
                    flush=True,
                )
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps(results, indent=1) + "\n")
    print_table(results, args.candidates, args.sets)
    print()
    print_defaults(results)


def print_segmentation(study: dict[str, Any]) -> None:
    """The model-free study as a Markdown table, a group of columns per planted set."""
    sets = list(next(iter(study.values())))
    header = ["segmenter"]
    for set_name in sets:
        header += [f"{set_name}: segments per image", "planted pieces", "largest piece", "ms/image"]
    print("| " + " | ".join(header) + " |")
    print("| --- " * len(header) + "|")
    for name, measured in study.items():
        cells = [name]
        for set_name in sets:
            s = measured[set_name]
            cells += [
                f"{s['segments_per_image']:.1f}",
                f"{s['planted_pieces']:.1f}",
                f"{s['largest_piece_share']:.2f}",
                f"{s['ms_per_image']:.1f}",
            ]
        print("| " + " | ".join(cells) + " |")


def print_table(results: dict[str, Any], names: list[str], sets: list[str]) -> None:
    """The summary as a Markdown table: one row per candidate, a group of columns per set.

    Per set: seeds where the top cluster is the planted feature (right sign, significant,
    meaningful, coverage >= 0.7, most of its pixels inside the feature); the top cluster's
    coverage, median (smallest); its difference, median (nearest 0); k, median [range];
    seeds whose twins show no meaningful cluster; the twins' largest |difference|.
    """
    columns = ["found", "coverage", "difference", "k", "twins quiet", "twins largest"]
    rows = []
    for name in names:
        cells = [name]
        for set_name in sets:
            entry = results["candidates"][name]["sets"].get(set_name)
            if entry is None:
                cells += [""] * len(columns)
                continue
            s = entry["summary"]
            n = s["seeds"]
            cells += [
                f"{s['found']}/{n}",
                f"{s['coverage_median']:.2f} ({s['coverage_min']:.2f})",
                f"{s['top_difference_median']:+.2f} ({s['top_difference_nearest_zero']:+.2f})",
                f"{s['k_median']:.0f} [{s['k_range'][0]}-{s['k_range'][1]}]",
                f"{s['twins_quiet']}/{n}",
                f"{s['twins_largest_difference_max']:.3f}",
            ]
        rows.append(cells)
    _print_table(columns, sets, rows)
    print()
    # the cost: regions to describe and cluster, and the stages after attribution
    rows = []
    for name in names:
        cells = [name]
        for set_name in sets:
            entry = results["candidates"][name]["sets"].get(set_name)
            s = entry["summary"] if entry else None
            cells += (
                [f"{s['segments_per_image']:.1f}", f"{s['after_attribution_ms_per_image']:.1f}"]
                if s
                else ["", ""]
            )
        rows.append(cells)
    _print_table(["segments per image", "ms/image"], sets, rows)


def print_defaults(results: dict[str, Any]) -> None:
    """The defaults on every set measured: one row per set, the basis of ``min_effect``.

    The planted pair's top difference nearest 0 and the twins' largest ``|difference|``
    over the seeds: ``min_effect`` must lie between them on every set.
    """
    sets = results["candidates"].get(f"{CHOSEN}+own", {}).get("sets", {})
    print(
        "| set | seeds | found | coverage | planted: difference | planted: smallest "
        "| twins quiet | twins: largest |"
    )
    print("| --- " * 8 + "|")
    for set_name, entry in sets.items():
        s = entry["summary"]
        n = s["seeds"]
        print(
            f"| {set_name} | {n} | {s['found']}/{n} | {s['coverage_median']:.2f} "
            f"({s['coverage_min']:.2f}) | {s['top_difference_median']:+.3f} "
            f"| {s['top_difference_nearest_zero']:+.3f} | {s['twins_quiet']}/{n} "
            f"| {s['twins_largest_difference_max']:.3f} |"
        )


def _print_table(columns: list[str], sets: Sequence[str], rows: list[list[str]]) -> None:
    """A markdown table: a candidate column, then each column for each planted set."""
    header = ["candidate"] + [f"{set_name}: {c}" for set_name in sets for c in columns]
    print("| " + " | ".join(header) + " |")
    print("| --- " * len(header) + "|")
    for cells in rows:
        print("| " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
