"""The ``"spearman"`` metric: do two maps rank the pixels alike?

Spearman's rank correlation, used to compare saliency maps by Adebayo et al. "Sanity
Checks for Saliency Maps". NeurIPS 2018. arXiv:1810.03292.
"""

from __future__ import annotations

import numpy as np

from imacs.hookspecs import Register, hookimpl
from imacs.metrics.base import MapMetric


class SpearmanRankCorrelation(MapMetric):
    """Spearman rank correlation of the two flattened maps, in ``[-1, 1]``.

    The Pearson correlation of the two maps' ranks, ties given their average rank, as
    :func:`scipy.stats.spearmanr` computes it (and equal to it to rounding); ranked here
    with one sort per map, because scipy's per-call overhead made it 2.5 times slower on
    32x32 maps (``benchmarks/stage_costs.py``). ``(H, W, C)``
    maps are flattened as they are, channels included. The correlation of a constant map
    is undefined (scipy answers NaN); this metric answers 0.0 instead, "no rank
    agreement", so that a mean over images stays a number. That includes two identical
    constant maps.

    Rank correlation ignores the maps' scales, so it compares two models' attributions
    without normalising them; take ``abs`` of both maps first to compare importance
    regardless of sign.
    """

    name = "spearman"
    citation = "Spearman 1904; for saliency maps, Adebayo et al., NeurIPS 2018, arXiv:1810.03292"

    def _score(self, map_a: np.ndarray, map_b: np.ndarray) -> float:
        return float(self._score_batch(map_a[None], map_b[None])[0])

    def _score_batch(self, maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
        a, b = maps_a.reshape(len(maps_a), -1), maps_b.reshape(len(maps_b), -1)
        scores = np.zeros(len(a), dtype=np.float64)
        ranked = (np.ptp(a, axis=1) > 0) & (np.ptp(b, axis=1) > 0)
        if a.shape[1] < 2 or not ranked.any():
            return scores
        rank_a, rank_b = average_ranks(a[ranked]), average_ranks(b[ranked])
        rank_a -= rank_a.mean(axis=1, keepdims=True)
        rank_b -= rank_b.mean(axis=1, keepdims=True)
        numerator = np.einsum("ij,ij->i", rank_a, rank_b)
        denominator = np.sqrt(
            np.einsum("ij,ij->i", rank_a, rank_a) * np.einsum("ij,ij->i", rank_b, rank_b)
        )
        scores[ranked] = np.clip(numerator / denominator, -1.0, 1.0)
        return scores


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks ``1 .. n`` along the last axis, tied values sharing their average rank (float64).

    ``values`` is ``(n,)`` or ``(rows, n)``; each row is ranked on its own, all rows with
    one sort.
    """
    rows = np.atleast_2d(values)
    n_rows, n = rows.shape
    order = np.argsort(rows, axis=1, kind="stable")
    ordered = np.take_along_axis(rows, order, axis=1)
    starts_group = np.empty((n_rows, n), dtype=bool)
    starts_group[:, 0] = True  # groups never run across rows
    np.not_equal(ordered[:, 1:], ordered[:, :-1], out=starts_group[:, 1:])
    starts = np.flatnonzero(starts_group)
    sizes = np.diff(np.append(starts, n_rows * n))
    group_rank = starts % n + (sizes + 1) / 2.0  # the mean of ranks start+1 .. start+size
    ranks = np.empty((n_rows, n), dtype=np.float64)
    np.put_along_axis(ranks, order, np.repeat(group_rank, sizes).reshape(n_rows, n), axis=1)
    return ranks.reshape(np.shape(values))


@hookimpl
def register_metrics(register: Register) -> None:
    register(SpearmanRankCorrelation)
