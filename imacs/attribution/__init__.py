"""Attribution methods: (model adapter, images, targets) -> one map per image."""

from imacs.attribution.base import AttributionMethod, AttributionResult, DatasetView

__all__ = ["AttributionMethod", "AttributionResult", "DatasetView"]
