"""imacs: compare two image models across a dataset by where their attributions differ.

Quick start::

    import imacs

    model = imacs.load_model(torch_or_keras_model)
    maps = imacs.attribute(model, images, targets, method="gradient").maps
"""

from importlib.metadata import PackageNotFoundError, version

from imacs import data
from imacs.adapters.base import ModelAdapter
from imacs.adapters.preprocessing import Preprocessing
from imacs.api import attribute, get_method, get_plugins, load_model
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.comparison.compare import compare
from imacs.comparison.result import Comparison
from imacs.features.base import Featurizer
from imacs.hookspecs import hookimpl
from imacs.metrics.base import MapMetric
from imacs.segmentation.base import Segmenter

try:
    __version__ = version("imacs")
except PackageNotFoundError:  # running from a source tree that is not installed
    __version__ = "0+unknown"

__all__ = [
    "AttributionMethod",
    "AttributionResult",
    "Comparison",
    "Featurizer",
    "MapMetric",
    "ModelAdapter",
    "Preprocessing",
    "Segmenter",
    "__version__",
    "attribute",
    "compare",
    "data",
    "get_method",
    "get_plugins",
    "hookimpl",
    "load_model",
]
