"""Metrics: numbers that compare attribution maps."""

from imacs.metrics.base import MapMetric

__all__ = ["MapMetric"]
