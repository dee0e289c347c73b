"""The comparison run: every stage from the images to the per-cluster statistics.

Stages, in order (DESIGN.md steps 2-8):

1. *ingest*: read the data source once, batch by batch, and store every image under the
   digest of its content;
2. *predict*: both models' outputs on every image, stored per model and dataset;
3. *targets*: the class each model explains for each image;
4. *attribute*: one map per image and model (with a path method's completeness error),
   stored per image, run through an :class:`~imacs.comparison.executor.Executor` in
   tasks of a few images;
5. *segment*: one model-free partition per image, stored per image;
6. *score*: each region's share of both models' attribution; the salient regions; the
   per-image agreement of the two maps (5, 6 and the featurizing of 7 run through the
   executor too, one task per batch of images: :mod:`imacs.comparison.tasks`);
7. *featurize* the salient regions, *cluster* them, and compute the per-cluster
   statistics and, optionally, the causal check.

Images, predictions, maps and segmentations are read back from the store in batches, so
memory grows with the batch size and the number of salient regions, not with the
number or size of images. Everything after the attribution stage is deterministic given
the seed, so a resumed run ends with exactly the tables of an uninterrupted one.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.adapters.recipe import PortableModel
from imacs.attribution.base import AttributionMethod
from imacs.comparison.causal import fill_regions, softmax_at, target_probabilities
from imacs.comparison.clustering import Clusterer
from imacs.comparison.executor import Executor, InProcessExecutor
from imacs.comparison.quality import DEFAULT_QUALITY_IMAGES
from imacs.comparison.result import Comparison
from imacs.comparison.scoring import normalise_map
from imacs.comparison.statistics import DEFAULT_MIN_EFFECT, DEFAULT_PERMUTATIONS
from imacs.comparison.tasks import (
    AttributionWork,
    MissingMaps,
    ScoredBatch,
    ScoreWork,
    load_all,
    load_stored,
)
from imacs.data.sources import DataSource
from imacs.errors import InvalidInputError
from imacs.features.base import Featurizer
from imacs.metrics.base import MapMetric
from imacs.progress import Progress
from imacs.quality.base import QualityMeasure
from imacs.segmentation.base import Segmenter
from imacs.store import Store, array_digest, make_key, producer

TARGETS = ("label", "pred_a", "pred_b", "own")
#: images per attribution task: the unit a killed run loses at most, per model
TASK_SIZE = 16
#: results of many images read from the store in one call (concurrently from a URL's)
READ_TOGETHER = 256


@dataclass
class Settings:
    """Everything besides the models and the data that shapes a comparison's result."""

    method: AttributionMethod
    segmenter: Segmenter
    featurizers: Sequence[Featurizer]
    clusterer: Clusterer
    metrics: Sequence[MapMetric]
    #: ``None`` until the run knows whether there are labels ("label") or not ("own")
    targets: str | None = None
    #: how the maps are read before scoring: "signed" or "absolute" (scoring.MAP_SIGNS)
    map_sign: str = "signed"
    top_k: int | None = 3
    area_fraction: float | None = None
    seed: int = 0
    n_permutations: int = DEFAULT_PERMUTATIONS
    alpha: float = 0.05
    min_effect: float = DEFAULT_MIN_EFFECT
    causal: str | None = "mean"
    causal_clusters: int = 5
    causal_max_images: int = 50
    batch_size: int = 32
    class_mapping: dict[int, int] | None = None
    embedding_model: str = "a"
    #: codes of the alerts not checked (:mod:`imacs.comparison.alerts`)
    ignore_alerts: tuple[str, ...] = ()
    #: parts of the "where in the frame" analysis run (:mod:`imacs.spatial.analysis`)
    spatial: tuple[str, ...] = ("positional", "padding", "activations", "blind_spots")
    #: quality measures run on a sample of the images for both models
    #: (:mod:`imacs.comparison.quality`); none by default
    quality: tuple[QualityMeasure, ...] = ()
    #: the most images in that sample
    quality_images: int = DEFAULT_QUALITY_IMAGES

    def describe(self) -> dict[str, Any]:
        """The settings as plain data, for the saved comparison and the report."""
        return {
            "method": {"name": self.method.name, "params": _plain(self.method.get_params())},
            "segmenter": {
                "name": self.segmenter.name,
                "params": _plain(self.segmenter.get_params()),
            },
            "featurizers": [
                {"name": f.name, "params": _plain(f.get_params())} for f in self.featurizers
            ],
            "clusterer": {
                "name": self.clusterer.name,
                "params": _plain(self.clusterer.get_params()),
            },
            "metrics": [m.name for m in self.metrics],
            "targets": self.targets,
            "map_sign": self.map_sign,
            "top_k": self.top_k,
            "area_fraction": self.area_fraction,
            "seed": self.seed,
            "n_permutations": self.n_permutations,
            "alpha": self.alpha,
            "min_effect": self.min_effect,
            "causal": self.causal,
            "causal_clusters": self.causal_clusters,
            "causal_max_images": self.causal_max_images,
            "batch_size": self.batch_size,
            "class_mapping": self.class_mapping,
            "embedding_model": self.embedding_model,
            "ignore_alerts": list(self.ignore_alerts),
            "spatial": list(self.spatial),
            "quality": [{"name": m.name, "params": _plain(m.get_params())} for m in self.quality],
            "quality_images": self.quality_images,
        }


def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return {"array_shape": list(value.shape), "digest": array_digest(value)}
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def _convergence(attribution: np.ndarray, delta: Any) -> np.ndarray:
    """What the store keeps of a map's completeness error: ``[delta, L1 of the map]``.

    The L1 norm is of the channel-summed map, the total the comparison normalises every
    map by, so ``|delta| / L1`` is the error in the tables' own unit: a share of the
    image's attribution.
    """
    reduced = np.asarray(attribution, dtype=np.float64)
    if reduced.ndim == 3:
        reduced = reduced.sum(axis=-1)
    return np.array([float(delta), float(np.abs(reduced).sum())])


class ComparisonRun:
    """One comparison of two adapters on one data source, resumable through its store."""

    def __init__(
        self,
        model_a: ModelAdapter,
        model_b: ModelAdapter,
        source: DataSource,
        settings: Settings,
        store: Store,
        *,
        executor: Executor | None = None,
        progress: bool = True,
    ):
        self.models = {"a": model_a, "b": model_b}
        self.source = source
        self.settings = settings
        self.store = store
        self.executor = executor or InProcessExecutor()
        self.progress = Progress(progress)
        # filled by the stages
        self.image_keys: list[str] = []
        self.names: list[str] = []
        self.labels: np.ndarray | None = None
        self.segment_keys: list[str] = []
        # the per-image results, one table or array per batch: a batch's rows as a
        # DataFrame cost a few bytes a value, where a dict per row costs a kilobyte
        self.region_parts: list[Any] = []
        self.score_parts: list[Any] = []
        self.feature_parts: list[list[np.ndarray]] = []
        self.n_regions = 0
        self.name_features: dict[str, Any] = {}
        self.stage_seconds: dict[str, float] = {}
        self.positional: Any = None

    # -- helpers ------------------------------------------------------------------------

    def _load(self, stage: str, key: str) -> np.ndarray:
        return load_stored(self.store, stage, key)

    def _images(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        return np.stack(load_all(self.store, "images", [self.image_keys[i] for i in indices]))

    def _batches(self, n: int, size: int) -> Iterator[np.ndarray]:
        for start in range(0, n, size):
            yield np.arange(start, min(start + size, n))

    # -- stages -------------------------------------------------------------------------

    def ingest(self) -> None:
        """Read the source once; store each image under the digest of its content."""
        keys: list[str] = []
        names: list[str] = []
        labels: list[np.ndarray] = []
        has_labels: bool | None = None
        low: np.ndarray | None = None
        high: np.ndarray | None = None
        try:
            total: int | None = len(self.source)
        except TypeError:
            total = None
        with self.progress.stage("reading images", total) as tick:
            for batch in self.source.batches(self.settings.batch_size):
                batch_keys = [array_digest(image) for image in batch.images]
                # loads, not has(): they find a damaged copy, which later stages need whole
                found = self.store.load_many("images", batch_keys)
                new = {
                    key: image
                    for image, key, stored in zip(batch.images, batch_keys, found, strict=True)
                    if stored is None
                }
                self.store.save_many("images", list(new.items()))
                keys += batch_keys
                names += batch.names
                if len(batch.images):
                    batch_low = batch.images.min(axis=(0, 1, 2))
                    batch_high = batch.images.max(axis=(0, 1, 2))
                    low = batch_low if low is None else np.minimum(low, batch_low)
                    high = batch_high if high is None else np.maximum(high, batch_high)
                if has_labels is None:
                    has_labels = batch.labels is not None
                if batch.labels is not None:
                    labels.append(np.asarray(batch.labels, dtype=np.int64))
                tick(len(batch.images))
        if not keys:
            raise InvalidInputError("the dataset is empty: there are no images to compare on")
        self.image_keys, self.names = keys, names
        self.labels = np.concatenate(labels) if has_labels and labels else None
        assert low is not None and high is not None
        # per channel, for the alert that compares the data's range with the models'
        self.pixel_range = (low.astype(float).tolist(), high.astype(float).tolist())
        self.dataset_key = make_key("dataset", keys)

    def check_models(self) -> None:
        """Both models accept the images; their classes match (or a mapping is given)."""
        probe = self._images([0])
        n_classes = {}
        for side, model in self.models.items():
            try:
                n_classes[side] = model.predict(probe).shape[1]
            except InvalidInputError as exc:
                raise InvalidInputError(
                    f"model {side.upper()} does not accept the dataset's images of shape "
                    f"{probe.shape[1:]}: {exc}"
                ) from exc
        mapping = self.settings.class_mapping
        if mapping is None:
            if n_classes["a"] != n_classes["b"]:
                raise InvalidInputError(
                    f"model A has {n_classes['a']} classes and model B {n_classes['b']}; "
                    "pass class_mapping={class of A: class of B, ...} saying which output "
                    "of B means each class of A"
                )
            mapping = {k: k for k in range(n_classes["a"])}
        else:
            bad = {a: b for a, b in mapping.items() if not (0 <= a < n_classes["a"])}
            bad |= {a: b for a, b in mapping.items() if not (0 <= b < n_classes["b"])}
            if bad:
                raise InvalidInputError(
                    f"class_mapping entries {bad} are out of range: model A has "
                    f"{n_classes['a']} classes and model B {n_classes['b']}"
                )
        self.n_classes = n_classes
        self.a_to_b = np.full(n_classes["a"], -1, dtype=np.int64)
        self.b_to_a = np.full(n_classes["b"], -1, dtype=np.int64)
        for a, b in mapping.items():
            self.a_to_b[a], self.b_to_a[b] = b, a
        if self.labels is not None:
            if len(self.labels) != len(self.image_keys):
                raise InvalidInputError(
                    f"got {len(self.labels)} labels for {len(self.image_keys)} images; give "
                    "one label per image"
                )
            outside = self.labels[(self.labels < 0) | (self.labels >= n_classes["a"])]
            if len(outside):
                raise InvalidInputError(
                    f"labels {sorted(set(outside.tolist()))[:5]} are not classes of model A, "
                    f"which has {n_classes['a']} classes (0..{n_classes['a'] - 1}); labels "
                    "must be class indices of the models"
                )

    def predict(self) -> None:
        """Both models' outputs on every image, stored per model and dataset."""
        self.outputs: dict[str, np.ndarray] = {}
        n = len(self.image_keys)
        for side, model in self.models.items():
            key = make_key("predict", model.fingerprint(), producer(model), self.dataset_key)
            stored = self.store.load("predictions", key)
            if stored is not None:
                self.progress.reused(f"predicting ({side.upper()})")
            else:
                parts = []
                with self.progress.stage(f"predicting ({side.upper()})", n) as tick:
                    for index in self._batches(n, self.settings.batch_size):
                        parts.append(model.predict(self._images(index)))
                        tick(len(index))
                stored = np.concatenate(parts)
                self.store.save("predictions", key, stored)
            self.outputs[side] = stored
        self.pred_a = self.outputs["a"].argmax(axis=1)
        pred_b_native = self.outputs["b"].argmax(axis=1)
        self.pred_b = self.b_to_a[pred_b_native]  # in A's class indices; -1 if unmapped

    def choose_targets(self) -> None:
        """The class each model explains for each image (in each model's own indices)."""
        if self.settings.targets is None:
            self.settings.targets = "own" if self.labels is None else "label"
        targets = self.settings.targets
        if targets == "label":
            if self.labels is None:
                raise InvalidInputError(
                    "targets='label' needs labels, and this dataset has none; pass labels=, "
                    "or targets='own' (each model explains its own prediction), 'pred_a' "
                    "or 'pred_b'"
                )
            target_a = self.labels
        elif targets == "pred_a":
            target_a = self.pred_a
        elif targets == "pred_b":
            target_a = self.pred_b
        else:
            target_a = self.pred_a
        target_b = self.outputs["b"].argmax(axis=1) if targets == "own" else self.a_to_b[target_a]
        if targets == "pred_b" or targets == "own":
            unmapped = (target_a < 0) if targets == "pred_b" else np.zeros(len(target_a), bool)
        else:
            unmapped = target_b < 0
        if unmapped.any():
            raise InvalidInputError(
                f"{int(unmapped.sum())} images have a target with no counterpart in the other "
                "model under class_mapping; map every class that occurs, or use targets='own'"
            )
        self.targets = {"a": np.asarray(target_a), "b": np.asarray(target_b)}

    def attribute(self) -> None:
        """One map per image and model; finished maps are found in the store, not redone."""
        from imacs.attribution.base import DatasetView

        method = self.settings.method
        params = method.get_params()
        self.map_keys: dict[str, list[str]] = {}
        self.attributed = {"a": 0, "b": 0}
        for side, model in self.models.items():
            fingerprint = model.fingerprint()
            made_by = [producer(model), producer(method)]
            # a method that learns from the data (AttributionMethod.prepare) learns once, from
            # all of it, before any task; what it learnt is part of every map's key
            data = DatasetView(self.dataset_key, self.targets[side], self._images)
            learnt = method.prepare(
                model, data, batch_size=self.settings.batch_size, store=self.store
            )
            keys = [
                make_key(
                    "attribution",
                    fingerprint,
                    made_by,
                    method.name,
                    params,
                    int(target),
                    image,
                    *([] if learnt is None else [learnt]),
                )
                for target, image in zip(self.targets[side], self.image_keys, strict=True)
            ]
            self.map_keys[side] = keys
            found = self.store.has_many("attributions", keys)
            missing = [i for i, there in enumerate(found) if not there]
            tasks = [missing[i : i + TASK_SIZE] for i in range(0, len(missing), TASK_SIZE)]
            work = AttributionWork(
                PortableModel(model, side=side),
                method,
                self.store,
                self.image_keys,
                self.targets[side],
                self.settings.batch_size,
            )
            label = f"attributing ({side.upper()})"
            reused = len(keys) - len(missing)
            with self.progress.stage(label, len(missing), reused=reused) as tick:
                for task, (maps, deltas) in self.executor.map(work, tasks):
                    self._save_maps(side, task, maps, deltas)
                    tick(len(task))

    def _save_maps(self, side: str, task: Sequence[int], maps: Any, deltas: Any) -> None:
        keys = [self.map_keys[side][index] for index in task]
        if deltas is not None:
            # saved before the maps: a map in the store implies its delta
            self.store.save_many(
                "convergence",
                [
                    (key, _convergence(attribution, delta))
                    for key, attribution, delta in zip(keys, maps, deltas, strict=True)
                ],
            )
        self.store.save_many("attributions", list(zip(keys, maps, strict=True)))
        self.attributed[side] += len(task)

    def _map(self, side: str, i: int) -> np.ndarray:
        """Model ``side``'s map of image ``i``; one found damaged in the store is made again."""
        stored = self.store.load("attributions", self.map_keys[side][i])
        if stored is not None:
            return stored
        s = self.settings
        result = s.method.attribute(
            self.models[side], self._images([i]), self.targets[side][[i]], batch_size=s.batch_size
        )
        self._save_maps(side, [i], result.maps, result.convergence_delta)
        return np.asarray(result.maps[0])

    def _segments(self, i: int, image: np.ndarray) -> np.ndarray:
        """Image ``i``'s label map from the store, or segmented and stored now."""
        labels = self.store.load("segments", self.segment_keys[i])
        if labels is None:
            labels = self.settings.segmenter.segment(image)
            self.store.save("segments", self.segment_keys[i], labels)
        return labels

    def _maps(self, side: str, index: np.ndarray) -> list[np.ndarray]:
        # the store keeps raw maps, so both readings of a map share one stored array
        return [normalise_map(self._map(side, i), self.settings.map_sign) for i in index]

    def score(self) -> None:
        """Per image: segment, score and select regions, describe the salient ones.

        One pass over the images, a batch at a time, so each image and label map is read
        once and the featurizers and metrics see whole batches. The batches are tasks of
        :class:`~imacs.comparison.tasks.ScoreWork` run through the executor; their
        results are added in batch order, whichever finished first, so the tables are
        the same wherever the batches ran. The segmentations are stored under keys of the
        segmenter, its parameters and the image, so a rerun or another comparison on the
        same images reuses them. The seconds spent segmenting and describing are kept
        apart in ``stage_seconds``.
        """
        s = self.settings
        params = s.segmenter.get_params()
        made_by = producer(s.segmenter)
        self.segment_keys = [
            make_key("segments", s.segmenter.name, made_by, params, image)
            for image in self.image_keys
        ]
        self.region_parts, self.score_parts, self.n_regions = [], [], 0
        self.feature_parts = [[] for _ in s.featurizers]
        self.stage_seconds = {"segment": 0.0, "featurize": 0.0, "spatial": 0.0}
        if "positional" in s.spatial:
            from imacs.spatial.positional import PositionalAccumulator

            # past 16 MB the binned maps wait in a temporary file beside a local store
            self.positional = PositionalAccumulator(directory=self.store.local_folder)
        embedder = None
        if any(f.requires for f in s.featurizers):
            model = self.models[s.embedding_model]
            embedder = PortableModel(model, side=s.embedding_model)
        work = ScoreWork(
            s.segmenter,
            s.featurizers,
            s.metrics,
            s.map_sign,
            s.top_k,
            s.area_fraction,
            self.store,
            self.image_keys,
            self.segment_keys,
            self.map_keys,
            embedder=embedder,
            positional=self.positional is not None,
        )
        n = len(self.image_keys)
        tasks = [index.tolist() for index in self._batches(n, s.batch_size)]
        waiting: dict[int, ScoredBatch] = {}
        added = 0
        with self.progress.stage("segmenting and scoring", n) as tick:
            for task, result in self.executor.map(work, tasks):
                if isinstance(result, MissingMaps):
                    # made again here, where the models are, then scored here
                    raw = {side: [self._map(side, i) for i in task] for side in ("a", "b")}
                    result = work.score(task, raw)
                waiting[task[0]] = result
                while added < n and added in waiting:
                    batch = waiting.pop(added)
                    self._add_scored(batch)
                    added += len(batch.image_scores)
                tick(len(task))

    def _add_scored(self, batch: ScoredBatch) -> None:
        """Add one batch's rows, features and positional parts to the run's tables."""
        import pandas as pd

        if batch.region_rows:
            self.region_parts.append(pd.DataFrame(batch.region_rows))
            self.n_regions += len(batch.region_rows)
        self.score_parts.append(pd.DataFrame(batch.image_scores))
        for parts, features in zip(self.feature_parts, batch.features, strict=True):
            if features:
                parts.append(np.concatenate(features))
        for stage, seconds in batch.seconds.items():
            self.stage_seconds[stage] += seconds
        if self.positional is not None and batch.positional is not None:
            self.positional.extend(batch.positional)

    def raw_features(self) -> list[np.ndarray]:
        """Per featurizer, the features of every salient region in the regions' order."""
        return [
            parts[0] if len(parts) == 1 else np.concatenate(parts) for parts in self.feature_parts
        ]

    def featurize(self) -> np.ndarray:
        """Standardised features of every salient region, in the order of the regions.

        Also keeps the few descriptors the clusters' names read (``name_features``) and
        then drops the raw features: from here on the run holds one float32 copy of
        them, the standardised one, and that only until clustering is done.
        """
        from imacs.comparison.naming import known_features
        from imacs.features.combine import standardize_blocks

        raw = self.raw_features()
        self.feature_parts = []
        self.name_features = known_features(self.settings.featurizers, raw)
        return standardize_blocks(raw)

    def causal_check(self, regions: Any, clusters: Sequence[int]) -> dict[int, dict[str, float]]:
        """Each model's response when a cluster's regions are hidden, for ``clusters``.

        ``causal_drop_*`` is the mean drop in target probability (negative when hiding the
        regions helps, as hiding a misleading shortcut does); ``causal_change_*`` is the
        mean absolute change, how much the model's answer depends on the regions at all.
        """
        s = self.settings
        assert s.causal is not None
        effects: dict[int, dict[str, float]] = {}
        with self.progress.stage("causal check", len(clusters)) as tick:
            for cluster in clusters:
                members = regions[regions["cluster"] == cluster]
                images = np.sort(members["image"].unique())
                rng = np.random.default_rng([s.seed, int(cluster)])
                if len(images) > s.causal_max_images:
                    images = np.sort(rng.choice(images, s.causal_max_images, replace=False))
                masked = []
                pixels = load_all(self.store, "images", [self.image_keys[i] for i in images])
                found = self.store.load_many("segments", [self.segment_keys[i] for i in images])
                for i, image, stored in zip(images, pixels, found, strict=True):
                    labels = self._segments(i, image) if stored is None else stored
                    ids = members.loc[members["image"] == i, "region"].to_numpy()
                    masked.append(fill_regions(image, np.isin(labels, ids), s.causal))
                hidden = np.stack(masked)
                effects[int(cluster)] = {"causal_images": float(len(images))}
                for side, model in self.models.items():
                    before = softmax_at(self.outputs[side][images], self.targets[side][images])
                    after = target_probabilities(
                        model, hidden, self.targets[side][images], batch_size=s.batch_size
                    )
                    effects[int(cluster)][f"causal_drop_{side}"] = float(np.mean(before - after))
                    change = float(np.mean(np.abs(before - after)))
                    effects[int(cluster)][f"causal_change_{side}"] = change
                tick(1)
        return effects

    # -- the whole run ------------------------------------------------------------------

    def run(self) -> Comparison:
        import pandas as pd

        from imacs.comparison.statistics import class_table, cluster_table

        s = self.settings
        timings: dict[str, float] = {}

        def timed(stage: str, function: Callable[[], Any]) -> Any:
            start = time.perf_counter()
            result = function()
            timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - start
            return result

        with self.progress.running():
            timed("ingest", self.ingest)
            timed("predict", self.check_models)
            timed("predict", self.predict)
            timed("predict", self.choose_targets)
            timed("attribute", self.attribute)
            timed("score", self.score)
            for stage, seconds in self.stage_seconds.items():
                # summed over an executor's workers, these may exceed the stage's time
                timings["score"] = max(0.0, timings["score"] - seconds)
                timings[stage] = seconds
            if self.n_regions < 2:
                raise InvalidInputError(
                    f"only {self.n_regions} salient region(s) in the whole dataset; "
                    "compare on more images, or use a segmenter that makes more regions"
                )
            features = timed("featurize", self.featurize)
            with self.progress.stage("clustering", 1) as tick:
                fit = functools.partial(s.clusterer.fit_predict, features, seed=s.seed)
                clusters = timed("cluster", fit)
                tick(1)
            del features, fit  # what remains of the run keeps no copy of every region's features
            start = time.perf_counter()
            images = self._image_table()
            regions = pd.concat(self.region_parts, ignore_index=True)
            self.region_parts = []
            regions.insert(2, "cluster", clusters.astype(np.int64))
            regions["difference"] = regions["mass_b"] - regions["mass_a"]
            per_image = images.set_index("image")
            for column in ("label", "target_a", "target_b", "correct_a", "correct_b"):
                regions[column] = per_image.loc[regions["image"], column].to_numpy()
            for column in ("correct_a", "correct_b"):
                regions[column] = regions[column].astype("boolean")
            table = cluster_table(
                regions,
                n_permutations=s.n_permutations,
                alpha=s.alpha,
                min_effect=s.min_effect,
                seed=s.seed,
            )
            timings["statistics"] = time.perf_counter() - start
            if s.causal is not None:
                # the top-ranked clusters only: the check's cost is then bounded whatever
                # the number of clusters, and those are the ones a reader looks at first
                checked = [int(c) for c in table["cluster"].head(s.causal_clusters)]
                effects = timed("causal", lambda: self.causal_check(regions, checked))
                for column in next(iter(effects.values())):
                    table[column] = [
                        effects[int(c)][column] if int(c) in effects else np.nan
                        for c in table["cluster"]
                    ]
                table["causal_images"] = table["causal_images"].fillna(0).astype(np.int64)
            classes = timed("statistics", lambda: class_table(regions, self.source.class_names))
            table.insert(
                1, "name", timed("statistics", lambda: self._cluster_names(regions, table))
            )
            spatial = timed("spatial", self.spatial_analysis) if s.spatial else None
            quality = timed("quality", self.quality_analysis) if s.quality else None
        return Comparison(
            clusters=table.reset_index(drop=True),
            regions=regions,
            images=images,
            classes=classes,
            settings=s.describe(),
            models={side: model.describe() for side, model in self.models.items()},
            dataset={
                "n_images": len(self.image_keys),
                "class_names": self.source.class_names,
                "skipped": list(self.source.skipped),
                "image_shape": list(self._images([0]).shape[1:]),
                "pixel_min": self.pixel_range[0],
                "pixel_max": self.pixel_range[1],
            },
            store=self.store.location,
            work={"attributed_a": self.attributed["a"], "attributed_b": self.attributed["b"]},
            timings=timings,
            spatial=spatial,
            quality=quality,
        )

    def quality_analysis(self) -> Any:
        """Each model's quality table (:mod:`imacs.comparison.quality`) on a sample.

        The sample is drawn under the seed among the images of the dataset's first size
        (the measures batch images together), the same images for both models, and the
        measures score the maps already in the store.
        """
        from imacs.comparison.quality import quality_sample, run_quality

        s = self.settings
        shape = self._images([0]).shape[1:]
        index = quality_sample(
            len(self.image_keys),
            s.quality_images,
            s.seed,
            lambda i: self._load("images", self.image_keys[i]).shape == shape,
        )
        names = {}
        for side, model in self.models.items():
            described = model.describe()
            kind = described.get("framework") or described.get("adapter")
            names[side] = str(
                described.get("name") or (f"{side.upper()} ({kind})" if kind else side.upper())
            )
        with self.progress.stage("quality measures", 2 * len(s.quality)) as tick:
            table = run_quality(
                self.models,
                names,
                self._images(index),
                {side: self.targets[side][index] for side in self.models},
                {side: np.stack([self._map(side, i) for i in index]) for side in self.models},
                s.quality,
                s.method,
                level=1.0 - s.alpha,
                seed=s.seed,
                batch_size=s.batch_size,
                on_measure=lambda: tick(1),
            )
        table.attrs["measures"] = s.describe()["quality"]
        table.attrs["images"] = index
        return table

    def spatial_analysis(self) -> Any:
        """The "where in the frame" parts (:mod:`imacs.spatial.analysis`) chosen in settings.

        The positional maps were gathered while scoring; the other parts need the models
        and a sample of images of the dataset's first size.
        """
        from imacs.spatial.analysis import ACTIVATION_IMAGES, analyse_models

        s = self.settings
        first = self._images([0])
        shape = first.shape[1:]
        sample_index: list[int] = []
        candidates = self.image_keys[: 4 * ACTIVATION_IMAGES]
        for start in range(0, len(candidates), ACTIVATION_IMAGES):  # a chunk read together
            if len(sample_index) >= ACTIVATION_IMAGES:
                break
            chunk = load_all(self.store, "images", candidates[start : start + ACTIVATION_IMAGES])
            sample_index += [start + j for j, image in enumerate(chunk) if image.shape == shape]
        sample_index = sample_index[:ACTIVATION_IMAGES]
        with self.progress.stage("where in the frame", 1) as tick:
            result = analyse_models(
                self.models, self._images(sample_index), parts=s.spatial, batch_size=s.batch_size
            )
            if self.positional is not None:
                result.positional = self.positional.result(alpha=s.alpha, seed=s.seed)
                self.positional.close()
            tick(1)
        return result

    def _cluster_names(self, regions: Any, table: Any) -> list[str]:
        """Each cluster's name in words (:mod:`imacs.comparison.naming`), in table order."""
        from imacs.comparison.naming import cluster_names

        order = [int(c) for c in table["cluster"]]
        shape = self._images([0]).shape[1:3]
        names = cluster_names(regions, shape, order, self.name_features)
        return [names[c] for c in order]

    def _relative_deltas(self, side: str) -> np.ndarray:
        """Per image, the map's completeness error as a share of its attribution; NaN if unknown."""
        deltas = np.full(len(self.image_keys), np.nan)
        keys = self.map_keys[side]
        for start in range(0, len(keys), READ_TOGETHER):
            for i, stored in enumerate(
                self.store.load_many("convergence", keys[start : start + READ_TOGETHER]), start
            ):
                if stored is None:
                    continue
                delta, total = float(stored[0]), float(stored[1])
                deltas[i] = abs(delta) / total if total > 0 else (0.0 if delta == 0 else np.inf)
        return deltas

    def _image_table(self) -> Any:
        import pandas as pd

        n = len(self.image_keys)
        labels = self.labels if self.labels is not None else np.full(n, -1, dtype=np.int64)
        known = labels >= 0
        table = pd.DataFrame(
            {
                "image": np.arange(n),
                "name": self.names,
                "label": labels,
                "pred_a": self.pred_a,
                "pred_b": self.pred_b,
                "target_a": self.targets["a"],
                "target_b": self.b_to_a[self.targets["b"]],
                "correct_a": pd.array(
                    np.where(known, self.pred_a == labels, False), dtype="boolean"
                ),
                "correct_b": pd.array(
                    np.where(known, self.pred_b == labels, False), dtype="boolean"
                ),
                "agree": self.pred_a == self.pred_b,
                "probability_a": softmax_at(self.outputs["a"], self.targets["a"]),
                "probability_b": softmax_at(self.outputs["b"], self.targets["b"]),
            }
        )
        if not known.all():
            table.loc[~known, ["correct_a", "correct_b"]] = pd.NA
        scores = pd.concat(self.score_parts, ignore_index=True)
        table = pd.concat([table, scores], axis=1)
        table["convergence_delta_a"] = self._relative_deltas("a")
        table["convergence_delta_b"] = self._relative_deltas("b")
        table["image_key"] = self.image_keys
        table["map_key_a"] = self.map_keys["a"]
        table["map_key_b"] = self.map_keys["b"]
        table["segments_key"] = self.segment_keys
        return table
