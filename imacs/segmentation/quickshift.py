"""Quickshift: mode seeking in colour and position.

Vedaldi, Soatto. "Quick Shift and Kernel Methods for Mode Seeking". ECCV 2008.
Implemented by :func:`skimage.segmentation.quickshift`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_non_negative, check_seed
from imacs.segmentation.base import Segmenter
from imacs.segmentation.felzenszwalb import normalize_image

# scikit-image is imported inside _segment: importing it at the top would slow down every
# start that builds the plugin registry.


def _check_number(name: str, value: Any, *, low: float, low_open: bool, high: float) -> None:
    is_number = not isinstance(value, bool) and isinstance(value, int | float | np.number)
    above = is_number and (value > low if low_open else value >= low)
    if not (above and value <= high):
        bound = f"> {low}" if low_open else f">= {low}"
        upper = "" if high == float("inf") else f" and <= {high}"
        raise InvalidInputError(f"expected {name} to be a number {bound}{upper}; got {value!r}")


class Quickshift(Segmenter):
    """Quickshift superpixels: each pixel joins the nearest denser pixel nearby.

    The image is min-max rescaled to ``[0, 1]`` (over all pixels and channels, so the
    pixel range does not matter) and converted to CIELAB; a grey image is repeated into
    three channels first. Regions follow colour edges and vary in size and number; the
    number is not set directly but grows as ``kernel_size`` and ``max_dist`` shrink.
    Ties are broken by a generator seeded with ``seed``, so the result is deterministic.
    The defaults suit small images (about 60 regions at 32x32 but 400 at 224x224); for
    larger images raise ``kernel_size`` and ``max_dist`` together (5 and 10 are
    scikit-image's defaults).

    Parameters
    ----------
    kernel_size:
        Width, in pixels, of the Gaussian kernel that estimates density; higher gives
        fewer, larger regions. At least 1. Default 3.0.
    max_dist:
        Largest distance (in the joint colour-position space) a pixel may link across;
        higher gives fewer regions. Default 6.0.
    ratio:
        Weight of colour against position, in ``(0, 1]``: higher follows colour more.
        Default 0.5.
    sigma:
        Gaussian pre-smoothing in pixels; 0 for none. Default 0.0.
    seed:
        Seed of the generator that breaks ties. Default 0.
    """

    name = "quickshift"
    citation = "Vedaldi, Soatto, Quick Shift and Kernel Methods for Mode Seeking, ECCV 2008"

    def __init__(
        self,
        *,
        kernel_size: float = 3.0,
        max_dist: float = 6.0,
        ratio: float = 0.5,
        sigma: float = 0.0,
        seed: int = 0,
    ):
        _check_number("kernel_size", kernel_size, low=1.0, low_open=False, high=float("inf"))
        _check_number("max_dist", max_dist, low=0.0, low_open=True, high=float("inf"))
        _check_number("ratio", ratio, low=0.0, low_open=True, high=1.0)
        check_non_negative(sigma, "sigma")
        check_seed(seed)
        self.kernel_size = kernel_size
        self.max_dist = max_dist
        self.ratio = ratio
        self.sigma = sigma
        self.seed = seed

    def _segment(self, image: np.ndarray) -> np.ndarray:
        from skimage.segmentation import quickshift

        channels = image.shape[-1]
        if channels not in (1, 3):
            raise InvalidInputError(
                f"quickshift segments grey (1-channel) or RGB (3-channel) images; got "
                f"{channels} channels: drop the extra channels (an alpha channel, say) or "
                f"use the 'slic' segmenter, which takes any number"
            )
        rgb = normalize_image(image, value_range=(0.0, 1.0), resize_to=None)
        if channels == 1:
            rgb = np.repeat(rgb, 3, axis=-1)
        labels = quickshift(
            rgb,
            ratio=self.ratio,
            kernel_size=self.kernel_size,
            max_dist=self.max_dist,
            sigma=self.sigma,
            rng=self.seed,
            channel_axis=-1,
        )
        return np.asarray(labels)


@hookimpl
def register_segmenters(register: Register) -> None:
    register(Quickshift)
