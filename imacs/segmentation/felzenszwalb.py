"""Felzenszwalb's graph-based segmentation, with XRAI's conventions.

Felzenszwalb, Huttenlocher. "Efficient Graph-Based Image Segmentation". IJCV 59(2), 2004.
The conventions (rescaling, resizing, parameters) are those of XRAI: Kapishnikov, Bolukbasi,
Viegas, Terry. "XRAI: Better Attributions Through Regions". ICCV 2019. arXiv:1906.02825,
as implemented in PAIR saliency 0.2.1 (``saliency/core/xrai.py``).

Two things live here:

- :class:`Felzenszwalb`, the ``"felzenszwalb"`` segmenter: one partition per image, the
  shared segmentation both compared models are scored on;
- :func:`xrai_segments`, XRAI's candidate regions: Felzenszwalb at six scales, every label
  of every scale one mask, each mask dilated by a disk. It gives exactly the masks of PAIR
  saliency's ``_get_segments_felzenszwalb``, with the dilation done for all labels of a
  segmentation at once instead of one ``skimage.morphology.dilation`` per mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.parallel import thread_map
from imacs.segmentation.base import Segmenter

# scikit-image is imported inside the functions that use it: it loads scipy.ndimage
# (about half a second), which would slow down every start that builds the plugin registry.

#: XRAI's Felzenszwalb scales (PAIR's ``_FELZENSZWALB_SCALE_VALUES``)
XRAI_SCALES = (50, 100, 150, 250, 500, 1200)
#: the size XRAI segments at, whatever the image's size (``_FELZENSZWALB_IM_RESIZE``)
XRAI_RESIZE = (224, 224)
#: the value range XRAI rescales images to first (``_FELZENSZWALB_IM_VALUE_RANGE``)
XRAI_VALUE_RANGE = (-1.0, 1.0)
#: XRAI's Gaussian pre-smoothing (``_FELZENSZWALB_SIGMA_VALUES``)
XRAI_SIGMA = 0.8
#: XRAI's smallest segment, in pixels of the resized image (``_FELZENSZWALB_MIN_SEGMENT_SIZE``)
XRAI_MIN_SIZE = 150


def normalize_image(
    image: np.ndarray,
    value_range: tuple[float, float] | None = XRAI_VALUE_RANGE,
    resize_to: tuple[int, int] | None = XRAI_RESIZE,
) -> np.ndarray:
    """Rescale ``image`` (min-max over all pixels and channels) to ``value_range``, then resize.

    PAIR's ``_normalize_image``: the resize is bicubic (``order=3``) with anti-aliasing and
    keeps the value range. A constant image, which PAIR turns into NaN, becomes the low
    end of the range.
    """
    from skimage.transform import resize

    im = image
    if value_range is not None:
        low, high = value_range
        im_max, im_min = np.max(im), np.min(im)
        if im_max > im_min:
            im = (im - im_min) / (im_max - im_min)
            im = im * (high - low) + low
        else:
            im = np.full_like(im, low)
    if resize_to is not None:
        im = resize(
            im, resize_to, order=3, mode="constant", preserve_range=True, anti_aliasing=True
        )
    return np.asarray(im)


def resize_labels(labels: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Nearest-neighbour resize of a label map to ``shape``, as XRAI does (int64)."""
    from skimage.transform import resize

    resized = resize(
        labels, shape, order=0, preserve_range=True, mode="constant", anti_aliasing=False
    )
    return np.asarray(resized).astype(np.int64)


def _segment_normalized(
    normalized: np.ndarray, shape: tuple[int, int], scale: float, sigma: float, min_size: int
) -> np.ndarray:
    from skimage.segmentation import felzenszwalb

    labels = felzenszwalb(normalized, scale=scale, sigma=sigma, min_size=min_size)
    if labels.shape != shape:
        labels = resize_labels(labels, shape)
    return np.asarray(labels, dtype=np.int64)


def disk(radius: int) -> np.ndarray:
    """``skimage.morphology.disk(radius)`` as bool: offsets within ``radius`` of the centre."""
    offsets = np.arange(-radius, radius + 1)
    return np.asarray(offsets[:, None] ** 2 + offsets[None, :] ** 2 <= radius**2)


def label_masks(labels: np.ndarray, dilation_rad: int = 0) -> np.ndarray:
    """One boolean mask per label ``labels.min() .. labels.max()``, each dilated by a disk.

    Returns ``(K, H, W)`` with ``K = max - min + 1``; a label that does not occur (the
    nearest-neighbour resize can drop small segments) gives an empty mask, as in PAIR's
    ``_unpack_segs_to_masks``. Mask ``k`` dilated by ``disk(dilation_rad)`` is the set of
    pixels with label ``min + k`` somewhere within the disk around them, which equals
    ``skimage.morphology.dilation(mask, disk(dilation_rad))`` (its ``"reflect"`` border
    only ever reflects pixels that lie inside the disk already). Computed for all labels
    at once: one comparison per disk offset, and writes only where labels differ.
    """
    labels = np.asarray(labels, dtype=np.int64)
    height, width = labels.shape
    low = int(labels.min())
    n_labels = int(labels.max()) - low + 1
    dense = labels - low
    n_pixels = height * width
    masks = np.zeros((n_labels, n_pixels), dtype=bool)
    masks[dense.ravel(), np.arange(n_pixels)] = True
    if dilation_rad:
        flat = masks.reshape(-1)
        offsets = np.argwhere(disk(dilation_rad)) - dilation_rad
        for dy, dx in offsets:
            if (dy == 0 and dx == 0) or abs(dy) >= height or abs(dx) >= width:
                continue
            # pixel p = (r, c) takes the label at p + (dy, dx) when that lies in the image
            r0, r1 = max(0, -dy), height - max(0, dy)
            c0, c1 = max(0, -dx), width - max(0, dx)
            here = dense[r0:r1, c0:c1]
            there = dense[r0 + dy : r1 + dy, c0 + dx : c1 + dx]
            differ = there != here
            rows, cols = np.nonzero(differ)
            if len(rows):
                pixels = (rows + r0) * width + (cols + c0)
                flat[there[rows, cols] * n_pixels + pixels] = True
    return masks.reshape(n_labels, height, width)


def _check_size(resize_to: Any) -> None:
    if resize_to is None or (isinstance(resize_to, str) and resize_to == "auto"):
        return
    if (
        not isinstance(resize_to, Sequence)
        or len(resize_to) != 2
        or not all(isinstance(v, int | np.integer) and v >= 1 for v in resize_to)
    ):
        raise InvalidInputError(
            f"expected resize_to to be (height, width) of positive ints, None to segment "
            f"at the image's own size, or 'auto'; got {resize_to!r}"
        )


def _check_value_range(value_range: Any) -> None:
    if value_range is None:
        return
    if (
        not isinstance(value_range, Sequence)
        or len(value_range) != 2
        or not all(isinstance(v, int | float | np.number) for v in value_range)
        or not value_range[0] < value_range[1]
    ):
        raise InvalidInputError(
            f"expected value_range to be (low, high) with low < high, or None to keep the "
            f"image's values; got {value_range!r}"
        )


def _check_positive(name: str, value: Any, *, integer: bool = False) -> None:
    kinds = (int, np.integer) if integer else (int, float, np.number)
    if isinstance(value, bool) or not isinstance(value, kinds) or not value > 0:
        kind = "int" if integer else "number"
        raise InvalidInputError(f"expected {name} to be a positive {kind}; got {value!r}")


def _check_min_size(min_size: Any) -> None:
    if isinstance(min_size, bool) or not isinstance(min_size, int | np.integer) or min_size < 0:
        raise InvalidInputError(f"expected min_size to be an int >= 0; got {min_size!r}")


def xrai_segments(
    image: np.ndarray,
    scales: Sequence[float] = XRAI_SCALES,
    dilation_rad: int = 5,
    *,
    sigma: float = XRAI_SIGMA,
    min_size: int = XRAI_MIN_SIZE,
    resize_to: tuple[int, int] | None = XRAI_RESIZE,
    value_range: tuple[float, float] | None = XRAI_VALUE_RANGE,
    n_jobs: int | None = None,
) -> np.ndarray:
    """XRAI's candidate regions for one channel-last image ``(H, W, C)``: ``(K, H, W)`` bool.

    The image is rescaled to ``value_range`` and resized to ``resize_to`` (bicubic), then
    segmented by Felzenszwalb at every scale in ``scales`` with ``sigma`` and
    ``min_size``; each label map is resized back (nearest neighbour), each of its labels
    becomes a mask, and each mask is dilated by a disk of radius ``dilation_rad`` (0: no
    dilation), so masks overlap. The defaults reproduce PAIR saliency's
    ``_get_segments_felzenszwalb`` mask for mask, in its order (scales in turn, labels in
    increasing order, empty masks of labels the resize dropped included). The scales are
    segmented on up to ``n_jobs`` threads (None: every core; scikit-image's Felzenszwalb
    releases the GIL), which does not change the result.
    """
    image = np.asarray(image)
    if image.ndim != 3:
        raise InvalidInputError(
            f"expected one channel-last image (H, W, C); got shape {image.shape}"
        )
    if isinstance(scales, str) or not isinstance(scales, Sequence) or not scales:
        raise InvalidInputError(f"expected scales to be a non-empty sequence; got {scales!r}")
    for scale in scales:
        _check_positive("every scale", scale)
    if isinstance(dilation_rad, bool) or not isinstance(dilation_rad, int) or dilation_rad < 0:
        raise InvalidInputError(f"expected dilation_rad to be an int >= 0; got {dilation_rad!r}")
    _check_positive("sigma", sigma)
    _check_min_size(min_size)
    _check_size(resize_to)
    _check_value_range(value_range)
    shape = (image.shape[0], image.shape[1])
    normalized = normalize_image(image, value_range, resize_to)

    def masks_at(scale: float) -> np.ndarray:
        labels = _segment_normalized(normalized, shape, scale, sigma, min_size)
        return label_masks(labels, dilation_rad)

    return np.concatenate(thread_map(masks_at, scales, n_jobs))


class Felzenszwalb(Segmenter):
    """Felzenszwalb-Huttenlocher graph segmentation, at XRAI's settings by default.

    The image is min-max rescaled to ``value_range`` and resized to ``resize_to`` with
    bicubic interpolation, segmented by :func:`skimage.segmentation.felzenszwalb`, and
    the labels resized back with nearest neighbour. Segmenting at a fixed size keeps
    ``scale`` and ``min_size`` meaning the same thing for every image size, which is why
    XRAI does it.

    Parameters
    ----------
    scale:
        Higher means larger segments. Default 100, the middle of XRAI's scales.
    sigma:
        Gaussian pre-smoothing in pixels of the resized image. Default 0.8 (XRAI's).
    min_size:
        Smallest segment, in pixels of the resized image. Default 150 (XRAI's).
    resize_to:
        ``(height, width)`` to segment at; default ``(224, 224)`` (XRAI's). ``None``
        segments at the image's own size, the sensible choice for tiny images (then lower
        ``min_size`` too: 150 pixels is a large part of a 32x32 image). ``"auto"``
        resizes images larger than 224x224 to it and segments smaller ones at their own
        size with ``min_size`` scaled by their area and ``sigma`` by their side, so both
        keep their meaning in pixels of a 224x224 image.
    value_range:
        ``(low, high)`` the image is rescaled to first, so that ``scale`` means the same
        for every pixel range; default ``(-1.0, 1.0)`` (XRAI's). ``None`` keeps the values.
    """

    name = "felzenszwalb"
    citation = (
        "Felzenszwalb, Huttenlocher, IJCV 2004; settings of XRAI, Kapishnikov et al., "
        "ICCV 2019, arXiv:1906.02825"
    )

    def __init__(
        self,
        *,
        scale: float = 100.0,
        sigma: float = XRAI_SIGMA,
        min_size: int = XRAI_MIN_SIZE,
        resize_to: tuple[int, int] | str | None = XRAI_RESIZE,
        value_range: tuple[float, float] | None = XRAI_VALUE_RANGE,
    ):
        _check_positive("scale", scale)
        _check_positive("sigma", sigma)
        _check_min_size(min_size)
        _check_size(resize_to)
        _check_value_range(value_range)
        self.scale = scale
        self.sigma = sigma
        self.min_size = min_size
        self.resize_to = resize_to
        self.value_range = value_range

    def _segment(self, image: np.ndarray) -> np.ndarray:
        shape = (image.shape[0], image.shape[1])
        resize_to, min_size, sigma = self.resize_to, self.min_size, self.sigma
        if isinstance(resize_to, str):  # "auto"
            reference = XRAI_RESIZE[0] * XRAI_RESIZE[1]
            if shape[0] * shape[1] > reference:
                resize_to = XRAI_RESIZE
            else:
                # min_size counts pixels and sigma is a length, both in pixels of the
                # 224x224 image: scale them by area and by side to keep their meaning
                resize_to = None
                area = shape[0] * shape[1] / reference
                min_size = max(1, round(self.min_size * area))
                sigma = self.sigma * float(np.sqrt(area))
        normalized = normalize_image(image, self.value_range, resize_to)
        return _segment_normalized(normalized, shape, self.scale, sigma, min_size)


@hookimpl
def register_segmenters(register: Register) -> None:
    register(Felzenszwalb)
