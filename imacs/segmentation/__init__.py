"""Segmenters: one image -> an integer label map shared by both compared models."""

from imacs.segmentation.base import Segmenter

__all__ = ["Segmenter"]
