"""Compact watershed from a regular grid of markers.

Neubert, Protzel. "Compact Watershed and Preemptive SLIC: On Improving Trade-offs of
Superpixel Segmentation Algorithms". ICPR 2014. DOI 10.1109/ICPR.2014.181.
Built from :func:`skimage.filters.sobel` and :func:`skimage.segmentation.watershed`.
"""

from __future__ import annotations

import numpy as np

from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_non_negative, check_positive_int
from imacs.segmentation.base import Segmenter
from imacs.segmentation.felzenszwalb import normalize_image

# scikit-image is imported inside _segment: importing it at the top would slow down every
# start that builds the plugin registry.


class Watershed(Segmenter):
    """Compact watershed superpixels: regions grown from a grid of seeds up to edges.

    The image is turned grey (luminance for RGB as :func:`skimage.color.rgb2gray`, the
    channel mean otherwise), min-max rescaled to ``[0, 1]`` so ``compactness`` means the
    same for every pixel range, and its Sobel gradient flooded from about ``n_markers``
    seeds on a regular grid (:func:`skimage.util.regular_grid`). Every seed gives one
    region. The compactness term penalises distance from the seed, trading boundary
    adherence for regular shapes; 0 gives the classic watershed.

    Parameters
    ----------
    n_markers:
        About how many seeds, hence regions; the grid can hold a few more or fewer, and
        at most one per pixel on tiny images. Default 50.
    compactness:
        Weight of distance from the seed against gradient height; >= 0. Default 0.001,
        a mild pull towards compact regions for a gradient of a ``[0, 1]`` image.
    """

    name = "watershed"
    citation = (
        "Neubert, Protzel, Compact Watershed and Preemptive SLIC, ICPR 2014, "
        "DOI 10.1109/ICPR.2014.181"
    )

    def __init__(self, *, n_markers: int = 50, compactness: float = 0.001):
        check_positive_int(n_markers, "n_markers")
        check_non_negative(compactness, "compactness")
        self.n_markers = n_markers
        self.compactness = compactness

    def _segment(self, image: np.ndarray) -> np.ndarray:
        from skimage.color import rgb2gray
        from skimage.filters import sobel
        from skimage.segmentation import watershed
        from skimage.util import regular_grid

        grey = rgb2gray(image) if image.shape[-1] == 3 else image.mean(axis=-1)
        grey = normalize_image(grey, value_range=(0.0, 1.0), resize_to=None)
        markers = np.zeros(grey.shape, dtype=np.int32)
        grid = regular_grid(grey.shape, n_points=self.n_markers)
        seeds = markers[grid]
        markers[grid] = np.arange(1, seeds.size + 1).reshape(seeds.shape)
        labels = watershed(sobel(grey), markers, compactness=self.compactness)
        return np.asarray(labels)


@hookimpl
def register_segmenters(register: Register) -> None:
    register(Watershed)
