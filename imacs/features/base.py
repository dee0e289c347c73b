"""The featurizer interface."""

from __future__ import annotations

import abc
from collections.abc import Sequence

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

    A comparison describes its images a batch at a time through :meth:`featurize_batch`.
    By default that calls ``featurize`` per image; a featurizer that can do a stack of
    images of one size in one go (and a model featurizer, which should make one model
    call per batch) overrides ``_featurize_batch``, and must return what ``featurize``
    would (``imacs.testing.check_featurizer`` checks that).
    """

    def featurize(
        self, image: np.ndarray, labels: np.ndarray, *, model: ModelAdapter | None = None
    ) -> np.ndarray:
        image = np.asarray(image, dtype=np.float32)
        labels = np.asarray(labels)
        self._check_inputs(image, labels, model)
        return self._check_output(self._featurize(image, labels, model), labels)

    def featurize_batch(
        self,
        images: Sequence[np.ndarray] | np.ndarray,
        labels: Sequence[np.ndarray] | np.ndarray,
        *,
        model: ModelAdapter | None = None,
    ) -> list[np.ndarray]:
        """``featurize`` for each image and its label map: a list of ``(R_i, D)`` float32."""
        images = [np.asarray(image, dtype=np.float32) for image in images]
        labels = [np.asarray(label_map) for label_map in labels]
        if len(images) != len(labels):
            raise InvalidInputError(
                f"expected one label map per image; got {len(images)} images and "
                f"{len(labels)} label maps"
            )
        for image, label_map in zip(images, labels, strict=True):
            self._check_inputs(image, label_map, model)
        if not images:
            return []
        if len({image.shape for image in images}) == 1:
            features = self._featurize_batch(np.stack(images), np.stack(labels), model)
        else:
            features = [
                self._featurize(image, label_map, model)
                for image, label_map in zip(images, labels, strict=True)
            ]
        if len(features) != len(images):
            raise InvalidInputError(
                f"featurizer {self.name!r} returned {len(features)} feature arrays for "
                f"{len(images)} images"
            )
        return [
            self._check_output(block, label_map)
            for block, label_map in zip(features, labels, strict=True)
        ]

    def _check_inputs(
        self, image: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> None:
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

    def _check_output(self, features: np.ndarray, labels: np.ndarray) -> np.ndarray:
        n_regions = int(labels.max()) + 1
        features = np.asarray(features, dtype=np.float32)
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

    def _featurize_batch(
        self, images: np.ndarray, labels: np.ndarray, model: ModelAdapter | None
    ) -> list[np.ndarray]:
        """Features of each image of a validated stack ``(N, H, W, C)`` and its labels."""
        return [
            self._featurize(image, label_map, model)
            for image, label_map in zip(images, labels, strict=True)
        ]


def stacked_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """One label numbering for a stack of dense label maps ``(N, H, W)``.

    Returns the labels offset so that image ``i``'s regions follow image ``i - 1``'s, and
    the offsets ``(N + 1,)``: image ``i``'s regions are rows ``offsets[i]:offsets[i + 1]``
    of a per-region table computed on the offset labels. A ``bincount`` over the offset
    labels adds each region's pixels in the same order as over the image alone, so
    per-region sums come out bit for bit as they do one image at a time.
    """
    labels = labels.astype(np.intp)
    counts = labels.reshape(len(labels), -1).max(axis=1) + 1
    offsets = np.concatenate([[0], np.cumsum(counts)])
    return labels + offsets[:-1, None, None], offsets


def split_rows(table: np.ndarray, offsets: np.ndarray) -> list[np.ndarray]:
    """``table``'s rows cut into one block per image at ``offsets`` (:func:`stacked_labels`)."""
    return [table[offsets[i] : offsets[i + 1]] for i in range(len(offsets) - 1)]
