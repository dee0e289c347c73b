"""The segmenter interface."""

from __future__ import annotations

import abc

import numpy as np

from imacs.components import Component
from imacs.errors import InvalidInputError


class Segmenter(Component, abc.ABC):
    """Cuts one image into regions, independently of any model.

    ``segment`` returns an int32 ``(H, W)`` label map whose labels are ``0 .. R-1``, every
    label used at least once.
    """

    def segment(self, image: np.ndarray) -> np.ndarray:
        """Label map ``(H, W)`` for one channel-last image ``(H, W, C)``."""
        image = np.asarray(image, dtype=np.float32)
        if image.ndim != 3:
            raise InvalidInputError(
                f"expected one channel-last image (H, W, C); got shape {image.shape}"
            )
        labels = np.asarray(self._segment(image))
        if labels.shape != image.shape[:2]:
            raise InvalidInputError(
                f"segmenter {self.name!r} returned labels of shape {labels.shape} for an "
                f"image of shape {image.shape}"
            )
        # relabel to 0..R-1 so every consumer can index regions densely
        _, dense = np.unique(labels, return_inverse=True)
        return dense.reshape(labels.shape).astype(np.int32)

    @abc.abstractmethod
    def _segment(self, image: np.ndarray) -> np.ndarray:
        """Labels ``(H, W)`` (any integers) for a validated float32 image."""
