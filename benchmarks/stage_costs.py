"""Per-image cost of each piece of work after attribution, on the 32x32 demo digits.

Times, in milliseconds per image (mean over ``--images`` digits): Felzenszwalb at the
comparison's default settings; writing and reading a label map in a store (in
``--store-dir``, by default a temporary folder, so the disk decides), and the checksum
check that each read includes; the colour, texture and shape featurizers and each
map-agreement metric, both one image at a time and in batches of ``--batch`` images as
a comparison calls them; and, for reference, the same Spearman correlation through
``scipy.stats.spearmanr``. ``compare_speed.py`` gives the stages' totals; this says
where their time goes.

    .venv/bin/python benchmarks/stage_costs.py
    .venv/bin/python benchmarks/stage_costs.py --store-dir /dev/shm    # a disk in memory
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

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
from imacs.store import Store, _damage


def per_image_ms(n: int, work: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for i in range(n):
        work(i)
    return (time.perf_counter() - start) / n * 1000


def per_batch_ms(n: int, starts: range, work: Callable[[int], object]) -> float:
    start = time.perf_counter()
    for first in starts:
        work(first)
    return (time.perf_counter() - start) / n * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", type=int, default=300)
    parser.add_argument("--store-dir", default=None, help="where the timed store is made")
    parser.add_argument("--batch", type=int, default=32, help="images per batch (batch_size)")
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
    for key, label in zip(keys, labels, strict=True):  # files whose checksum check is timed
        store.save("checked", key, label)
    stored = [bytearray(Path(store._file("checked", key)).read_bytes()) for key in keys]

    rows = [
        ("felzenszwalb", lambda i: segmenter.segment(images[i])),
        ("store: write a label map", lambda i: store.save("segments", keys[i], labels[i])),
        ("store: read a label map", lambda i: store.load("segments", keys[i])),
        ("store: the read's checksum check", lambda i: _damage("checked", keys[i], stored[i])),
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
    batched = []
    starts = range(0, n, args.batch)
    stack_a, stack_b = np.stack(maps_a), np.stack(maps_b)
    for featurizer in (ColorHistogram(), LocalBinaryPatterns(), RegionShape()):
        batched.append(
            (
                f"featurizer {featurizer.name}",
                lambda j, f=featurizer: f.featurize_batch(
                    images[j : j + args.batch], labels[j : j + args.batch]
                ),
            )
        )
    for metric in metrics:
        batched.append(
            (
                f"metric {metric.name}",
                lambda j, m=metric: m.score_batch(
                    stack_a[j : j + args.batch], stack_b[j : j + args.batch]
                ),
            )
        )

    print(f"{'work':<36} {'ms/image':>9} {'batched':>9}")
    batch_ms = {name: per_batch_ms(n, starts, work) for name, work in batched}
    for name, work in rows:
        in_batches = f"{batch_ms[name]:>9.3f}" if name in batch_ms else f"{'':>9}"
        print(f"{name:<36} {per_image_ms(n, work):>9.3f} {in_batches}")


if __name__ == "__main__":
    main()
