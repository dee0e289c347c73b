"""The work an executor maps over tasks: attribute a few images, or score a batch.

Each work object holds everything its tasks need as plain, picklable data: the
components (methods, segmenters, featurizers and metrics are plain objects with their
parameters), the store (a folder every worker can read and write), the store keys of the
images and their results, and its models as :class:`~imacs.adapters.recipe.PortableModel`
handles. A task is a list of image indices; the runner builds the tasks, so a task's
result depends on its images only, never on which process or worker ran it.

:class:`AttributionWork` answers a task with the maps (and completeness errors) of its
images, which the runner stores. :class:`ScoreWork` segments a batch of images (storing
each segmentation), scores both models' maps over the regions, selects the salient
regions, describes them with the featurizers and computes the per-image agreement
metrics; the runner appends the batches in task order. The in-process run calls the
same objects, so an in-process and a distributed run perform the same floating-point
operations on the same batches.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from imacs.adapters.recipe import PortableModel
from imacs.attribution.base import AttributionMethod
from imacs.comparison.scoring import normalise_map, score_regions, select_regions
from imacs.errors import InvalidInputError
from imacs.features.base import Featurizer
from imacs.metrics.base import MapMetric
from imacs.segmentation.base import Segmenter
from imacs.store import Store


def load_stored(store: Store, stage: str, key: str) -> np.ndarray:
    """The ``stage`` result under ``key``; a clear error if the store lost it."""
    return load_all(store, stage, [key])[0]


def load_all(store: Store, stage: str, keys: Sequence[str]) -> list[np.ndarray]:
    """The ``stage`` results under ``keys``, read together; a clear error if one is lost."""
    arrays = store.load_many(stage, keys)
    found = [array for array in arrays if array is not None]
    if len(found) < len(arrays):
        key = next(key for key, array in zip(keys, arrays, strict=True) if array is None)
        raise InvalidInputError(
            f"the store {store.location!r} lost the {stage} result {key} while the "
            "comparison ran (was it cleared?); run the comparison again to recompute it"
        )
    return found


@dataclass
class AttributionWork:
    """One model's maps for a task of image indices (read from the store)."""

    model: PortableModel
    method: AttributionMethod
    store: Store
    image_keys: Sequence[str]
    targets: np.ndarray
    batch_size: int

    def __call__(self, task: list[int]) -> tuple[Any, Any]:
        images = np.stack(load_all(self.store, "images", [self.image_keys[i] for i in task]))
        result = self.method.attribute(
            self.model.get(), images, self.targets[task], batch_size=self.batch_size
        )
        return result.maps, result.convergence_delta


@dataclass
class MissingMaps:
    """A score task found maps missing or damaged in the store: ``(side, image)`` pairs.

    The runner makes them again (it holds the models) and runs the task in its own
    process.
    """

    missing: list[tuple[str, int]]


@dataclass
class ScoredBatch:
    """What one batch of images adds to the comparison's tables, in image order."""

    #: one row per salient region (the comparison's regions table)
    region_rows: list[dict[str, Any]]
    #: one row per image: regions, selected regions, agreement metrics
    image_scores: list[dict[str, Any]]
    #: per featurizer, the features of each described image's salient regions
    features: list[list[np.ndarray]]
    #: per image, the positional parts (:class:`~imacs.spatial.positional.PositionalAccumulator`)
    positional: Any = None
    #: seconds spent segmenting, describing and binning positional maps
    seconds: dict[str, float] = field(default_factory=dict)


@dataclass
class ScoreWork:
    """Segment, score, select and describe a batch of images (the per-image stages)."""

    segmenter: Segmenter
    featurizers: Sequence[Featurizer]
    metrics: Sequence[MapMetric]
    map_sign: str
    top_k: int | None
    area_fraction: float | None
    store: Store
    image_keys: Sequence[str]
    segment_keys: Sequence[str]
    map_keys: dict[str, list[str]]
    #: the model a featurizer that ``requires`` one describes regions with, else ``None``
    embedder: PortableModel | None = None
    positional: bool = False

    def __call__(self, index: Sequence[int]) -> ScoredBatch | MissingMaps:
        raw: dict[str, list[np.ndarray]] = {"a": [], "b": []}
        missing = []
        for side in raw:
            keys = [self.map_keys[side][i] for i in index]
            for i, stored in zip(index, self.store.load_many("attributions", keys), strict=True):
                if stored is None:
                    missing.append((side, int(i)))
                else:
                    raw[side].append(stored)
        if missing:
            return MissingMaps(missing)
        return self.score(index, raw)

    def score(self, index: Sequence[int], raw: dict[str, list[np.ndarray]]) -> ScoredBatch:
        """The batch's tables from its raw maps ``raw[side][j]`` of images ``index[j]``."""
        from scipy.ndimage import find_objects

        seconds = {"segment": 0.0, "featurize": 0.0, "spatial": 0.0}
        start = time.perf_counter()
        images = load_all(self.store, "images", [self.image_keys[i] for i in index])
        found = self.store.load_many("segments", [self.segment_keys[i] for i in index])
        labels = [
            self.segmenter.segment(image) if stored is None else stored
            for image, stored in zip(images, found, strict=True)
        ]
        self.store.save_many(
            "segments",
            [
                (self.segment_keys[i], made)
                for i, made, stored in zip(index, labels, found, strict=True)
                if stored is None
            ],
        )
        seconds["segment"] += time.perf_counter() - start
        positional = None
        if self.positional:
            from imacs.spatial.positional import PositionalAccumulator

            start = time.perf_counter()
            positional = PositionalAccumulator()
            for map_a, map_b in zip(raw["a"], raw["b"], strict=True):
                positional.add(map_a, map_b)
            seconds["spatial"] += time.perf_counter() - start
        maps_a = [normalise_map(m, self.map_sign) for m in raw["a"]]
        maps_b = [normalise_map(m, self.map_sign) for m in raw["b"]]
        region_rows: list[dict[str, Any]] = []
        image_scores: list[dict[str, Any]] = []
        chosen_per_image = []
        for i, label_map, map_a, map_b in zip(index, labels, maps_a, maps_b, strict=True):
            scores = score_regions(label_map, map_a, map_b)
            chosen_a, chosen_b = select_regions(
                scores, top_k=self.top_k, area_fraction=self.area_fraction
            )
            chosen = np.flatnonzero(chosen_a | chosen_b)
            chosen_per_image.append(chosen)
            boxes = find_objects(label_map + 1)
            for r in chosen:
                box = boxes[r]
                assert box is not None
                region_rows.append(
                    {
                        "image": int(i),
                        "region": int(r),
                        "area": int(scores.area[r]),
                        "mass_a": float(scores.mass_a[r]),
                        "mass_b": float(scores.mass_b[r]),
                        "abs_a": float(scores.abs_a[r]),
                        "abs_b": float(scores.abs_b[r]),
                        "density_a": float(scores.density_a[r]),
                        "density_b": float(scores.density_b[r]),
                        "rank_a": int(scores.rank_a[r]),
                        "rank_b": int(scores.rank_b[r]),
                        "selected_by": "both"
                        if chosen_a[r] and chosen_b[r]
                        else ("a" if chosen_a[r] else "b"),
                        "y0": box[0].start,
                        "x0": box[1].start,
                        "y1": box[0].stop,
                        "x1": box[1].stop,
                    }
                )
            image_scores.append({"n_regions": len(scores.area), "n_selected": len(chosen)})
        start = time.perf_counter()
        features: list[list[np.ndarray]] = [[] for _ in self.featurizers]
        described = [j for j, chosen in enumerate(chosen_per_image) if len(chosen)]
        if described:
            for block, featurizer in zip(features, self.featurizers, strict=True):
                model = None
                if featurizer.requires:
                    assert self.embedder is not None
                    model = self.embedder.get()
                described_features = featurizer.featurize_batch(
                    [images[j] for j in described],
                    [labels[j] for j in described],
                    model=model,
                )
                for j, image_features in zip(described, described_features, strict=True):
                    block.append(image_features[chosen_per_image[j]])
        seconds["featurize"] += time.perf_counter() - start
        same_shape = len({m.shape for m in maps_a}) == 1
        for metric in self.metrics:
            if same_shape:
                values = metric.score_batch(np.stack(maps_a), np.stack(maps_b)).tolist()
            else:
                values = [metric.score(a, b) for a, b in zip(maps_a, maps_b, strict=True)]
            for row, value in zip(image_scores, values, strict=True):
                row[metric.name] = value
        return ScoredBatch(region_rows, image_scores, features, positional, seconds)
