"""The featurizer interface."""

from __future__ import annotations

import abc

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.components import Component
from imacs.errors import InvalidInputError


class Featurizer(Component, abc.ABC):
    """Describes every region of an image by a fixed-length vector.

    ``featurize(image, labels)`` returns ``(R, D)`` float32, row ``r`` for region ``r`` of
    the dense label map ``labels`` (as a :class:`~imacs.Segmenter` returns it). A
    featurizer that needs a model (an embedding) declares it in ``requires`` and receives
    the adapter as ``model``.
    """

    def featurize(
        self, image: np.ndarray, labels: np.ndarray, *, model: ModelAdapter | None = None
    ) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        labels = np.asarray(labels)
        if image.ndim != 3 or labels.shape != image.shape[:2]:
            raise InvalidInputError(
                f"expected an image (H, W, C) and labels (H, W); got {image.shape} and "
                f"{labels.shape}"
            )
        if self.requires:
            if model is None:
                raise InvalidInputError(
                    f"featurizer {self.name!r} needs a model (it uses "
                    f"{', '.join(sorted(self.requires))}); pass model=..."
                )
            for capability in self.requires:
                model.require(capability, by=f"featurizer {self.name!r}")
        n_regions = int(labels.max()) + 1
        features = np.asarray(self._featurize(image, labels, model), dtype=np.float32)
        if features.ndim != 2 or features.shape[0] != n_regions:
            raise InvalidInputError(
                f"featurizer {self.name!r} returned shape {features.shape}; expected one row "
                f"per region ({n_regions})"
            )
        return features

    @abc.abstractmethod
    def _featurize(
        self, image: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> np.ndarray:
        """``(R, D)`` features for a validated image and dense labels."""
