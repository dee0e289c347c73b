"""The ``"ssim"`` metric: are two maps alike in local structure?

Structural similarity: Wang, Bovik, Sheikh, Simoncelli. "Image Quality Assessment: From
Error Visibility to Structural Similarity". IEEE TIP 13(4), 2004; used to compare
saliency maps by Adebayo et al. "Sanity Checks for Saliency Maps". NeurIPS 2018.
"""

from __future__ import annotations

import numpy as np

from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.metrics.base import MapMetric

#: scikit-image's default window side, used when the map is large enough
DEFAULT_WIN_SIZE = 7


def window_size(height: int, width: int) -> int:
    """The SSIM window side for an ``(height, width)`` map: odd, at most 7, fits the map."""
    side = min(DEFAULT_WIN_SIZE, height, width)
    if side < 3:
        raise InvalidInputError(
            f"SSIM needs maps of at least 3x3 pixels; got {height}x{width}: use another "
            "metric (spearman, cosine) for maps this small"
        )
    return side if side % 2 == 1 else side - 1


def scale_by_max_abs(values: np.ndarray) -> np.ndarray:
    """``values`` divided by their largest magnitude, into ``[-1, 1]``; all zeros stay zeros."""
    top = np.abs(values).max()
    return values / top if top > 0 else values


class StructuralSimilarity(MapMetric):
    """Mean structural similarity of the two maps, in ``[-1, 1]``.

    :func:`skimage.metrics.structural_similarity` with its default uniform window, on
    each map divided by its own largest absolute value, so both lie in ``[-1, 1]`` and
    ``data_range=2``: maps of different scales (two models' raw attributions) compare on
    their shapes. ``(H, W, C)`` maps are summed over channels first. The window is 7x7,
    or for smaller maps the largest odd side that fits; maps under 3x3 are refused.
    SSIM is a product of a local-mean term and a local-structure term, so a map against
    its negation can score above 0 (both factors negative): to detect flipped signs use
    ``"spearman"`` or ``"cosine"``.
    """

    name = "ssim"
    citation = "Wang, Bovik, Sheikh, Simoncelli. IEEE TIP 13(4), 2004"

    def _score(self, map_a: np.ndarray, map_b: np.ndarray) -> float:
        from skimage.metrics import structural_similarity

        if map_a.ndim == 3:
            map_a, map_b = map_a.sum(axis=-1), map_b.sum(axis=-1)
        return float(
            structural_similarity(
                scale_by_max_abs(map_a),
                scale_by_max_abs(map_b),
                win_size=window_size(*map_a.shape),
                data_range=2.0,
            )
        )


@hookimpl
def register_metrics(register: Register) -> None:
    register(StructuralSimilarity)
