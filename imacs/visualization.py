"""Pictures of attribution maps: pure functions from arrays to RGB arrays.

Kept apart from the methods so that raw maps stay raw: a method returns numbers, and
only here are they reduced, clipped and coloured for a person to look at.
"""

from __future__ import annotations

import numpy as np
from matplotlib import colormaps


def reduce_channels(attribution: np.ndarray, *, absolute: bool = True) -> np.ndarray:
    """``(H, W, C) -> (H, W)``: the sum over channels, of magnitudes by default."""
    values = np.abs(attribution) if absolute else attribution
    return np.asarray(values.sum(axis=-1), dtype=np.float64)


def heatmap(values: np.ndarray, *, cmap: str = "inferno", percentile: float = 99.5) -> np.ndarray:
    """Colour an ``(H, W)`` map as RGB float in [0, 1].

    Non-negative maps use ``cmap`` from 0 to their ``percentile``; maps with both signs use
    a diverging map symmetric around zero, so that zero is always the neutral colour.
    """
    if values.min() < 0 < values.max():
        limit = np.percentile(np.abs(values), percentile) or 1.0
        scaled = np.clip(values / limit, -1, 1) * 0.5 + 0.5
        return np.asarray(colormaps["RdBu_r"](scaled)[..., :3])
    low = min(float(values.min()), 0.0)
    high = float(np.percentile(values, percentile)) or float(values.max()) or 1.0
    scaled = np.clip((values - low) / (high - low), 0, 1)
    return np.asarray(colormaps[cmap](scaled)[..., :3])


def overlay(
    image: np.ndarray,
    attribution: np.ndarray,
    *,
    alpha: float = 0.6,
    pixel_range: tuple[float, float] | None = None,
) -> np.ndarray:
    """The image in grey under the coloured map of ``|attribution|``, as uint8 RGB.

    ``pixel_range`` is the image's value range (default: its own min and max).
    """
    low, high = pixel_range or (float(image.min()), float(image.max()))
    grey = (image.mean(axis=-1) - low) / ((high - low) or 1.0)
    base = np.repeat(np.clip(grey, 0, 1)[..., None], 3, axis=-1)
    colour = heatmap(reduce_channels(attribution))
    blended = (1 - alpha) * base + alpha * colour
    return np.asarray(np.round(blended * 255), dtype=np.uint8)
