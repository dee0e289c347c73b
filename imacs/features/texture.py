"""The ``"texture"`` featurizer: local binary patterns and edge strength per region.

Uniform local binary patterns: Ojala, Pietikäinen, Mäenpää. "Multiresolution Gray-Scale
and Rotation Invariant Texture Classification with Local Binary Patterns". IEEE TPAMI
24(7), 2002, as computed by :func:`skimage.feature.local_binary_pattern`.
"""

from __future__ import annotations

import math

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.errors import InvalidInputError
from imacs.features.base import Featurizer, split_rows, stacked_labels
from imacs.features.color import check_value_range, stack_to_unit_range
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_positive_int


class LocalBinaryPatterns(Featurizer):
    """Per-region histogram of uniform LBP codes, and mean gradient magnitude.

    Features of region ``r``, ``D = points + 3`` of them (11 by default):

    - the histogram of the ``points + 2`` rotation-invariant uniform LBP codes of the grey
      image over the region's pixels, normalised to sum 1. Code ``points`` is a pixel no
      darker than all its neighbours (a flat patch); code ``points + 1`` collects the
      non-uniform patterns;
    - the mean gradient magnitude (``numpy.gradient``, per pixel) over the region, in
      units of the image's pixel range per pixel, so that an image and the same image
      divided by 255 agree.

    The grey image is the luminance of the RGB channels (alpha ignored), or the channel of
    a grey image, rescaled to ``[0, 1]`` and quantised to 16 bits before LBP: LBP compares
    neighbours for equality, which float rounding would make noisy (skimage warns about
    float input for that reason). The image border is extended by replicating edge pixels,
    so a flat patch that touches the border still reads as flat.

    Parameters
    ----------
    points:
        Number of circularly symmetric neighbours ``P``. Default 8.
    radius:
        Radius ``R`` of the circle of neighbours, in pixels. Default 1.
    value_range:
        ``(low, high)``, the images' pixel range; ``None`` (default) infers it per image
        as the ``"color"`` featurizer does.
    """

    name = "texture"
    citation = "Ojala, Pietikäinen, Mäenpää. IEEE TPAMI 24(7), 2002"

    def __init__(
        self,
        *,
        points: int = 8,
        radius: float = 1.0,
        value_range: tuple[float, float] | None = None,
    ):
        check_positive_int(points, "points")
        if (
            isinstance(radius, bool)
            or not isinstance(radius, int | float | np.number)
            or radius <= 0
        ):
            raise InvalidInputError(f"expected radius to be a number > 0; got {radius!r}")
        check_value_range(value_range)
        self.points = points
        self.radius = radius
        self.value_range = value_range

    def _featurize(
        self, image: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> np.ndarray:
        return self._featurize_batch(image[None], labels[None], model)[0]

    def _featurize_batch(
        self, images: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> list[np.ndarray]:
        from skimage.color import rgb2gray
        from skimage.feature import local_binary_pattern

        unit = stack_to_unit_range(images, self.value_range)
        grey = unit[..., 0] if unit.shape[-1] < 3 else rgb2gray(unit[..., :3])
        n_images, height, width = grey.shape
        quantised = np.round(grey * 65535.0).astype(np.uint16)
        # Each image padded by its edge pixels, the padded images side by side in one row:
        # a pixel's circle of neighbours reaches at most ceil(radius) pixels away, inside
        # its own image's padding, so one call gives each image's codes.
        pad = math.ceil(self.radius) + 1
        padded = np.pad(quantised, ((0, 0), (pad, pad), (pad, pad)), mode="edge")
        side_by_side = padded.transpose(1, 0, 2).reshape(height + 2 * pad, -1)
        codes = local_binary_pattern(side_by_side, self.points, self.radius, method="uniform")
        codes = codes.reshape(height + 2 * pad, n_images, width + 2 * pad).transpose(1, 0, 2)
        codes = codes[:, pad:-pad, pad:-pad]
        numbered, offsets = stacked_labels(labels)
        flat_labels = numbered.ravel()
        n_regions = int(offsets[-1])
        n_codes = self.points + 2
        area = np.bincount(flat_labels, minlength=n_regions).astype(np.float64)
        per_pixel = np.maximum(area, 1.0)[:, None]  # a label with no pixel gets zeros, not NaN
        histogram = np.bincount(
            flat_labels * n_codes + codes.astype(np.intp).ravel(), minlength=n_regions * n_codes
        ).reshape(n_regions, n_codes)
        # np.gradient needs two samples along an axis; a one-pixel-thin image has none
        rows, cols = (
            np.gradient(grey, axis=axis) if grey.shape[axis] > 1 else np.zeros_like(grey)
            for axis in (1, 2)
        )
        magnitude = np.hypot(rows, cols).ravel()
        mean_gradient = np.bincount(flat_labels, magnitude, n_regions)[:, None]
        table = np.concatenate([histogram / per_pixel, mean_gradient / per_pixel], axis=1)
        return split_rows(table, offsets)


@hookimpl
def register_featurizers(register: Register) -> None:
    register(LocalBinaryPatterns)
