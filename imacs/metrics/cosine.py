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
        return float(self._score_batch(map_a[None], map_b[None])[0])

    def _score_batch(self, maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
        # scale by the largest magnitude first: squaring 1e200 or 1e-200 over/underflows
        a = _unit_max(maps_a.reshape(len(maps_a), -1))
        b = _unit_max(maps_b.reshape(len(maps_b), -1))
        norm_a, norm_b = np.linalg.norm(a, axis=1), np.linalg.norm(b, axis=1)
        both = (norm_a > 0) & (norm_b > 0)
        scores = np.where((norm_a == 0) & (norm_b == 0), 1.0, 0.0)
        dot = np.einsum("ij,ij->i", a[both], b[both])
        scores[both] = np.clip(dot / (norm_a[both] * norm_b[both]), -1.0, 1.0)
        return scores


def _unit_max(rows: np.ndarray) -> np.ndarray:
    top = np.abs(rows).max(axis=1, keepdims=True)
    return rows / np.where(top > 0, top, 1.0)


@hookimpl
def register_metrics(register: Register) -> None:
    register(CosineSimilarity)
