"""Captum's ``baselines``, given the imacs way: in the images' own pixels and layout.

A baseline is ``None`` (Captum's default: zero), a number (every pixel), or a NumPy array
in the images' channel-last layout and pixel range. For IntegratedGradients, DeepLift and
Occlusion the array broadcasts to one image ``(H, W, C)`` (the same baseline for every
image) or to the batch ``(N, H, W, C)`` (one per image); for GradientShap a 4-D array
``(B, H, W, C)`` is the distribution baselines are drawn from, as in Captum.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imacs.errors import InvalidInputError


def check_baselines(baselines: Any) -> None:
    """Raise ``InvalidInputError`` unless ``baselines`` is ``None``, a number or an array."""
    if baselines is None:
        return
    if isinstance(baselines, bool) or not isinstance(
        baselines, int | float | np.number | np.ndarray
    ):
        raise InvalidInputError(
            "expected baselines to be None (zero, Captum's default), a number, or a numpy "
            "array in the images' layout, (H, W, C) or (N, H, W, C); got "
            f"{type(baselines).__name__}: pass the baseline image as a numpy array"
        )
    if not np.isfinite(np.asarray(baselines, dtype=np.float64)).all():
        raise InvalidInputError("expected finite baselines; got NaN or infinity")


def pixel_baselines(baselines: Any, images: np.ndarray, index: slice) -> np.ndarray:
    """The baselines of ``images[index]``, float32 and shaped like that chunk.

    ``baselines`` is checked against the whole batch, so one baseline per image is
    recognised whichever chunk is asked for.
    """
    array = np.asarray(0.0 if baselines is None else baselines, dtype=np.float32)
    try:
        np.broadcast_shapes(array.shape, images.shape)
    except ValueError:
        raise InvalidInputError(
            f"expected baselines broadcastable to one image (H, W, C) = {images.shape[1:]} "
            f"or to the batch (N, H, W, C) = {images.shape}; got shape {array.shape}: give "
            "one baseline for all images or one per image, channel-last like the images"
        ) from None
    if array.ndim == 4 and array.shape[0] != 1:
        array = array[index]
    chunk = images[index]
    return np.ascontiguousarray(np.broadcast_to(array, chunk.shape))


def baseline_distribution(baselines: Any, images: np.ndarray) -> np.ndarray:
    """GradientShap's baselines to draw from: float32 ``(B, H, W, C)``."""
    array = np.asarray(0.0 if baselines is None else baselines, dtype=np.float32)
    if array.ndim < 4:
        array = array[None]
    try:
        return np.ascontiguousarray(np.broadcast_to(array, (len(array), *images.shape[1:])))
    except ValueError:
        raise InvalidInputError(
            "expected GradientShap's baselines to be a number, one image (H, W, C) = "
            f"{images.shape[1:]} or a distribution of B images (B, H, W, C); got shape "
            f"{array.shape}: pass them channel-last like the images"
        ) from None
