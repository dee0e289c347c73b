"""Region scores and the selection of salient regions."""

from __future__ import annotations

import numpy as np
import pytest

from imacs.comparison.scoring import normalise_map, score_regions, select_regions
from imacs.errors import InvalidInputError


def test_normalised_maps_have_unit_l1_norm_and_keep_sign() -> None:
    rng = np.random.default_rng(0)
    raw = rng.normal(size=(6, 5, 3))
    phi = normalise_map(raw)
    assert phi.shape == (6, 5)
    assert np.isclose(np.abs(phi).sum(), 1.0)
    np.testing.assert_allclose(phi, raw.sum(-1) / np.abs(raw.sum(-1)).sum())
    assert not normalise_map(np.zeros((4, 4, 1))).any()


def test_absolute_maps_take_each_pixels_magnitude_after_the_channel_sum() -> None:
    raw = np.random.default_rng(1).normal(size=(6, 5, 3))
    phi = normalise_map(raw, "absolute")
    np.testing.assert_allclose(phi, np.abs(normalise_map(raw)))
    assert (phi >= 0).all() and np.isclose(phi.sum(), 1.0)
    with pytest.raises(InvalidInputError, match="sign"):
        normalise_map(raw, "squared")


def test_region_scores_on_a_known_partition() -> None:
    labels = np.array([[0, 0, 1], [2, 2, 1]])
    map_a = np.array([[0.5, 0.1, -0.1], [0.1, 0.1, -0.1]])
    map_b = np.array([[0.0, 0.0, 0.6], [0.2, 0.0, 0.2]])
    s = score_regions(labels, map_a, map_b)
    np.testing.assert_array_equal(s.area, [2, 2, 2])
    np.testing.assert_allclose(s.mass_a, [0.6, -0.2, 0.2])
    np.testing.assert_allclose(s.abs_a, [0.6, 0.2, 0.2])
    np.testing.assert_allclose(s.mass_b, [0.0, 0.8, 0.2])
    np.testing.assert_allclose(s.density_b, [0.0, 0.4, 0.1])
    np.testing.assert_array_equal(s.rank_a, [1, 3, 2])
    np.testing.assert_array_equal(s.rank_b, [3, 1, 2])
    chosen_a, chosen_b = select_regions(s, top_k=1)
    np.testing.assert_array_equal(chosen_a, [True, False, False])
    np.testing.assert_array_equal(chosen_b, [False, True, False])


def test_area_fraction_keeps_the_densest_regions_until_the_share_is_covered() -> None:
    labels = np.repeat(np.arange(4), 25).reshape(10, 10)  # four regions of 25 pixels
    map_a = labels.astype(float)  # region 3 densest, then 2...
    s = score_regions(labels, map_a, -map_a)
    chosen_a, chosen_b = select_regions(s, top_k=None, area_fraction=0.3)
    np.testing.assert_array_equal(chosen_a, [False, False, True, True])
    np.testing.assert_array_equal(chosen_b, [True, True, False, False])


def test_ties_are_ranked_by_region_label() -> None:
    labels = np.arange(4).reshape(2, 2)
    s = score_regions(labels, np.zeros((2, 2)), np.ones((2, 2)) / 4)
    np.testing.assert_array_equal(s.rank_a, [1, 2, 3, 4])
