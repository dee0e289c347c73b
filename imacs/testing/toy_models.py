"""Small models with analytic gradients, for tests that need no framework."""

from __future__ import annotations

import numpy as np

from imacs.adapters.function import FunctionAdapter


def _softplus(z: np.ndarray) -> np.ndarray:
    return np.logaddexp(0.0, z)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def softplus_model(
    image_shape: tuple[int, int, int] = (8, 8, 3),
    n_classes: int = 4,
    hidden: int = 16,
    seed: int = 0,
) -> FunctionAdapter:
    """A two-layer softplus network ``W2 softplus(W1 x + b1)`` with exact gradients.

    Smooth everywhere, so finite differences and the completeness of path methods can be
    checked against it to high precision; computed in float64 internally.
    """
    rng = np.random.default_rng(seed)
    n_inputs = int(np.prod(image_shape))
    w1 = rng.normal(scale=1.0 / np.sqrt(n_inputs), size=(n_inputs, hidden))
    b1 = rng.normal(scale=0.1, size=hidden)
    w2 = rng.normal(scale=1.0 / np.sqrt(hidden), size=(hidden, n_classes))

    def predict(images: np.ndarray) -> np.ndarray:
        h = images.reshape(len(images), -1).astype(np.float64) @ w1 + b1
        return (_softplus(h) @ w2).astype(np.float32)

    def gradients(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        h = images.reshape(len(images), -1).astype(np.float64) @ w1 + b1
        upstream = _sigmoid(h) * w2[:, targets].T  # (N, hidden)
        return (upstream @ w1.T).reshape(images.shape).astype(np.float32)

    return FunctionAdapter(
        predict,
        gradients,
        fingerprint=f"softplus-model:{image_shape}:{n_classes}:{hidden}:{seed}",
        image_shape=image_shape,
    )
