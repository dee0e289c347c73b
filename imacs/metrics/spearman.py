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
        a, b = map_a.ravel(), map_b.ravel()
        if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return 0.0
        rank_a, rank_b = average_ranks(a), average_ranks(b)
        rank_a -= rank_a.mean()
        rank_b -= rank_b.mean()
        denominator = np.sqrt(np.dot(rank_a, rank_a) * np.dot(rank_b, rank_b))
        return float(np.clip(np.dot(rank_a, rank_b) / denominator, -1.0, 1.0))


def average_ranks(values: np.ndarray) -> np.ndarray:
    """Ranks ``1 .. n`` of a 1-D array, tied values sharing their average rank (float64)."""
    order = np.argsort(values, kind="stable")
    ordered = values[order]
    starts_group = np.empty(len(values), dtype=bool)
    starts_group[0] = True
    np.not_equal(ordered[1:], ordered[:-1], out=starts_group[1:])
    starts = np.flatnonzero(starts_group)
    sizes = np.diff(np.append(starts, len(values)))
    group_rank = starts + (sizes + 1) / 2.0  # the mean of ranks start+1 .. start+size
    ranks = np.empty(len(values), dtype=np.float64)
    ranks[order] = np.repeat(group_rank, sizes)
    return ranks


@hookimpl
def register_metrics(register: Register) -> None:
    register(SpearmanRankCorrelation)
