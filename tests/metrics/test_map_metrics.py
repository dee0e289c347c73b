"""The built-in map-agreement metrics, against scipy, scikit-image and NumPy."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pytest
from scipy.stats import spearmanr
from skimage.metrics import structural_similarity

from imacs.errors import InvalidInputError
from imacs.metrics import cosine, spearman, ssim, top_k_iou
from imacs.metrics.base import MapMetric
from imacs.metrics.cosine import CosineSimilarity
from imacs.metrics.spearman import SpearmanRankCorrelation
from imacs.metrics.ssim import StructuralSimilarity, window_size
from imacs.metrics.top_k_iou import TopKIntersectionOverUnion

METRICS: list[MapMetric] = [
    SpearmanRankCorrelation(),
    TopKIntersectionOverUnion(),
    TopKIntersectionOverUnion(fraction=0.5),
    StructuralSimilarity(),
    CosineSimilarity(),
]
IDS = [repr(m) for m in METRICS]


def random_map(*shape: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=shape)


@pytest.mark.parametrize("metric", METRICS, ids=IDS)
@pytest.mark.parametrize("shape", [(16, 12), (9, 7, 3), (3, 3)])
def test_a_map_agrees_perfectly_with_itself(metric: MapMetric, shape: tuple[int, ...]) -> None:
    heatmap = random_map(*shape, seed=1)
    assert metric.score(heatmap, heatmap) == pytest.approx(1.0)
    assert metric.score(heatmap, heatmap * 7.5) == pytest.approx(1.0)  # scale does not matter
    assert metric.higher_is_more_similar


@pytest.mark.parametrize("metric", [SpearmanRankCorrelation(), CosineSimilarity()], ids=repr)
def test_a_map_and_its_negation_score_minus_one(metric: MapMetric) -> None:
    heatmap = random_map(10, 11, seed=2)
    assert metric.score(heatmap, -heatmap) == pytest.approx(-1.0)


@pytest.mark.parametrize("metric", METRICS, ids=IDS)
@pytest.mark.parametrize(
    ("shape_a", "shape_b"), [((8, 8), (8, 9)), ((8, 8), (8, 8, 1)), ((8,), (8,))]
)
def test_maps_of_different_or_wrong_shapes_are_refused(
    metric: MapMetric, shape_a: tuple[int, ...], shape_b: tuple[int, ...]
) -> None:
    with pytest.raises(InvalidInputError, match="expected two maps of one shape"):
        metric.score(np.ones(shape_a), np.ones(shape_b))


@pytest.mark.parametrize(
    ("module", "cls"),
    [
        (spearman, SpearmanRankCorrelation),
        (top_k_iou, TopKIntersectionOverUnion),
        (ssim, StructuralSimilarity),
        (cosine, CosineSimilarity),
    ],
)
def test_each_module_registers_its_metric(module: Any, cls: type) -> None:
    registered: list[type] = []
    module.register_metrics(registered.append)
    assert registered == [cls]
    assert issubclass(cls, MapMetric)


# -- spearman --------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(20, 17), (6, 5, 3)])
def test_spearman_equals_scipy(shape: tuple[int, ...]) -> None:
    a = random_map(*shape, seed=3)
    b = a + random_map(*shape, seed=4)
    b.flat[::7] = b.flat[0]  # ties too
    expected = spearmanr(a.ravel(), b.ravel()).statistic
    assert SpearmanRankCorrelation().score(a, b) == pytest.approx(expected, rel=1e-12)


def test_average_ranks_equal_scipys() -> None:
    from scipy.stats import rankdata

    from imacs.metrics.spearman import average_ranks

    values = np.round(random_map(500, seed=6), 1)  # many ties
    np.testing.assert_array_equal(average_ranks(values), rankdata(values))
    np.testing.assert_array_equal(average_ranks(np.array([2.0, 2.0, 2.0])), [2.0, 2.0, 2.0])


def test_spearman_of_a_constant_map_is_zero_not_nan() -> None:
    heatmap = random_map(5, 5, seed=5)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy's ConstantInputWarning would fail the test
        assert SpearmanRankCorrelation().score(np.zeros((5, 5)), heatmap) == 0.0
        assert SpearmanRankCorrelation().score(heatmap, np.full((5, 5), 3.0)) == 0.0
        assert SpearmanRankCorrelation().score(np.ones((5, 5)), np.ones((5, 5))) == 0.0


# -- cosine ----------------------------------------------------------------------------------


def test_cosine_equals_numpy() -> None:
    a, b = random_map(8, 9, 3, seed=6), random_map(8, 9, 3, seed=7)
    expected = np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b))
    assert CosineSimilarity().score(a, b) == pytest.approx(expected, rel=1e-12)


def test_cosine_conventions_for_zero_maps_and_extreme_scales() -> None:
    heatmap = random_map(4, 4, seed=8)
    zeros = np.zeros((4, 4))
    assert CosineSimilarity().score(zeros, zeros) == 1.0
    assert CosineSimilarity().score(zeros, heatmap) == 0.0
    assert CosineSimilarity().score(heatmap, zeros) == 0.0
    assert CosineSimilarity().score(heatmap * 1e-200, heatmap * 1e200) == pytest.approx(1.0)


# -- top-k IoU -------------------------------------------------------------------------------


def test_disjoint_tops_score_zero_and_known_overlaps_their_iou() -> None:
    a = np.arange(100, dtype=float).reshape(10, 10)  # top 10: the last row
    metric = TopKIntersectionOverUnion(fraction=0.1)
    assert metric.score(a, -a) == 0.0  # top 10 of -a: the first row
    b = a.copy()
    b[9, :4] = -1.0  # 4 of a's top pixels leave; b's top gains the 4 best of row 8
    assert metric.score(a, b) == pytest.approx(6 / 14)


def test_top_k_iou_equals_a_set_reference() -> None:
    rng = np.random.default_rng(9)
    a = np.round(rng.normal(size=(13, 11)), 1)  # rounded: plenty of ties
    b = np.round(a + rng.normal(size=(13, 11)), 1)
    fraction = 0.2
    k = round(fraction * a.size)

    def top(values: np.ndarray) -> set[int]:
        # highest first; among equal values the lower index, as Python's stable sort does
        return set(sorted(range(values.size), key=lambda i: -values.flat[i])[:k])

    expected = len(top(a) & top(b)) / len(top(a) | top(b))
    assert TopKIntersectionOverUnion(fraction=fraction).score(a, b) == pytest.approx(expected)


def test_top_k_iou_breaks_ties_by_pixel_order_and_sums_channels() -> None:
    flat = np.zeros((4, 5))
    shifted = np.zeros((4, 5))
    shifted[0, 0] = -1.0  # pushes pixel 0 out of the tied top: the top set is now 1..4
    metric = TopKIntersectionOverUnion(fraction=0.2)  # k = 4
    assert metric.score(flat, flat) == 1.0
    assert metric.score(flat, shifted) == pytest.approx(3 / 5)
    channels = np.stack([shifted, -shifted], axis=-1)  # sums to all zeros
    assert metric.score(channels, np.stack([flat, flat], axis=-1)) == 1.0


def test_top_k_iou_keeps_at_least_one_pixel() -> None:
    a = np.zeros((3, 3))
    a[1, 1] = 1.0
    assert TopKIntersectionOverUnion(fraction=0.01).score(a, a.T) == 1.0


@pytest.mark.parametrize("fraction", [0, -0.1, 1.5, "0.1", True])
def test_top_k_iou_refuses_a_bad_fraction(fraction: Any) -> None:
    with pytest.raises(InvalidInputError, match="fraction"):
        TopKIntersectionOverUnion(fraction=fraction)


# -- ssim ------------------------------------------------------------------------------------


@pytest.mark.parametrize(("shape", "win_size"), [((20, 17), 7), ((5, 9), 5), ((12, 12, 3), 7)])
def test_ssim_equals_skimage_on_max_abs_scaled_maps(shape: tuple[int, ...], win_size: int) -> None:
    a = random_map(*shape, seed=10)
    b = 50.0 * (a + random_map(*shape, seed=11))
    a2, b2 = (a.sum(axis=-1), b.sum(axis=-1)) if len(shape) == 3 else (a, b)
    expected = structural_similarity(
        a2 / np.abs(a2).max(), b2 / np.abs(b2).max(), win_size=win_size, data_range=2.0
    )
    assert StructuralSimilarity().score(a, b) == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize(
    ("side", "expected"), [((3, 40), 3), ((4, 4), 3), ((6, 5), 5), ((6, 6), 5), ((7, 9), 7)]
)
def test_ssim_window_fits_small_maps(side: tuple[int, int], expected: int) -> None:
    assert window_size(*side) == expected
    heatmap = random_map(*side, seed=12)
    assert StructuralSimilarity().score(heatmap, heatmap) == pytest.approx(1.0)


def test_ssim_refuses_maps_under_three_pixels_and_handles_zero_maps() -> None:
    with pytest.raises(InvalidInputError, match="at least 3x3"):
        StructuralSimilarity().score(np.ones((2, 10)), np.ones((2, 10)))
    zeros = np.zeros((8, 8))
    assert StructuralSimilarity().score(zeros, zeros) == pytest.approx(1.0)
    assert np.isfinite(StructuralSimilarity().score(zeros, random_map(8, 8, seed=13)))


# -- batches --------------------------------------------------------------------------------


def awkward_maps(*shape: int) -> tuple[np.ndarray, np.ndarray]:
    """Six pairs: random, tied (quantised), sparse, constant, all zero, and a map with itself."""
    rng = np.random.default_rng(21)
    a, b = rng.normal(size=(6, *shape)), rng.normal(size=(6, *shape))
    a[1], b[1] = np.round(a[1]), np.round(b[1] * 2)
    a[2][np.abs(a[2]) < 1] = 0
    b[2][np.abs(b[2]) < 0.5] = 0
    a[3] = 0.25
    a[4] = b[4] = 0.0
    b[5] = a[5]
    return a, b


@pytest.mark.parametrize("metric", METRICS, ids=IDS)
@pytest.mark.parametrize("shape", [(12, 10), (9, 7, 3)])
def test_a_batch_gives_each_pair_its_own_score(metric: MapMetric, shape: tuple[int, ...]) -> None:
    from imacs.testing import check_map_metric

    check_map_metric(metric, *awkward_maps(*shape))


@pytest.mark.parametrize("metric", METRICS, ids=IDS)
def test_score_batch_refuses_stacks_of_different_shapes(metric: MapMetric) -> None:
    with pytest.raises(InvalidInputError, match="two stacks of maps of one shape"):
        metric.score_batch(np.ones((2, 8, 8)), np.ones((3, 8, 8)))
    with pytest.raises(InvalidInputError, match="two stacks of maps of one shape"):
        metric.score_batch(np.ones((8, 8)), np.ones((8, 8)))
    assert metric.score_batch(np.ones((0, 8, 8)), np.ones((0, 8, 8))).shape == (0,)


class FirstPairOnly(CosineSimilarity):
    """A broken batch: every pair gets the first pair's score."""

    name = "broken-cosine"

    def _score_batch(self, maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
        return np.full(len(maps_a), self._score(maps_a[0], maps_b[0]))


def test_the_metric_checks_catch_a_batch_that_mixes_pairs_up() -> None:
    from imacs.testing import check_map_metric

    with pytest.raises(AssertionError, match="batch_equals_single_pairs"):
        check_map_metric(FirstPairOnly(), *awkward_maps(8, 8))
