"""The ``"shape"`` featurizer: where a region lies, how big it is, how it is shaped.

The quantities are those of :func:`skimage.measure.regionprops` (area, centroid,
eccentricity, extent, bounding box), computed for all regions at once with
``numpy.bincount`` instead of one region at a time.
"""

from __future__ import annotations

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.features.base import Featurizer, split_rows, stacked_labels
from imacs.hookspecs import Register, hookimpl

#: the columns :class:`RegionShape` returns, in order
SHAPE_FEATURES = (
    "area",
    "centroid_y",
    "centroid_x",
    "eccentricity",
    "extent",
    "bbox_height",
    "bbox_width",
)


class RegionShape(Featurizer):
    """Size, position and form of each region, as fractions of the image.

    Features of region ``r`` (``D = 7``, named in :data:`SHAPE_FEATURES`):

    - ``area``: the region's pixels as a fraction of the image's;
    - ``centroid_y``, ``centroid_x``: the centroid of the pixel centres, as a fraction of
      the height and width (pixel ``i`` spans ``[i, i + 1)``, so a region filling the
      image has centroid 0.5, 0.5);
    - ``eccentricity``: of the ellipse with the region's second moments, as regionprops
      defines it (0 for a disc or a single pixel, towards 1 for a line);
    - ``extent``: area over bounding-box area. Chosen over solidity, which needs a convex
      hull per region and is undefined for a line of pixels;
    - ``bbox_height``, ``bbox_width``: the bounding box's size as a fraction of the
      image's height and width.

    No parameters; the image is used only for its size.
    """

    name = "shape"
    citation = "skimage.measure.regionprops definitions"

    def _featurize(
        self, image: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> np.ndarray:
        return self._featurize_batch(image[None], labels[None], model)[0]

    def _featurize_batch(
        self, images: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> list[np.ndarray]:
        _, height, width = labels.shape
        numbered, offsets = stacked_labels(labels)
        flat_labels = numbered.ravel()
        n_regions = int(offsets[-1])
        rows, cols = np.indices((height, width), dtype=np.float64)
        rows = np.broadcast_to(rows, labels.shape).ravel()
        cols = np.broadcast_to(cols, labels.shape).ravel()
        area = np.bincount(flat_labels, minlength=n_regions).astype(np.float64)
        count = np.maximum(area, 1.0)  # a label with no pixel gets zeros, not NaN
        mean_y = np.bincount(flat_labels, rows, n_regions) / count
        mean_x = np.bincount(flat_labels, cols, n_regions) / count
        dy = rows - mean_y[flat_labels]
        dx = cols - mean_x[flat_labels]
        var_y = np.bincount(flat_labels, dy * dy, n_regions) / count
        var_x = np.bincount(flat_labels, dx * dx, n_regions) / count
        cov = np.bincount(flat_labels, dy * dx, n_regions) / count
        # eigenvalues of the 2x2 covariance (regionprops' inertia_tensor_eigvals)
        half_trace = (var_y + var_x) / 2
        spread = np.sqrt(((var_y - var_x) / 2) ** 2 + cov**2)
        major, minor = half_trace + spread, np.maximum(half_trace - spread, 0.0)
        eccentricity = np.sqrt(
            1.0 - np.divide(minor, major, out=np.ones_like(major), where=major > 0)
        )

        top = np.full(n_regions, height, dtype=np.intp)
        left = np.full(n_regions, width, dtype=np.intp)
        bottom = np.full(n_regions, -1, dtype=np.intp)
        right = np.full(n_regions, -1, dtype=np.intp)
        row_index, col_index = rows.astype(np.intp), cols.astype(np.intp)
        np.minimum.at(top, flat_labels, row_index)
        np.minimum.at(left, flat_labels, col_index)
        np.maximum.at(bottom, flat_labels, row_index)
        np.maximum.at(right, flat_labels, col_index)
        box_height = np.maximum(bottom - top + 1, 0).astype(np.float64)
        box_width = np.maximum(right - left + 1, 0).astype(np.float64)
        extent = area / np.maximum(box_height * box_width, 1.0)

        features = np.stack(
            [
                area / (height * width),
                (mean_y + 0.5) / height,
                (mean_x + 0.5) / width,
                eccentricity,
                extent,
                box_height / height,
                box_width / width,
            ],
            axis=1,
        )
        features[area == 0, 1:3] = 0.0
        return split_rows(features, offsets)


@hookimpl
def register_featurizers(register: Register) -> None:
    register(RegionShape)
