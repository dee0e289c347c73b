"""The metric interface."""

from __future__ import annotations

import abc

import numpy as np

from imacs.components import Component
from imacs.errors import InvalidInputError


class MapMetric(Component, abc.ABC):
    """Compares two attribution maps of one image and returns a number.

    Maps may be ``(H, W)`` or ``(H, W, C)``; both must have the same shape. Subclasses set
    ``higher_is_more_similar`` so reports can colour the number the right way round.

    A comparison scores its images a batch at a time through :meth:`score_batch`. By
    default that calls :meth:`score` per image; a metric that can do a whole stack of
    maps in one go overrides ``_score_batch``, and must return what ``score`` would
    (``imacs.testing.check_map_metric`` checks that).
    """

    higher_is_more_similar: bool = True

    def score(self, map_a: np.ndarray, map_b: np.ndarray) -> float:
        a = np.asarray(map_a, dtype=np.float64)
        b = np.asarray(map_b, dtype=np.float64)
        if a.shape != b.shape or a.ndim not in (2, 3):
            raise InvalidInputError(
                f"expected two maps of one shape, (H, W) or (H, W, C); got {a.shape} and {b.shape}"
            )
        return float(self._score(a, b))

    def score_batch(self, maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
        """The metric for each pair of a stack of maps: ``(N,)`` float64.

        ``maps_a`` and ``maps_b`` are ``(N, H, W)`` or ``(N, H, W, C)`` arrays of one shape.
        """
        a = np.asarray(maps_a, dtype=np.float64)
        b = np.asarray(maps_b, dtype=np.float64)
        if a.shape != b.shape or a.ndim not in (3, 4):
            raise InvalidInputError(
                "expected two stacks of maps of one shape, (N, H, W) or (N, H, W, C); got "
                f"{a.shape} and {b.shape}"
            )
        if len(a) == 0:
            return np.zeros(0, dtype=np.float64)
        scores = np.asarray(self._score_batch(a, b), dtype=np.float64)
        if scores.shape != (len(a),):
            raise InvalidInputError(
                f"metric {self.name!r} returned shape {scores.shape} for {len(a)} pairs of maps"
            )
        return scores

    @abc.abstractmethod
    def _score(self, map_a: np.ndarray, map_b: np.ndarray) -> float:
        """The metric for two validated float64 maps of one shape."""

    def _score_batch(self, maps_a: np.ndarray, maps_b: np.ndarray) -> np.ndarray:
        """The metric for each pair of two validated, non-empty float64 stacks of one shape."""
        return np.array([self._score(a, b) for a, b in zip(maps_a, maps_b, strict=True)])
