"""Per-image cost of each piece of work after attribution, on the 32x32 demo digits.

Times, in milliseconds per image (mean over ``--images`` digits): Felzenszwalb at the
comparison's default settings; writing and reading a label map in a store (in
``--store-dir``, by default a temporary folder, so the disk decides); the colour,
texture and shape featurizers; each map-agreement metric; and, for reference, the same
Spearman correlation through ``scipy.stats.spearmanr``. ``compare_speed.py`` gives the
stages' totals; this says where their time goes.

    .venv/bin/python benchmarks/stage_costs.py
    .venv/bin/python benchmarks/stage_costs.py --store-dir /dev/shm    # a disk in memory
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable

import numpy as np

from imacs.comparison.scoring import normalise_map
from imacs.demo.data import shortcut_digits
from imacs.features.color import ColorHistogram
from imacs.features.shape import RegionShape
from imacs.features.texture import LocalBinaryPatterns
from imacs.metrics.cosine import CosineSimilarity
from imacs.metrics.spearman import SpearmanRankCorrelation
from imacs.metrics.ssim import StructuralSimilarity
from imacs.metrics.top_k_iou import TopKIntersectionOverUnion
from imacs.segmentation.felzenszwalb import Felzenszwalb
from imacs.store import Store


def per_image_ms(n: int, work: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        work(i)
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--store-dir", default=None, help="where the timed store is made")
    args = parser.parse_args()
    from scipy.stats import spearmanr

    n = args.images
    images = shortcut_digits(np.arange(n), shortcut=False, seed=3).images
    rng = np.random.default_rng(0)
    maps_a = [normalise_map(m) for m in rng.normal(size=(n, 32, 32, 3))]
    maps_b = [normalise_map(m) for m in rng.normal(size=(n, 32, 32, 3))]
    segmenter = Felzenszwalb(resize_to="auto")
    labels = [segmenter.segment(image) for image in images]
    store = Store(tempfile.mkdtemp(dir=args.store_dir))
    keys = [f"{i:064x}"[::-1] for i in range(n)]  # spread over the store's sub-folders

    rows = [
        ("felzenszwalb", lambda i: segmenter.segment(images[i])),
        ("store: write a label map", lambda i: store.save("segments", keys[i], labels[i])),
        ("store: read a label map", lambda i: store.load("segments", keys[i])),
    ]
    for featurizer in (ColorHistogram(), LocalBinaryPatterns(), RegionShape()):
        rows.append(
            (
                f"featurizer {featurizer.name}",
                lambda i, f=featurizer: f.featurize(images[i], labels[i]),
            )
        )
    metrics = (
        SpearmanRankCorrelation(),
        StructuralSimilarity(),
        CosineSimilarity(),
        TopKIntersectionOverUnion(),
    )
    for metric in metrics:
        rows.append((f"metric {metric.name}", lambda i, m=metric: m.score(maps_a[i], maps_b[i])))
    rows.append(
        (
            "scipy.stats.spearmanr (reference)",
            lambda i: spearmanr(maps_a[i].ravel(), maps_b[i].ravel()),
        )
    )
    print(f"{'work':<36} {'ms/image':>9}")
    for name, work in rows:
        print(f"{name:<36} {per_image_ms(n, work):>9.3f}")


if __name__ == "__main__":
    main()
