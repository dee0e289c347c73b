"""ROAD's noisy linear imputation equals the reference formula, solved here densely."""

from __future__ import annotations

import numpy as np
import pytest

import imacs
from imacs.quality.road import linear_imputation, noisy_linear_imputation
from imacs.testing import check_quality_measure


def dense_reference(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """Rong et al.: each removed pixel is the weighted mean of its in-image neighbours.

    Written as one dense system over all pixels: a kept pixel equals its value; a removed
    pixel times the sum of its in-image neighbours' weights equals their weighted sum.
    """
    h, w, c = image.shape
    weights = {(dr, dc): (1 / 12 if dr and dc else 1 / 6) for dr in (-1, 0, 1) for dc in (-1, 0, 1)}
    del weights[(0, 0)]
    a = np.zeros((h * w, h * w))
    b = np.zeros((h * w, c))
    for r in range(h):
        for q in range(w):
            p = r * w + q
            if not removed[r, q]:
                a[p, p], b[p] = 1.0, image[r, q]
                continue
            for (dr, dc), weight in weights.items():
                if 0 <= r + dr < h and 0 <= q + dc < w:
                    a[p, p] += weight
                    a[p, (r + dr) * w + q + dc] -= weight
    return np.linalg.solve(a, b).reshape(h, w, c)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_imputation_equals_the_dense_solution(seed):
    rng = np.random.default_rng(seed)
    image = rng.random((6, 7, 3)).astype(np.float32)
    removed = rng.random((6, 7)) < 0.5
    removed[0, 0] = removed[5, 6] = True  # corners: three neighbours only
    np.testing.assert_allclose(
        linear_imputation(image, removed), dense_reference(image, removed), atol=1e-6
    )


def test_a_pixel_among_known_ones_is_their_weighted_mean():
    image = np.arange(9, dtype=np.float32).reshape(3, 3, 1)
    removed = np.zeros((3, 3), bool)
    removed[1, 1] = True
    direct = (image[0, 1] + image[2, 1] + image[1, 0] + image[1, 2]) / 6 + (
        image[0, 0] + image[0, 2] + image[2, 0] + image[2, 2]
    ) / 12
    assert linear_imputation(image, removed)[1, 1, 0] == pytest.approx(float(direct[0]))


def test_noise_falls_on_removed_pixels_only():
    rng = np.random.default_rng(0)
    image = rng.random((8, 8, 3)).astype(np.float32)
    removed = rng.random((8, 8)) < 0.3
    noisy = noisy_linear_imputation(image, removed, 0.01, np.random.default_rng(5))
    clean = linear_imputation(image, removed)
    np.testing.assert_array_equal(noisy[~removed], image[~removed])
    spread = (noisy - clean)[removed].std()
    assert 0.005 < spread < 0.02


@pytest.mark.parametrize(("name", "first"), [("road-morf", "most"), ("road-lerf", "least")])
def test_road_equals_a_direct_loop(name, first, toy_model, toy_images, toy_targets, toy_maps):
    measure = imacs.get_component("measure", name, percentiles=[25, 50])
    result = measure.evaluate(toy_model, toy_images, toy_targets, toy_maps, seed=3, batch_size=3)
    for i, (image, target, saliency) in enumerate(
        zip(toy_images, toy_targets, toy_maps.sum(axis=-1), strict=True)
    ):
        values = saliency.reshape(-1) if first == "most" else -saliency.reshape(-1)
        order = np.argsort(-values, kind="stable")
        for s, percent in enumerate([25, 50]):
            removed = np.zeros(64, bool)
            removed[order[: round(percent / 100 * 64)]] = True
            filled = noisy_linear_imputation(
                image, removed.reshape(8, 8), 0.01, np.random.default_rng([3, i, s])
            )
            z = toy_model.predict(filled[None]).astype(np.float64)[0]
            p = np.exp(z - z.max())
            assert result.curves[i, s] == pytest.approx(p[target] / p.sum(), rel=1e-6)
    np.testing.assert_allclose(result.scores, result.curves.mean(axis=1))


@pytest.mark.parametrize("name", ["road-morf", "road-lerf"])
def test_passes_the_conformance_check(name, toy_model, toy_images, toy_targets, toy_maps):
    measure = imacs.get_component("measure", name, percentiles=[20, 60])
    check_quality_measure(measure, toy_model, toy_images, toy_targets, toy_maps)
