"""imacs-tensorflow: Keras 3 models and TensorFlow SavedModels for imacs.

Installing this package registers the ``tensorflow`` model adapter and lets
``imacs.load_model`` recognise ``keras.Model`` objects, ``.keras`` archives, legacy
``.h5`` files and SavedModel directories::

    import imacs

    model = imacs.load_model("classifier.keras", preprocessing={"scale": 1 / 255})
    model = imacs.load_model(keras_model, target="probability")
    model = imacs.load_model("exported/", trust=True)  # a SavedModel runs ops as it loads

imacs imports every installed plugin when it starts, so importing this module imports
neither TensorFlow nor Keras: they are imported when a TensorFlow model is loaded.
"""

from __future__ import annotations

from typing import Any

from imacs.adapters.base import ModelAdapter
from imacs.hookspecs import Register, hookimpl
from imacs_tensorflow.adapter import TensorFlowAdapter
from imacs_tensorflow.claims import is_tensorflow_object, is_tensorflow_path

__all__ = ["TensorFlowAdapter", "claim_model", "register_model_adapters"]


@hookimpl
def register_model_adapters(register: Register) -> None:
    """Register :class:`TensorFlowAdapter` as the model adapter ``"tensorflow"``."""
    register(TensorFlowAdapter)


@hookimpl
def claim_model(model: Any, options: dict[str, Any]) -> ModelAdapter | None:
    """Wrap Keras models, TensorFlow modules, Keras files and SavedModel directories.

    Anything else (PyTorch modules and files among them) is left to other plugins.
    """
    if is_tensorflow_path(model) or is_tensorflow_object(model):
        return TensorFlowAdapter.load(model, **options)
    return None
