"""Small inputs shared by the quality-measure tests: a softplus network and eight images."""

from __future__ import annotations

import numpy as np
import pytest

from imacs.adapters.function import FunctionAdapter
from imacs.testing import softplus_model

IMAGE_SHAPE = (8, 8, 3)


@pytest.fixture(scope="session")
def toy_model() -> FunctionAdapter:
    return softplus_model(IMAGE_SHAPE, n_classes=4, hidden=16, seed=0)


@pytest.fixture(scope="session")
def toy_images() -> np.ndarray:
    return np.random.default_rng(1).random((8, *IMAGE_SHAPE)).astype(np.float32)


@pytest.fixture(scope="session")
def toy_targets() -> np.ndarray:
    return np.arange(8) % 4


@pytest.fixture(scope="session")
def toy_maps(toy_model, toy_images, toy_targets) -> np.ndarray:
    return toy_model.gradients(toy_images, toy_targets)
