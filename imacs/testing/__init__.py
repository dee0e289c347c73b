"""Tools for testing imacs components, ours and third parties'.

``check_model_adapter`` is to a model adapter what scikit-learn's ``check_estimator`` is
to an estimator: run it on your adapter and a few images, and it raises one
``AssertionError`` listing every way the adapter departs from the contract;
``check_attribution_method`` does the same for an attribution method,
``check_segmenter`` for a segmenter, ``check_featurizer`` and ``check_map_metric`` for
featurizers and metrics (their batched answers must equal their one-image answers),
``check_clusterer`` for a clusterer, and ``check_quality_measure`` for a quality measure
(scores per image, independent of batch size, deterministic under a seed). The pytest
fixtures live in ``imacs.testing.pytest_plugin``; enable them with
``pytest_plugins = ["imacs.testing.pytest_plugin"]`` in your ``conftest.py``.
"""

from imacs.testing.attribution_checks import (
    ATTRIBUTION_CHECKS,
    RecordingAdapter,
    check_attribution_method,
)
from imacs.testing.component_checks import (
    check_clusterer,
    check_featurizer,
    check_map_metric,
    check_segmenter,
)
from imacs.testing.model_checks import ADAPTER_CHECKS, check_model_adapter
from imacs.testing.quality_checks import check_quality_measure
from imacs.testing.toy_models import softplus_model

__all__ = [
    "ADAPTER_CHECKS",
    "ATTRIBUTION_CHECKS",
    "RecordingAdapter",
    "check_attribution_method",
    "check_clusterer",
    "check_featurizer",
    "check_map_metric",
    "check_model_adapter",
    "check_quality_measure",
    "check_segmenter",
    "softplus_model",
]
