"""The ``"cosine"`` metric: do two maps point the same way?"""

from __future__ import annotations

import numpy as np

from imacs.hookspecs import Register, hookimpl
from imacs.metrics.base import MapMetric


class CosineSimilarity(MapMetric):
    """Cosine of the angle between the two flattened maps, in ``[-1, 1]``.

    ``(H, W, C)`` maps are flattened as they are, channels included. Signs count: a map
    and its negation score -1. Independent of each map's scale, so L1-normalised and raw
    maps score alike.

    The angle to an all-zero map is undefined. By convention two all-zero maps score 1.0
    (they agree: neither attributes anything) and an all-zero map against any other map
    scores 0.0 (nothing in common), so a mean over images stays a number.
    """

    name = "cosine"

    def _score(self, map_a: np.ndarray, map_b: np.ndarray) -> float:
        # scale by the largest magnitude first: squaring 1e200 or 1e-200 over/underflows
        a, b = _unit_max(map_a.ravel()), _unit_max(map_b.ravel())
        norm_a, norm_b = np.linalg.norm(a), np.linalg.norm(b)
        if norm_a == 0 and norm_b == 0:
            return 1.0
        if norm_a == 0 or norm_b == 0:
            return 0.0
        return float(np.clip(np.dot(a, b) / (norm_a * norm_b), -1.0, 1.0))


def _unit_max(values: np.ndarray) -> np.ndarray:
    top = np.abs(values).max()
    return values / top if top > 0 else values


@hookimpl
def register_metrics(register: Register) -> None:
    register(CosineSimilarity)
