"""Baselines for path attribution methods: the image a path starts from.

A baseline spec is one of

- ``"black"``: every pixel at the low end of the pixel range;
- ``"white"``: every pixel at the high end;
- ``"uniform"``: uniform noise over the pixel range, one ``(H, W, C)`` draw shared by all
  images, seeded (the ``k``-th ``"uniform"`` in a list uses seed ``(seed, k)``, so a list
  of several averages over different draws), so an image's baseline does not depend on
  which other images share its batch;
- ``"blurred"``: the image itself under a spatial Gaussian blur of ``blur_sigma`` pixels
  (``scipy.ndimage.gaussian_filter``, ``mode="reflect"``, channels not mixed), the
  blurred baseline of Sturmfels, Lundberg, Lee, "Visualizing the Impact of Feature
  Attribution Baselines", Distill 2020;
- a number or an array broadcastable to one image ``(H, W, C)`` (the same baseline for
  every image) or to the batch ``(N, H, W, C)`` (one per image).

A list or tuple of specs asks for several baselines: the method integrates from each and
averages the attributions, as XRAI does with black and white. A list is therefore never
read as an array; pass arrays as ``numpy.ndarray``.

What black and white mean depends on the data, so the pixel range is a parameter:
``pixel_range=(low, high)`` (default ``(0.0, 1.0)``: black is 0, matching the zero
baseline of Captum and PAIR saliency), or ``pixel_range="image"`` for each image's own
minimum and maximum over all pixels and channels, which is what PAIR saliency's XRAI
uses (``np.min(x)`` and ``np.max(x)``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError

BASELINE_NAMES = ("black", "white", "uniform", "blurred")

#: what ``pixel_range`` may be besides a ``(low, high)`` pair
PER_IMAGE_RANGE = "image"


def baseline_specs(baselines: Any) -> list[Any]:
    """``baselines`` as a non-empty list of single specs, checking the names."""
    specs = list(baselines) if isinstance(baselines, list | tuple) else [baselines]
    if not specs:
        raise InvalidInputError(
            "expected at least one baseline; got an empty list: pass e.g. baselines='black'"
        )
    for spec in specs:
        if isinstance(spec, str):
            if spec not in BASELINE_NAMES:
                raise InvalidInputError(
                    f"unknown baseline {spec!r}: expected one of {', '.join(BASELINE_NAMES)}, "
                    "a number, or an array of one image's shape (H, W, C) or the batch's "
                    "(N, H, W, C)"
                )
        elif not isinstance(spec, int | float | np.ndarray | np.number) or isinstance(spec, bool):
            raise InvalidInputError(
                f"expected a baseline name ({', '.join(BASELINE_NAMES)}), a number or a numpy "
                f"array; got {type(spec).__name__}: convert arrays with numpy.asarray"
            )
    return specs


def check_pixel_range(pixel_range: Any) -> None:
    """Raise ``InvalidInputError`` unless ``pixel_range`` is ``(low, high)`` or ``"image"``."""
    if isinstance(pixel_range, str):
        if pixel_range == PER_IMAGE_RANGE:
            return
    elif isinstance(pixel_range, Sequence) and len(pixel_range) == 2:
        low, high = pixel_range
        if (
            isinstance(low, int | float | np.number)
            and isinstance(high, int | float | np.number)
            and np.isfinite(low)
            and np.isfinite(high)
            and low < high
        ):
            return
    raise InvalidInputError(
        f"expected pixel_range as (low, high) with low < high, or {PER_IMAGE_RANGE!r} for "
        f"each image's own min and max; got {pixel_range!r}"
    )


def check_blur_sigma(blur_sigma: Any) -> None:
    """Raise ``InvalidInputError`` unless ``blur_sigma`` is a non-negative number."""
    if (
        isinstance(blur_sigma, bool)
        or not isinstance(blur_sigma, int | float | np.number)
        or not blur_sigma >= 0
    ):
        raise InvalidInputError(
            f"expected blur_sigma to be a number of pixels >= 0; got {blur_sigma!r}"
        )


def _range_of(images: np.ndarray, pixel_range: Any) -> tuple[np.ndarray, np.ndarray]:
    """Low and high per image, shaped ``(N, 1, 1, 1)`` to broadcast over pixels."""
    if isinstance(pixel_range, str):
        return (
            images.min(axis=(1, 2, 3), keepdims=True),
            images.max(axis=(1, 2, 3), keepdims=True),
        )
    low, high = pixel_range
    shape = (len(images), 1, 1, 1)
    return np.full(shape, low, dtype=np.float32), np.full(shape, high, dtype=np.float32)


def _blur(images: np.ndarray, sigma: float) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return np.asarray(gaussian_filter(images, sigma=(0, sigma, sigma, 0), mode="reflect"))


def _user_baseline(spec: Any, images: np.ndarray) -> np.ndarray:
    array = np.asarray(spec)
    if not np.issubdtype(array.dtype, np.number) or np.issubdtype(array.dtype, np.complexfloating):
        raise InvalidInputError(f"expected a numeric baseline array; got dtype {array.dtype}")
    n, h, w, c = images.shape
    try:
        if array.ndim > 4:
            raise ValueError
        out = np.broadcast_to(array, images.shape)
    except ValueError:
        raise InvalidInputError(
            f"expected a baseline broadcastable to one image (H, W, C) = {(h, w, c)} or to "
            f"the batch (N, H, W, C) = {(n, h, w, c)}; got shape {array.shape}: give one "
            "baseline image per image, or one for all"
        ) from None
    out = out.astype(np.float32)
    if not np.isfinite(out).all():
        raise InvalidInputError("expected finite baseline values; got NaN or infinity")
    return out


def make_baselines(
    baselines: Any,
    images: np.ndarray,
    *,
    pixel_range: Any = (0.0, 1.0),
    blur_sigma: float = 10.0,
    seed: int = 0,
) -> np.ndarray:
    """The baselines for ``images``: float32 ``(B, N, H, W, C)``, one batch per spec."""
    check_pixel_range(pixel_range)
    check_blur_sigma(blur_sigma)
    low, high = _range_of(images, pixel_range)
    made = []
    n_uniform = 0
    for spec in baseline_specs(baselines):
        if isinstance(spec, str):
            if spec == "black":
                made.append(np.broadcast_to(low, images.shape))
            elif spec == "white":
                made.append(np.broadcast_to(high, images.shape))
            elif spec == "uniform":
                rng = np.random.default_rng([seed, n_uniform])
                n_uniform += 1
                u = rng.random(images.shape[1:], dtype=np.float32)
                made.append(low + u * (high - low))
            else:
                made.append(_blur(images, blur_sigma))
        else:
            made.append(_user_baseline(spec, images))
    return np.stack(made).astype(np.float32, copy=False)
