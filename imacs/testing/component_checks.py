"""The conformance suites for featurizers and map metrics.

A comparison calls these components a batch of images at a time (``featurize_batch``,
``score_batch``) and reports per image, so a component's batched answer must be the
answer it gives for each image alone, whatever else is in the batch. The checks here say
so for a given component and inputs; ``check_featurizer`` and ``check_map_metric`` run
them all and raise one ``AssertionError`` listing every failure.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.features.base import Featurizer
from imacs.metrics.base import MapMetric
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
