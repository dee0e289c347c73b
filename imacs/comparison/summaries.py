"""Dataset-level summaries read from a comparison: per class, and mean attribution maps.

:func:`class_summary` and :func:`class_clusters` give the per-class view from the tables
alone. :class:`MeanMaps` averages the attribution maps over the dataset, per class and
per cluster, one image at a time, so the cost is one pass over the stored maps and the
memory a few maps per class and per cluster, whatever the number of images.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np

#: a cluster's contribution to a class's difference smaller than this is not listed
MIN_CONTRIBUTION = 1e-3
#: the report keeps mean maps per class only for datasets with at most this many classes
MAX_CLASS_MEANS = 100


def class_summary(comparison: Any) -> Any:
    """One row per class among the labelled images (``label >= 0``).

    Columns ``label``, ``n_images``, ``accuracy_a``, ``accuracy_b`` (share of the class's
    images each model predicts right) and ``agreement`` (share of them on which the two
    models predict the same class). Empty without labels.
    """
    import pandas as pd

    images = comparison.images
    labelled = images[images["label"] >= 0] if "label" in images else images.iloc[0:0]
    if labelled.empty:
        return pd.DataFrame({name: pd.Series(dtype=np.float64) for name in _CLASS_COLUMNS}).astype(
            {"label": np.int64, "n_images": np.int64}
        )
    grouped = labelled.assign(
        correct_a=labelled["correct_a"].astype(np.float64),
        correct_b=labelled["correct_b"].astype(np.float64),
        agree=labelled["agree"].astype(np.float64),
    ).groupby("label", sort=True)
    table = pd.DataFrame(
        {
            "n_images": grouped.size(),
            "accuracy_a": grouped["correct_a"].mean(),
            "accuracy_b": grouped["correct_b"].mean(),
            "agreement": grouped["agree"].mean(),
        }
    ).reset_index()
    return table.astype({"label": np.int64, "n_images": np.int64})[list(_CLASS_COLUMNS)]


_CLASS_COLUMNS = ("label", "n_images", "accuracy_a", "accuracy_b", "agreement")


def class_clusters(comparison: Any, top: int = 3) -> dict[int, list[tuple[int, float]]]:
    """Per class, the ``top`` clusters that carry most of its difference, largest first.

    A cluster's contribution to class ``c`` is the sum of ``mass_b - mass_a`` over the
    cluster's regions in images of class ``c``, divided by the number of those images: how
    much of each such image's attribution, on average, B puts on the cluster beyond A.
    Summed over all clusters it is the mean difference over the class's salient regions
    per image. Contributions below :data:`MIN_CONTRIBUTION` in size are left out.
    """
    classes = comparison.classes
    images = comparison.images
    if classes is None or len(classes) == 0 or "label" not in images:
        return {}
    counts = images.loc[images["label"] >= 0, "label"].value_counts()
    result: dict[int, list[tuple[int, float]]] = {}
    for label, group in classes[classes["label"] >= 0].groupby("label", sort=True):
        n_images = int(counts.get(label, 0))
        if not n_images:
            continue
        contribution = group["difference"].to_numpy(np.float64) * group["n_regions"].to_numpy(
            np.float64
        )
        contribution = contribution / n_images
        order = np.lexsort((group["cluster"].to_numpy(), -np.abs(contribution)))
        chosen = [
            (int(group["cluster"].iloc[k]), float(contribution[k]))
            for k in order[:top]
            if abs(contribution[k]) >= MIN_CONTRIBUTION
        ]
        result[int(label)] = chosen
    return result


class MeanMaps:
    """Sums of both models' normalised maps, over all images, per class and per cluster.

    Feed it one image at a time with :meth:`add`; the maps must share one size (the
    report adds them at its display size). Per cluster, the mean is over the images that
    hold at least one of the cluster's salient regions, and ``where`` counts, per pixel,
    in how many of them the pixel lies in one of those regions. With ``per_class=False``
    no class is kept: a dataset of a thousand classes would otherwise hold a thousand
    pairs of sums.
    """

    def __init__(self, size: tuple[int, int], *, per_class: bool = True):
        self.size = size
        self.per_class = per_class
        self.sums: dict[str, np.ndarray] = {}
        self.counts: dict[str, int] = {}

    def _add(self, key: str, stack: np.ndarray) -> None:
        if key in self.sums:
            self.sums[key] += stack
        else:
            self.sums[key] = stack.astype(np.float64).copy()
        self.counts[key] = self.counts.get(key, 0) + 1

    def add(
        self,
        map_a: np.ndarray,
        map_b: np.ndarray,
        *,
        label: int | None = None,
        labels: np.ndarray | None = None,
        regions: Iterable[tuple[int, int]] = (),
    ) -> None:
        """One image's maps, its class ``label`` and its salient ``regions``.

        ``regions`` are ``(cluster, region)`` pairs; ``labels`` is the image's label map
        at the maps' size, which places them.
        """
        pair = np.stack([map_a, map_b])
        self._add("all", pair)
        if self.per_class and label is not None and label >= 0:
            self._add(f"class:{int(label)}", pair)
        by_cluster: dict[int, list[int]] = {}
        for cluster, region in regions:
            by_cluster.setdefault(int(cluster), []).append(int(region))
        for cluster, ids in by_cluster.items():
            where = np.isin(labels, ids) if labels is not None else np.zeros(self.size, bool)
            self._add(f"cluster:{cluster}", np.stack([map_a, map_b, where]))

    def means(self) -> dict[str, tuple[np.ndarray, int]]:
        """Per key (``"all"``, ``"class:<label>"``, ``"cluster:<id>"``), the mean
        ``(3, h, w)`` stack (A, B, and for a cluster where its regions lie, zeros for the
        others) and its number of images."""
        means = {}
        for key, total in self.sums.items():
            mean = total / self.counts[key]
            if len(mean) == 2:
                mean = np.concatenate([mean, np.zeros((1, *self.size))])
            means[key] = (mean, self.counts[key])
        return means


def mean_maps(comparison: Any, size: tuple[int, int] | None = None) -> dict[str, Any]:
    """:class:`MeanMaps` of a comparison with a store, read one image at a time.

    Each map is normalised as the report shows it (summed over channels, one unit of
    |attribution| per image, signed) and resized by area to ``size``, the first image's
    by default. Returns :meth:`MeanMaps.means`.
    """
    from imacs.report.images import display_labels, display_map

    if size is None:
        first = np.asarray(comparison.segments(0))
        size = (int(first.shape[0]), int(first.shape[1]))
    accumulator = MeanMaps(size)
    regions = comparison.regions
    members = regions.groupby("image")[["cluster", "region"]]
    held = set(regions["image"].tolist())
    for index in range(len(comparison.images)):
        pairs = members.get_group(index).itertuples(index=False, name=None) if index in held else ()
        accumulator.add(
            display_map(comparison.attribution(index, "a"), size),
            display_map(comparison.attribution(index, "b"), size),
            label=int(comparison.images["label"].iloc[index]),
            labels=display_labels(np.asarray(comparison.segments(index)), size),
            regions=list(pairs),
        )
    return accumulator.means()
