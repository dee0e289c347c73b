"""imacs: compare two image models across a dataset by where their attributions differ.

Quick start::

    import imacs

    model = imacs.load_model(torch_or_keras_model)
    maps = imacs.attribute(model, images, targets, method="gradient").maps

The comparison pipeline (``compare``, ``Comparison``) and the data sources (``data``)
import pandas and friends, so they are imported on first use: ``import imacs`` stays
quick for the command line and for plugins that only register components.
"""

from __future__ import annotations

import warnings
from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from imacs.adapters.base import ModelAdapter
from imacs.adapters.preprocessing import Preprocessing
from imacs.api import attribute, get_method, get_plugins, load_model
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.comparison.clustering import Clusterer
from imacs.errors import InvalidInputError
from imacs.features.base import Featurizer
from imacs.hookspecs import hookimpl
from imacs.metrics.base import MapMetric
from imacs.quality.base import QualityMeasure, QualityResult
from imacs.registry import component_names, get_component
from imacs.segmentation.base import Segmenter
from imacs.threads import set_threads, threads_from_environment

if TYPE_CHECKING:
    from imacs import data
    from imacs.comparison.compare import compare
    from imacs.comparison.result import Comparison

try:
    __version__ = version("imacs")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

try:  # IMACS_THREADS, before any framework loads (imacs.threads)
    threads_from_environment()
except InvalidInputError as _error:  # a bad value must not make imacs unimportable
    warnings.warn(f"{_error}; IMACS_THREADS ignored", stacklevel=2)

#: names imported on first use: attribute -> (module, attribute in it, or None for the module)
_LAZY: dict[str, tuple[str, str | None]] = {
    "compare": ("imacs.comparison.compare", "compare"),
    "Comparison": ("imacs.comparison.result", "Comparison"),
    "data": ("imacs.data", None),
}


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'imacs' has no attribute {name!r}")
    module_name, attribute_name = _LAZY[name]
    module = import_module(module_name)
    value = module if attribute_name is None else getattr(module, attribute_name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "AttributionMethod",
    "AttributionResult",
    "Clusterer",
    "Comparison",
    "Featurizer",
    "MapMetric",
    "ModelAdapter",
    "Preprocessing",
    "QualityMeasure",
    "QualityResult",
    "Segmenter",
    "__version__",
    "attribute",
    "compare",
    "component_names",
    "data",
    "get_component",
    "get_method",
    "get_plugins",
    "hookimpl",
    "load_model",
    "set_threads",
]
