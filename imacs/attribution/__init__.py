"""Attribution methods: (model adapter, images, targets) -> one map per image."""

from imacs.attribution.base import AttributionMethod, AttributionResult

__all__ = ["AttributionMethod", "AttributionResult"]
