"""A regular grid of cells: regions that ignore the image's content.

No paper: the grid is the content-free baseline. Comparing a comparison made on grid cells
with one made on image-driven segments shows how much the segmentation shapes the result.
"""

from __future__ import annotations

import numpy as np

from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_positive_int
from imacs.segmentation.base import Segmenter


class Grid(Segmenter):
    """``rows`` x ``cols`` rectangular cells, numbered row by row from the top left.

    When the image's size does not divide, cells are as equal as possible: cell heights
    (and widths) differ by at most one pixel. An image with fewer pixel rows than
    ``rows`` (or columns than ``cols``) gets one cell per pixel row (column) instead.

    Parameters
    ----------
    rows:
        Number of cells down the image. Default 4.
    cols:
        Number of cells across the image. Default 4.
    """

    name = "grid"

    def __init__(self, *, rows: int = 4, cols: int = 4):
        check_positive_int(rows, "rows")
        check_positive_int(cols, "cols")
        self.rows = rows
        self.cols = cols

    def _segment(self, image: np.ndarray) -> np.ndarray:
        height, width = image.shape[:2]
        # pixel i falls in band floor(i * bands / size): band sizes are floor or ceil of
        # size / bands, so they differ by at most one
        row = np.arange(height) * self.rows // height
        col = np.arange(width) * self.cols // width
        return row[:, None] * self.cols + col[None, :]


@hookimpl
def register_segmenters(register: Register) -> None:
    register(Grid)
