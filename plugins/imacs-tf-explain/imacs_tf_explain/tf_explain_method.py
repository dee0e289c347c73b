"""What every tf-explain wrapper shares: the adapter check and the shape of a call.

A wrapper receives the TensorFlow adapter, channel-last float32 images, int64 targets and
imacs's ``batch_size`` (the most inputs sent to the model in one call), calls tf-explain's
computation helpers on :func:`~imacs_tf_explain.keras_bridge.pixel_model` (never its
``explain``, which returns a picture grid), and returns raw maps ``(N, H, W, C)``.

Nothing here imports TensorFlow or tf-explain at import time: the registry imports these
classes whenever it lists attribution methods.
"""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.errors import InvalidInputError

if TYPE_CHECKING:
    from imacs_tensorflow.adapter import TensorFlowAdapter


class TfExplainMethod(AttributionMethod):
    """Base class of the tf-explain wrappers. Subclasses implement ``_explain``."""

    #: The imacs built-in that computes the same thing on any adapter (for errors).
    builtin: ClassVar[str] = ""

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        adapter = require_tensorflow_adapter(model, self)
        maps, delta = self._explain(adapter, images, targets, batch_size)
        return AttributionResult(maps, self.name, self.get_params(), convergence_delta=delta)

    @abc.abstractmethod
    def _explain(
        self,
        adapter: TensorFlowAdapter,
        images: np.ndarray,
        targets: np.ndarray,
        batch_size: int,
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Raw maps ``(N, H, W, C)`` and, for path methods, the convergence delta."""


def require_tensorflow_adapter(model: ModelAdapter, method: TfExplainMethod) -> TensorFlowAdapter:
    """``model`` if it is imacs-tensorflow's adapter, else a clear ``InvalidInputError``.

    Checked by name first, so a PyTorch user never imports TensorFlow to be told this.
    """
    if model.name == "tensorflow":
        from imacs_tensorflow.adapter import TensorFlowAdapter

        if isinstance(model, TensorFlowAdapter):
            return model
    instead = (
        f", or use the built-in {method.builtin!r}, which works with any adapter"
        if method.builtin
        else ""
    )
    raise InvalidInputError(
        f"{method.name} needs a Keras or TensorFlow model loaded through imacs-tensorflow; "
        f"got adapter {model.name!r} ({type(model).__qualname__}): load the model with "
        f"imacs.load_model(keras_model){instead}"
    )
