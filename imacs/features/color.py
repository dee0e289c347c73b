"""The ``"color"`` featurizer: what colours a region holds.

A per-region colour histogram in HSV (Swain, Ballard. "Color Indexing". IJCV 7(1), 1991)
plus the mean and standard deviation of each RGB channel: the weight-free colour part of
the region embedding in the method spec (step 5).

Also home of :func:`resolve_value_range`, which the texture featurizer shares: both must
read an 8-bit image and the same image scaled to 0..1 as the same thing.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.errors import InvalidInputError
from imacs.features.base import Featurizer, split_rows, stacked_labels
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_positive_int

# scikit-image is imported inside the methods that use it, so that building the plugin
# registry does not load it.


def check_value_range(value_range: Any) -> None:
    """Raise ``InvalidInputError`` unless ``value_range`` is ``None`` or ``(low, high)``."""
    if value_range is None:
        return
    if (
        not isinstance(value_range, tuple | list)
        or len(value_range) != 2
        or not all(
            isinstance(v, int | float | np.number) and not isinstance(v, bool) for v in value_range
        )
        or not value_range[0] < value_range[1]
    ):
        raise InvalidInputError(
            f"expected value_range to be (low, high) with low < high, or None to infer it "
            f"from the image; got {value_range!r}"
        )


def resolve_value_range(
    image: np.ndarray, value_range: tuple[float, float] | None
) -> tuple[float, float]:
    """The pixel range of ``image``: ``value_range`` if given, else inferred from its maximum.

    Inferred as ``(0, 1)`` when the maximum is at most 1, ``(0, 255)`` when at most 255,
    else ``(0, 65535)``. An 8-bit image that happens to be all but black (maximum <= 1)
    is then misread as a 0..1 image; pass ``value_range`` to rule that out.
    """
    if value_range is not None:
        return float(value_range[0]), float(value_range[1])
    top = float(np.max(image)) if image.size else 0.0
    if top <= 1.0:
        return 0.0, 1.0
    if top <= 255.0:
        return 0.0, 255.0
    return 0.0, 65535.0


def to_unit_range(image: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """``image`` rescaled from its pixel range to ``[0, 1]`` (float64), values outside clipped."""
    low, high = resolve_value_range(image, value_range)
    return np.clip((np.asarray(image, dtype=np.float64) - low) / (high - low), 0.0, 1.0)


def stack_to_unit_range(images: np.ndarray, value_range: tuple[float, float] | None) -> np.ndarray:
    """:func:`to_unit_range` of each image of a stack ``(N, H, W, C)``, its range its own."""
    ranges = np.array([resolve_value_range(image, value_range) for image in images])
    low, high = ranges[:, 0, None, None, None], ranges[:, 1, None, None, None]
    return np.clip((np.asarray(images, dtype=np.float64) - low) / (high - low), 0.0, 1.0)


def as_rgb(unit_image: np.ndarray) -> np.ndarray:
    """``(H, W, 3)`` RGB from ``(H, W, C)``: grey (C of 1 or 2) repeated, alpha dropped."""
    if unit_image.shape[-1] < 3:
        return np.repeat(unit_image[..., :1], 3, axis=-1)
    return unit_image[..., :3]


class ColorHistogram(Featurizer):
    """Per-region HSV histograms and RGB mean and standard deviation.

    Features of region ``r``, ``D = 3 * bins + 6`` of them, in this order:

    - hue histogram (``bins``), each pixel weighted by its saturation: a grey pixel's hue
      is undefined (skimage calls it 0, red), so grey pixels add no hue mass and the
      histogram sums to the region's mean saturation. Bins are centred on hue 0, so the
      reds just below and above 0 share bin 0;
    - saturation histogram and value histogram (``bins`` each), fractions of the
      region's pixels, summing to 1;
    - mean and standard deviation of R, G and B, in ``[0, 1]``.

    The image is first rescaled from its pixel range to ``[0, 1]``, so an 8-bit image and
    the same image divided by 255 give the same features. A grey image is read as R = G =
    B = intensity: its hue histogram is empty, its saturation all in bin 0, and only the
    value histogram and the mean and std (the intensity's, three times) vary, with the
    same ``D`` as a colour image. A fourth (alpha) channel is ignored.

    Parameters
    ----------
    bins:
        Histogram bins per HSV channel. Default 8.
    value_range:
        ``(low, high)``, the images' pixel range. ``None`` (default) infers it per image
        from the maximum: ``(0, 1)`` if at most 1, ``(0, 255)`` if at most 255, else
        ``(0, 65535)``.
    """

    name = "color"
    citation = "Swain, Ballard. Color Indexing. IJCV 7(1), 1991"

    def __init__(self, *, bins: int = 8, value_range: tuple[float, float] | None = None):
        check_positive_int(bins, "bins")
        check_value_range(value_range)
        self.bins = bins
        self.value_range = value_range

    def _featurize(
        self, image: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> np.ndarray:
        rgb = as_rgb(to_unit_range(image, self.value_range))
        flat_labels = labels.astype(np.intp).ravel()
        return self._region_features(rgb, flat_labels, int(flat_labels.max()) + 1)

    def _featurize_batch(
        self, images: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> list[np.ndarray]:
        rgb = as_rgb(stack_to_unit_range(images, self.value_range))
        numbered, offsets = stacked_labels(labels)
        return split_rows(self._region_features(rgb, numbered.ravel(), int(offsets[-1])), offsets)

    def _region_features(
        self, rgb: np.ndarray, flat_labels: np.ndarray, n_regions: int
    ) -> np.ndarray:
        """Features of ``n_regions`` regions of unit-range ``rgb`` (``(..., 3)``)."""
        from skimage.color import rgb2hsv

        hsv = rgb2hsv(rgb)
        area = np.bincount(flat_labels, minlength=n_regions).astype(np.float64)
        per_pixel = np.maximum(area, 1.0)[:, None]  # a label with no pixel gets zeros, not NaN
        bins = self.bins
        hue_bin = np.floor(hsv[..., 0] * bins + 0.5).astype(np.intp) % bins
        blocks = [
            self._histogram(flat_labels, hue_bin.ravel(), n_regions, hsv[..., 1].ravel()),
            self._histogram(flat_labels, self._bin(hsv[..., 1]), n_regions),
            self._histogram(flat_labels, self._bin(hsv[..., 2]), n_regions),
        ]
        blocks = [block / per_pixel for block in blocks]
        pixels = rgb.reshape(-1, 3)
        mean = (
            np.stack([np.bincount(flat_labels, pixels[:, c], n_regions) for c in range(3)], axis=1)
            / per_pixel
        )
        # two passes, so that a flat region's std is exactly 0 rather than rounding noise
        deviation = (pixels - mean[flat_labels]) ** 2
        variance = (
            np.stack(
                [np.bincount(flat_labels, deviation[:, c], n_regions) for c in range(3)], axis=1
            )
            / per_pixel
        )
        std = np.sqrt(variance)
        return np.concatenate([*blocks, mean, std], axis=1).astype(np.float32)

    def _bin(self, channel: np.ndarray) -> np.ndarray:
        # values in [0, 1]; 1.0 belongs in the top bin
        return np.minimum((channel * self.bins).astype(np.intp), self.bins - 1).ravel()

    def _histogram(
        self,
        flat_labels: np.ndarray,
        bin_index: np.ndarray,
        n_regions: int,
        weights: np.ndarray | None = None,
    ) -> np.ndarray:
        counts = np.bincount(
            flat_labels * self.bins + bin_index, weights=weights, minlength=n_regions * self.bins
        )
        return counts.astype(np.float64).reshape(n_regions, self.bins)


@hookimpl
def register_featurizers(register: Register) -> None:
    register(ColorHistogram)
