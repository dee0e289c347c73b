"""The causal check: hide a cluster's regions and see how much each model's answer drops.

An attribution difference says the models *weigh* a kind of region differently; it does
not yet say that they *behave* differently. For each cluster the check takes images that
hold its regions, fills those regions (with the image's mean colour, or a blurred copy of
the image), and measures each model's drop in the probability of its target class. A
cluster whose regions one model attributes and needs shows a large drop for that model
only.
"""

from __future__ import annotations

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.parameters import check_choice

FILLS = ("mean", "blur")
#: the blur's standard deviation, as a fraction of the image's shorter side
BLUR_FRACTION = 0.1


def fill_regions(image: np.ndarray, mask: np.ndarray, fill: str) -> np.ndarray:
    """A copy of ``image`` (H, W, C) with the pixels under ``mask`` (H, W) replaced."""
    check_choice(fill, "fill", FILLS)
    if fill == "mean":
        replacement = np.broadcast_to(image.mean(axis=(0, 1), keepdims=True), image.shape)
    else:
        from scipy.ndimage import gaussian_filter

        sigma = max(1.0, BLUR_FRACTION * min(image.shape[:2]))
        replacement = gaussian_filter(image, sigma=(sigma, sigma, 0), mode="nearest")
    return np.where(mask[..., None], replacement, image).astype(np.float32)


def target_probabilities(
    model: ModelAdapter, images: np.ndarray, targets: np.ndarray, *, batch_size: int
) -> np.ndarray:
    """Softmax probability of each image's target class, ``(N,)`` float64.

    Probabilities, not logits, because the two models' logit scales differ while a drop
    in probability reads the same for both.
    """
    return softmax_at(model.predict(images, batch_size=batch_size), targets)


def softmax_at(outputs: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Softmax probability of each row's target class, ``(N,)`` float64."""
    logits = outputs.astype(np.float64)
    logits = logits - logits.max(axis=1, keepdims=True)
    probabilities = np.exp(logits)
    probabilities /= probabilities.sum(axis=1, keepdims=True)
    return np.asarray(probabilities[np.arange(len(targets)), targets])
