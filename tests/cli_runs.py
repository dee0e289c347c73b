"""Running the CLI in this process, with small NumPy models in place of ``imacs.load_model``."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

import imacs
from imacs.adapters.function import FunctionAdapter
from imacs.cli import main

REAL_LOAD_MODEL = imacs.load_model


def linear_model(
    channels: int = 1, size: int = 8, classes: int = 3, seed: int = 0
) -> FunctionAdapter:
    """A linear classifier over ``size x size x channels`` images, with its gradients."""
    weights = np.random.default_rng(seed).normal(size=(size * size * channels, classes))

    def predict(images: np.ndarray) -> np.ndarray:
        return images.reshape(len(images), -1) @ weights

    def gradients(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return weights[:, targets].T.reshape(images.shape)

    return FunctionAdapter(
        predict,
        gradients,
        fingerprint=f"linear-{channels}-{seed}",
        image_shape=(size, size, channels),
    )


class Loads:
    """Stands in for ``imacs.load_model``: records each call and answers a linear model."""

    def __init__(self, channels: int = 1):
        self.calls: list[dict[str, Any]] = []
        self.channels = channels

    def __call__(self, path: str, *, name: str | None = None, **options: Any) -> Any:
        self.calls.append({"path": path, "name": name, **options})
        # each path its own weights, as two model files would have
        seed = sum(map(ord, str(path)))
        return REAL_LOAD_MODEL(linear_model(self.channels, seed=seed), name=name)


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    status = 0
    try:
        main(argv)
    except SystemExit as stop:
        status = int(stop.code or 0)
    out, err = capsys.readouterr()
    return status, out, err
