"""pytest fixtures for testing imacs plugins.

Enable with ``pytest_plugins = ["imacs.testing.pytest_plugin"]`` in a ``conftest.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np
import pytest

from imacs import plugins
from imacs.adapters.function import FunctionAdapter
from imacs.plugins import PluginHost
from imacs.testing.toy_models import softplus_model


@pytest.fixture
def imacs_host() -> Iterator[PluginHost]:
    """A fresh process-wide plugin host; plugins registered on it vanish after the test."""
    plugins.reset()
    host = plugins.get_host()
    try:
        yield host
    finally:
        plugins.reset()


@pytest.fixture
def toy_model() -> FunctionAdapter:
    """A smooth analytic model on 8x8x3 images with 4 classes."""
    return softplus_model()


@pytest.fixture
def toy_images() -> np.ndarray:
    """Four random 8x8x3 float32 images in [0, 1]."""
    return np.random.default_rng(0).random((4, 8, 8, 3), dtype=np.float32)
