"""Positional maps find a planted positional difference, and none between seed twins.

Model B is trained only on images whose object lies in the left third, model A on
objects anywhere. Both are tiny CNNs with a flattening head: a head that averages over
positions (as :mod:`imacs.demo.models` does) is blind to position by construction, so
it could not learn the planted difference. On test images with objects anywhere, B's
attribution leans left; the max-t sign-flip test marks left cells, and seed twins
(A trained twice) get no mark.
"""

from __future__ import annotations

import numpy as np
import pytest

from imacs.spatial.positional import (
    PositionalAccumulator,
    cell_overlaps,
    frame_ratio,
)

SIZE = 24
PATCH = 6


def _objects(n: int, seed: int, *, left_only: bool) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    images = rng.normal(0.5, 0.08, (n, SIZE, SIZE, 3)).astype(np.float32)
    labels = rng.integers(0, 2, n)
    for image, label in zip(images, labels, strict=True):
        y = rng.integers(0, SIZE - PATCH + 1)
        x = rng.integers(0, (SIZE // 3 - PATCH // 2) if left_only else SIZE - PATCH + 1)
        image[y : y + PATCH, x : x + PATCH] = (0.9, 0.1, 0.1) if label == 0 else (0.1, 0.9, 0.1)
    return np.clip(images, 0, 1), labels


def _train(images: np.ndarray, labels: np.ndarray, seed: int):
    import torch
    from torch import nn

    torch.manual_seed(seed)
    model = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(8, 8, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Flatten(),
        nn.Linear(8 * (SIZE // 4) ** 2, 2),
    )
    x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())
    y = torch.from_numpy(labels)
    optimiser = torch.optim.Adam(model.parameters(), lr=5e-3)
    generator = torch.Generator().manual_seed(seed)
    for _ in range(10):
        for batch in torch.randperm(len(x), generator=generator).split(64):
            optimiser.zero_grad()
            nn.functional.cross_entropy(model(x[batch]), y[batch]).backward()
            optimiser.step()
    return model.eval()


def _positional(model_a, model_b, images, labels):
    from imacs import load_model

    adapters = [load_model(model_a), load_model(model_b)]
    maps = [adapter.gradients(images, labels) * images for adapter in adapters]
    accumulator = PositionalAccumulator(grid=8)
    for map_a, map_b in zip(*maps, strict=True):
        accumulator.add(map_a, map_b)
    return accumulator.result(n_flips=1000, n_bootstrap=500, seed=0)


@pytest.fixture(scope="module")
def models():
    torch = pytest.importorskip("torch")
    anywhere = _objects(300, 1, left_only=False)
    left = _objects(300, 2, left_only=True)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny models train ten times faster than on shared cores
    try:
        return _train(*anywhere, seed=0), _train(*left, seed=0), _train(*anywhere, seed=1)
    finally:
        torch.set_num_threads(threads)


def test_planted_left_bias_is_found_on_the_left(models) -> None:
    model_a, model_b, _ = models
    images, labels = _objects(120, 3, left_only=False)
    result = _positional(model_a, model_b, images, labels)
    marked = result.marked & (result.difference > 0)
    assert marked.sum() >= 8
    columns = np.nonzero(marked)[1]
    assert columns.max() < 8 / 2  # more attribution from B on the left, only there
    left, right = result.difference[:, :3].mean(), result.difference[:, -3:].mean()
    assert left > 0 > right
    # every marked cell's interval excludes 0 on the side of its difference
    assert (result.ci_low[marked] > 0).all()


def test_seed_twins_differ_nowhere(models) -> None:
    model_a, _, twin = models
    images, labels = _objects(120, 3, left_only=False)
    result = _positional(model_a, twin, images, labels)
    assert not result.marked.any(), np.abs(result.difference[result.significant]).max()
    # seed twins may differ a little, for real, in a few cells: far below the planted bias
    assert (
        np.abs(result.difference).max()
        < 0.5 * _positional(model_a, models[1], images, labels).difference.max()
    )


def test_binning_keeps_mass_for_any_size() -> None:
    for n, cells in ((24, 8), (25, 8), (7, 8), (224, 32)):
        overlaps = cell_overlaps(n, cells)
        assert np.allclose(overlaps.sum(axis=0), 1.0)
        assert np.allclose(overlaps.sum(axis=1), n / cells)
    accumulator = PositionalAccumulator(grid=4)
    rng = np.random.default_rng(0)
    accumulator.add(rng.normal(size=(30, 17, 3)), rng.normal(size=(30, 17, 3)))
    cells = accumulator.cells.to_array()
    assert cells.shape == (1, 2 * 4 * 4)
    assert np.isclose(cells[0, :16].sum(), 1.0, atol=1e-5)
    assert np.isclose(cells[0, 16:].sum(), 1.0, atol=1e-5)


def test_frame_ratio_is_one_for_uniform_maps_and_above_for_borders() -> None:
    uniform = np.full((20, 30), 1 / 600)
    assert np.isclose(frame_ratio(uniform, 2), 1.0)
    border = np.zeros((20, 30))
    border[0, :] = 1 / 30
    assert frame_ratio(border, 1) > 5
