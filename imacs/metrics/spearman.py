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

    Computed by :func:`scipy.stats.spearmanr` (ties get their average rank). ``(H, W, C)``
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
        from scipy.stats import spearmanr

        a, b = map_a.ravel(), map_b.ravel()
        if a.size < 2 or np.ptp(a) == 0 or np.ptp(b) == 0:
            return 0.0
        return float(spearmanr(a, b).statistic)


@hookimpl
def register_metrics(register: Register) -> None:
    register(SpearmanRankCorrelation)
