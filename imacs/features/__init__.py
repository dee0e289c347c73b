"""Featurizers: each region of an image -> a vector used to cluster similar regions."""

from imacs.features.base import Featurizer

__all__ = ["Featurizer"]
