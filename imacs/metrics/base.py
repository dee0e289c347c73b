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

    @abc.abstractmethod
    def _score(self, map_a: np.ndarray, map_b: np.ndarray) -> float:
        """The metric for two validated float64 maps of one shape."""
