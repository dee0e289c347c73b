"""SLIC superpixels: k-means in colour and position.

Achanta, Shaji, Smith, Lucchi, Fua, Süsstrunk. "SLIC Superpixels Compared to
State-of-the-art Superpixel Methods". IEEE TPAMI 34(11), 2012. DOI 10.1109/TPAMI.2012.120.
Implemented by :func:`skimage.segmentation.slic`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_non_negative, check_positive_int
from imacs.segmentation.base import Segmenter

# scikit-image is imported inside _segment: importing it at the top would slow down every
# start that builds the plugin registry.


def _check_compactness(compactness: Any) -> None:
    if (
        isinstance(compactness, bool)
        or not isinstance(compactness, int | float | np.number)
        or not compactness > 0
    ):
        raise InvalidInputError(
            f"expected compactness to be a number > 0 (try 0.1 .. 100 on a log scale); "
            f"got {compactness!r}"
        )


class Slic(Segmenter):
    """SLIC superpixels: about ``n_segments`` compact regions of similar colour.

    Clusters pixels by k-means on colour (CIELAB for RGB images) and position, starting
    from a regular grid of centres, then merges pieces too small to stand alone, so every
    region is connected. ``skimage.segmentation.slic`` rescales the image to ``[0, 1]``
    (min-max over all pixels and channels) first, so ``compactness`` means the same for
    every pixel range and no ``value_range`` parameter is needed. One-channel images are
    segmented as grey images, RGB images in CIELAB, other channel counts as they are.

    Parameters
    ----------
    n_segments:
        About how many regions to make; the result can have a few more or fewer, and at
        most one per pixel on tiny images. Default 50.
    compactness:
        Weight of position against colour: higher gives squarer, more grid-like regions,
        lower follows colour edges more closely. Default 10.0 (skimage's).
    sigma:
        Gaussian pre-smoothing in pixels; 0 for none. Default 1.0.
    """

    name = "slic"
    citation = "Achanta et al., SLIC Superpixels, IEEE TPAMI 2012, DOI 10.1109/TPAMI.2012.120"

    def __init__(self, *, n_segments: int = 50, compactness: float = 10.0, sigma: float = 1.0):
        check_positive_int(n_segments, "n_segments")
        _check_compactness(compactness)
        check_non_negative(sigma, "sigma")
        self.n_segments = n_segments
        self.compactness = compactness
        self.sigma = sigma

    def _segment(self, image: np.ndarray) -> np.ndarray:
        from skimage.segmentation import slic

        channel_axis: int | None = -1
        if image.shape[-1] == 1:
            # the 2-D, channel_axis=None path is the one skimage documents for grey images
            # ((H, W, 1) with channel_axis=-1 gives the same labels in 0.26, undocumented)
            image, channel_axis = image[..., 0], None
        labels = slic(
            image,
            n_segments=self.n_segments,
            compactness=self.compactness,
            sigma=self.sigma,
            start_label=0,
            channel_axis=channel_axis,
        )
        return np.asarray(labels)


@hookimpl
def register_segmenters(register: Register) -> None:
    register(Slic)
