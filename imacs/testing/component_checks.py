"""The conformance suites for segmenters, featurizers, metrics and clusterers.

A comparison segments every image once and scores both models on that one partition, so
a segmenter must give integer labels of the image's size and the same labels for the
same image, every time. It calls featurizers and metrics a batch of images at a time
(``featurize_batch``, ``score_batch``) and reports per image, so a component's batched
answer must be the answer it gives for each image alone, whatever else is in the batch.
A clusterer must give one dense label per row, the same for the same seed. The checks
here say so for a given component and inputs; each ``check_*`` function runs them all
and raises one ``AssertionError`` listing every failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.comparison.clustering import Clusterer
from imacs.errors import InvalidInputError
from imacs.features.base import Featurizer
from imacs.metrics.base import MapMetric
from imacs.segmentation.base import Segmenter
from imacs.testing.reporting import run_checks


def _largest_difference(a: np.ndarray, b: np.ndarray) -> float:
    if a.size == 0:
        return 0.0
    scale = max(float(np.abs(a).max()), float(np.abs(b).max()), 1e-12)
    return float(np.abs(a - b).max()) / scale


def check_featurizer(
    featurizer: Featurizer,
    images: np.ndarray,
    labels: Sequence[np.ndarray] | np.ndarray,
    *,
    model: ModelAdapter | None = None,
    rtol: float = 0.0,
) -> None:
    """Run every featurizer check on ``images`` ``(N, H, W, C)`` and their dense ``labels``.

    Use two to four images of one size. ``rtol`` is the largest difference allowed between
    a batched and a single-image answer, relative to the largest feature: 0 for a
    featurizer of pixel arithmetic (the built-ins are exact), about 1e-5 for one that
    runs a network, whose batched convolutions round differently.
    """
    images = np.asarray(images, dtype=np.float32)
    labels = [np.asarray(label_map) for label_map in labels]
    singles: list[np.ndarray] = []

    def one_row_per_region() -> None:
        for image, label_map in zip(images, labels, strict=True):
            features = featurizer.featurize(image, label_map, model=model)
            assert features.dtype == np.float32, f"featurize returned {features.dtype}"
            assert features.shape[0] == int(label_map.max()) + 1, (
                f"featurize returned {features.shape[0]} rows for {int(label_map.max()) + 1} "
                "regions"
            )
            assert np.isfinite(features).all(), "featurize returned NaN or infinity"
            singles.append(features)
        dimensions = {features.shape[1] for features in singles}
        assert len(dimensions) == 1, f"images got features of different lengths {dimensions}"

    def batch_equals_single_images() -> None:
        assert singles, "no single-image features to compare with"
        batched = featurizer.featurize_batch(images, labels, model=model)
        assert len(batched) == len(images), f"{len(batched)} arrays for {len(images)} images"
        for i, (one, alone) in enumerate(zip(batched, singles, strict=True)):
            assert one.shape == alone.shape, f"image {i}: {one.shape} batched, {alone.shape} alone"
            difference = _largest_difference(one, alone)
            assert difference <= rtol, (
                f"image {i}: batched features differ from single-image ones by {difference:.2e} "
                f"of the largest (allowed {rtol:.0e})"
            )

    def batch_order_does_not_matter() -> None:
        order = np.arange(len(images))[::-1]
        reversed_batch = featurizer.featurize_batch(
            images[order], [labels[i] for i in order], model=model
        )
        forward = featurizer.featurize_batch(images, labels, model=model)
        for position, i in enumerate(order):
            difference = _largest_difference(reversed_batch[position], forward[i])
            assert difference <= rtol, (
                f"image {i}'s features change with its place in the batch ({difference:.2e})"
            )

    def determinism() -> None:
        first = featurizer.featurize_batch(images, labels, model=model)
        second = featurizer.featurize_batch(images, labels, model=model)
        for i, (a, b) in enumerate(zip(first, second, strict=True)):
            assert np.array_equal(a, b), f"image {i}: two calls gave different features"

    run_checks(
        f"featurizer {featurizer.name!r}",
        [
            ("one_row_per_region", one_row_per_region),
            ("batch_equals_single_images", batch_equals_single_images),
            ("batch_order_does_not_matter", batch_order_does_not_matter),
            ("determinism", determinism),
        ],
    )


def check_map_metric(
    metric: MapMetric, maps_a: np.ndarray, maps_b: np.ndarray, *, atol: float = 1e-12
) -> None:
    """Run every metric check on two stacks of maps ``(N, H, W)`` or ``(N, H, W, C)``.

    ``score`` must return a finite float per pair, and ``score_batch`` what ``score``
    gives each pair alone (to ``atol``), in any batch order.
    """
    maps_a = np.asarray(maps_a, dtype=np.float64)
    maps_b = np.asarray(maps_b, dtype=np.float64)
    singles: list[float] = []

    def finite_float_per_pair() -> None:
        for a, b in zip(maps_a, maps_b, strict=True):
            value: Any = metric.score(a, b)
            assert isinstance(value, float), f"score returned {type(value).__name__}"
            assert np.isfinite(value), f"score returned {value}"
            singles.append(value)

    def batch_equals_single_pairs() -> None:
        assert singles, "no single-pair scores to compare with"
        batched = metric.score_batch(maps_a, maps_b)
        assert batched.shape == (len(maps_a),), f"score_batch returned shape {batched.shape}"
        worst = float(np.max(np.abs(batched - np.array(singles))))
        assert worst <= atol, f"batched scores differ from single-pair ones by {worst:.2e}"

    def batch_order_does_not_matter() -> None:
        order = np.arange(len(maps_a))[::-1]
        forward = metric.score_batch(maps_a, maps_b)
        backward = metric.score_batch(maps_a[order], maps_b[order])
        worst = float(np.max(np.abs(backward - forward[order])))
        assert worst <= atol, f"a pair's score changes with its place in the batch ({worst:.2e})"

    run_checks(
        f"metric {metric.name!r}",
        [
            ("finite_float_per_pair", finite_float_per_pair),
            ("batch_equals_single_pairs", batch_equals_single_pairs),
            ("batch_order_does_not_matter", batch_order_does_not_matter),
        ],
    )


def check_segmenter(segmenter: Segmenter, images: Sequence[np.ndarray] | np.ndarray) -> None:
    """Run every segmenter check on ``images``, each channel-last ``(H, W, C)``.

    Use two or three small images; they may differ in size. The checks: ``_segment``
    returns integer labels (not floats, which would be rounded into regions nobody drew)
    of the image's height and width; ``segment`` returns int32 labels ``0 .. R-1``, every
    one used; two calls on one image, and a call on a copy of it, give the same labels
    (randomness must come from a seed parameter); the caller's image is left alone; and
    an image that is not ``(H, W, C)`` raises ``InvalidInputError``.
    """
    images = [np.asarray(image, dtype=np.float32) for image in images]
    first: list[np.ndarray] = []

    def integer_labels_of_the_image_size() -> None:
        for i, image in enumerate(images):
            raw = np.asarray(segmenter._segment(image.copy()))
            assert raw.shape == image.shape[:2], (
                f"image {i}: _segment returned labels of shape {raw.shape} for an image of "
                f"shape {image.shape}; expected (H, W) = {image.shape[:2]}"
            )
            assert np.issubdtype(raw.dtype, np.integer), (
                f"image {i}: _segment returned labels of dtype {raw.dtype}; expected integers "
                "(cast with .astype(np.int32) after making sure no two regions share a label)"
            )

    def dense_int32_labels() -> None:
        for i, image in enumerate(images):
            labels = segmenter.segment(image)
            assert labels.dtype == np.int32, f"image {i}: segment returned {labels.dtype}"
            assert labels.shape == image.shape[:2], (
                f"image {i}: segment returned shape {labels.shape} for {image.shape}"
            )
            used = np.unique(labels)
            assert np.array_equal(used, np.arange(len(used))), (
                f"image {i}: labels are not 0 .. R-1 with every label used"
            )
            first.append(labels)

    def determinism() -> None:
        assert first, "no labels to compare with"
        for i, (image, labels) in enumerate(zip(images, first, strict=True)):
            before = image.copy()
            again = segmenter.segment(image)
            assert np.array_equal(image, before), f"image {i}: the segmenter modified the image"
            assert np.array_equal(again, labels), (
                f"image {i}: two calls gave different labels; a comparison segments each image "
                "once for both models and must get the same regions on a rerun: take "
                "randomness from a seed parameter"
            )
            assert np.array_equal(segmenter.segment(image.copy()), labels), (
                f"image {i}: a copy of the image got different labels"
            )

    def rejects_a_batch() -> None:
        batch = np.stack([images[0], images[0]])
        try:
            segmenter.segment(batch)
        except InvalidInputError:
            return
        raise AssertionError(
            f"segment accepted an array of shape {batch.shape}; expected InvalidInputError"
        )

    run_checks(
        f"segmenter {segmenter.name!r}",
        [
            ("integer_labels_of_the_image_size", integer_labels_of_the_image_size),
            ("dense_int32_labels", dense_int32_labels),
            ("determinism", determinism),
            ("rejects_a_batch", rejects_a_batch),
        ],
    )


def check_clusterer(clusterer: Clusterer, features: np.ndarray, *, seed: int = 0) -> None:
    """Run every clusterer check on ``features`` ``(N, D)``.

    Use a few dozen rows that fall into a few groups. The checks: ``fit_predict``
    returns int64 labels ``0 .. k-1``, one per row, every label used; the same seed gives
    the same labels, and the caller's features are left alone; rows that are exact
    duplicates get one label; and features holding NaN raise ``InvalidInputError``.
    """
    features = np.asarray(features, dtype=np.float64)
    first: list[np.ndarray] = []

    def dense_label_per_row() -> None:
        labels = clusterer.fit_predict(features, seed=seed)
        assert labels.dtype == np.int64, f"fit_predict returned {labels.dtype}"
        assert labels.shape == (len(features),), (
            f"fit_predict returned shape {labels.shape} for {len(features)} rows"
        )
        used = np.unique(labels)
        assert np.array_equal(used, np.arange(len(used))), (
            "labels are not 0 .. k-1 with every label used"
        )
        first.append(labels)

    def determinism() -> None:
        assert first, "no labels to compare with"
        before = features.copy()
        again = clusterer.fit_predict(features, seed=seed)
        assert np.array_equal(features, before), "the clusterer modified the features"
        assert np.array_equal(again, first[0]), (
            f"two calls with seed={seed} gave different labels: take randomness from the seed"
        )

    def duplicates_share_a_label() -> None:
        repeated = min(5, len(features))
        doubled = np.concatenate([features, features[:repeated]])
        labels = clusterer.fit_predict(doubled, seed=seed)
        n = len(features)
        assert np.array_equal(labels[:repeated], labels[n:]), (
            "rows that are exact duplicates got different labels"
        )

    def rejects_nan() -> None:
        bad = features.copy()
        bad[0, 0] = np.nan
        try:
            clusterer.fit_predict(bad, seed=seed)
        except InvalidInputError:
            return
        raise AssertionError("features holding NaN were accepted; expected InvalidInputError")

    run_checks(
        f"clusterer {clusterer.name!r}",
        [
            ("dense_label_per_row", dense_label_per_row),
            ("determinism", determinism),
            ("duplicates_share_a_label", duplicates_share_a_label),
            ("rejects_nan", rejects_nan),
        ],
    )
