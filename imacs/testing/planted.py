"""Two NumPy models that differ by a planted shortcut, for fast end-to-end tests.

Both score the demo's shortcut digits (:mod:`imacs.demo.data`) by correlating the image
with one template per class (the class's mean digit). Model B adds a term that reads the
class off the shade of the corner patch, the shortcut a network learns from data where
the shade encodes the label. Gradients are exact, no framework is needed, and building
the pair takes well under a second, so a test can run whole comparisons, kill them and
run them again.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from imacs.adapters.function import FunctionAdapter
from imacs.demo.data import N_CLASSES, PATCH, shortcut_digits

#: weight of the patch term in model B's logits
SHORTCUT_WEIGHT = 4.0
#: width of the patch term's bump around each class's shade
SHADE_WIDTH = 0.1


def _templates(seed: int) -> np.ndarray:
    data = shortcut_digits(shortcut=False, seed=seed)
    images = data.images.copy()
    images[:, :PATCH, :PATCH, :] = 0.0
    mean = images.mean(axis=0)
    templates = np.stack([images[data.labels == k].mean(axis=0) - mean for k in range(N_CLASSES)])
    return (templates / np.abs(templates).sum(axis=(1, 2, 3), keepdims=True) * 50).astype(
        np.float64
    )


def planted_models(*, seed: int = 0, delay: float = 0.0) -> tuple[FunctionAdapter, FunctionAdapter]:
    """Model A (templates only) and model B (templates plus the patch shortcut).

    ``delay`` seconds are slept per gradient call, so a test can stop a run midway.
    """
    templates = _templates(seed)
    shades = 0.3 + 0.7 * np.arange(N_CLASSES) / (N_CLASSES - 1)
    n_patch = PATCH * PATCH * 3

    def logits_a(images: np.ndarray) -> np.ndarray:
        return np.einsum("nhwc,khwc->nk", images.astype(np.float64), templates)

    def patch_shade(images: np.ndarray) -> np.ndarray:
        return images[:, :PATCH, :PATCH, :].astype(np.float64).mean(axis=(1, 2, 3))

    def logits_b(images: np.ndarray) -> np.ndarray:
        bump = -(((patch_shade(images)[:, None] - shades[None, :]) / SHADE_WIDTH) ** 2)
        return logits_a(images) + SHORTCUT_WEIGHT * bump

    def gradients_a(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        time.sleep(delay)
        return np.broadcast_to(templates[targets], images.shape).astype(np.float32)

    def gradients_b(images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        grads = np.array(gradients_a(images, targets), dtype=np.float64)
        shade = patch_shade(images)
        slope = -2 * SHORTCUT_WEIGHT * (shade - shades[targets]) / SHADE_WIDTH**2 / n_patch
        grads[:, :PATCH, :PATCH, :] += slope[:, None, None, None]
        return grads.astype(np.float32)

    def predict_a(images: np.ndarray) -> np.ndarray:
        return logits_a(images).astype(np.float32)

    def predict_b(images: np.ndarray) -> np.ndarray:
        return logits_b(images).astype(np.float32)

    model_a = FunctionAdapter(predict_a, gradients_a, fingerprint=f"planted-a:{seed}")
    model_b = FunctionAdapter(predict_b, gradients_b, fingerprint=f"planted-b:{seed}")
    return model_a, model_b


def patch_share(comparison: Any, cluster: int) -> float:
    """The share of a cluster's region pixels that lie inside the planted patch."""
    inside = total = 0
    for row in comparison.regions[comparison.regions["cluster"] == cluster].itertuples():
        mask = comparison.segments(row.image) == row.region
        inside += int(mask[:PATCH, :PATCH].sum())
        total += int(mask.sum())
    return inside / total
