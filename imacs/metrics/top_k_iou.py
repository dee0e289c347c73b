"""The ``"top-k-iou"`` metric: do two maps pick the same most important pixels?

Top-k intersection, as used to compare saliency maps by Ghorbani, Abid, Zou.
"Interpretation of Neural Networks Is Fragile". AAAI 2019. arXiv:1710.10547; here as an
intersection over union of the two top sets.
"""

from __future__ import annotations

import numpy as np

from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.metrics.base import MapMetric


def top_pixels(values: np.ndarray, k: int) -> np.ndarray:
    """Flat indices of the ``k`` largest ``values``; among equal values the first wins.

    ``values`` is one map, or ``(N, H, W)`` for the top of each map (then ``(N, k)``). A
    stable sort of the negated values keeps tied pixels in index order, so the answer
    does not depend on the sort algorithm or the platform.
    """
    if values.ndim <= 2:
        return np.argsort(-values.ravel(), kind="stable")[:k]
    return np.argsort(-values.reshape(len(values), -1), axis=1, kind="stable")[:, :k]


class TopKIntersectionOverUnion(MapMetric):
    """Intersection over union of the two maps' top ``fraction`` of pixels, in ``[0, 1]``.

    Each map's ``k = max(1, round(fraction * H * W))`` pixels of highest value (signed:
    the most positive attribution) form its top set; the score is
    ``|top_a & top_b| / |top_a | top_b|``. Both sets have ``k`` pixels, so chance overlap
    is about ``fraction / (2 - fraction)``. Ties at the threshold are broken by pixel
    order (row-major), the same way for both maps. ``(H, W, C)`` maps are summed over
    channels first, so a pixel is ranked once. Pass ``abs`` maps to rank importance
    regardless of sign.

    Parameters
    ----------
    fraction:
        The share of pixels in each top set, in ``(0, 1]``. Default 0.1.
    """

    name = "top-k-iou"
    citation = "Ghorbani, Abid, Zou. AAAI 2019. arXiv:1710.10547 (top-k intersection)"

    def __init__(self, *, fraction: float = 0.1):
        if (
            isinstance(fraction, bool)
            or not isinstance(fraction, int | float | np.number)
            or not 0 < fraction <= 1
        ):
            raise InvalidInputError(
                f"expected fraction to be a number in (0, 1], the share of pixels in each "
                f"top set; got {fraction!r}"
            )
        self.fraction = fraction

    def _score(self, map_a: np.ndarray, map_b: np.ndarray) -> float:
        return float(self._score_batch(map_a[None], map_b[None])[0])

    def _score_batch(self, maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
        if maps_a.ndim == 4:
            maps_a, maps_b = maps_a.sum(axis=-1), maps_b.sum(axis=-1)
        n, n_pixels = len(maps_a), maps_a[0].size
        k = max(1, round(self.fraction * n_pixels))
        in_a = np.zeros((n, n_pixels), dtype=bool)
        in_b = np.zeros((n, n_pixels), dtype=bool)
        np.put_along_axis(in_a, top_pixels(maps_a, k), True, axis=1)
        np.put_along_axis(in_b, top_pixels(maps_b, k), True, axis=1)
        shared = np.count_nonzero(in_a & in_b, axis=1)
        return shared / (2 * k - shared)


@hookimpl
def register_metrics(register: Register) -> None:
    register(TopKIntersectionOverUnion)
