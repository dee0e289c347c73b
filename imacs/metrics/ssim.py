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
    """``values`` divided by their largest magnitude, into ``[-1, 1]``; all zeros stay zeros.

    For a stack ``(N, H, W)``, each map is divided by its own largest magnitude.
    """
    if values.ndim <= 2:
        top = np.abs(values).max()
        return values / top if top > 0 else values
    top = np.abs(values).max(axis=(1, 2), keepdims=True)
    return values / np.where(top > 0, top, 1.0)


def mean_ssim(
    stack_x: np.ndarray, stack_y: np.ndarray, win_size: int, data_range: float
) -> np.ndarray:
    """Mean SSIM of each pair of ``(N, H, W)`` float64 maps: ``(N,)``.

    :func:`skimage.metrics.structural_similarity`'s computation with its defaults (a
    uniform ``win_size`` window, ``K1 = 0.01``, ``K2 = 0.03``, sample covariances, the
    border of half a window left out of the mean), done for the whole stack at once: the
    window spans one map, never two.
    """
    from scipy.ndimage import uniform_filter

    def local_mean(values: np.ndarray) -> np.ndarray:
        return uniform_filter(values, size=(1, win_size, win_size))

    n_window = win_size**2
    cov_norm = n_window / (n_window - 1)
    ux, uy = local_mean(stack_x), local_mean(stack_y)
    vx = cov_norm * (local_mean(stack_x * stack_x) - ux * ux)
    vy = cov_norm * (local_mean(stack_y * stack_y) - uy * uy)
    vxy = cov_norm * (local_mean(stack_x * stack_y) - ux * uy)
    c1, c2 = (0.01 * data_range) ** 2, (0.03 * data_range) ** 2
    similarity = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux**2 + uy**2 + c1) * (vx + vy + c2))
    pad = (win_size - 1) // 2
    height, width = similarity.shape[1:]
    return similarity[:, pad : height - pad, pad : width - pad].mean(axis=(1, 2))


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
        return float(self._score_batch(map_a[None], map_b[None])[0])

    def _score_batch(self, maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
        if maps_a.ndim == 4:
            maps_a, maps_b = maps_a.sum(axis=-1), maps_b.sum(axis=-1)
        side = window_size(*maps_a.shape[1:])
        return mean_ssim(scale_by_max_abs(maps_a), scale_by_max_abs(maps_b), side, 2.0)


@hookimpl
def register_metrics(register: Register) -> None:
    register(StructuralSimilarity)
