"""The attribution-method interface.

A method talks only to the model-adapter contract and NumPy: it never imports a
framework. Its constructor takes the paper's parameters with the paper's defaults;
``attribute`` validates inputs once and hands ``_attribute`` clean arrays.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.components import Component
from imacs.errors import InvalidInputError
from imacs.images import as_image_batch, as_targets

DEFAULT_BATCH_SIZE = 32


@dataclass
class AttributionResult:
    """Attribution maps and what produced them.

    ``maps`` has the images' shape ``(N, H, W, C)``; ``convergence_delta`` is set by path
    methods (one completeness error per image). ``numpy.asarray(result)`` gives ``maps``.
    """

    maps: np.ndarray
    method: str
    params: dict[str, Any] = field(default_factory=dict)
    convergence_delta: np.ndarray | None = None

    def __array__(self, dtype: Any = None, copy: bool | None = None) -> np.ndarray:
        return self.maps if dtype is None else self.maps.astype(dtype)

    def __len__(self) -> int:
        return len(self.maps)


class AttributionMethod(Component, abc.ABC):
    """Base class of attribution methods. Subclasses implement ``_attribute``.

    Methods need the adapter's gradients unless they say otherwise: forward-only methods
    (occlusion, PAMI) and wrappers whose needs depend on what they wrap set ``requires``
    to an empty set.
    """

    requires: ClassVar[frozenset[str]] = frozenset({"gradients"})

    def attribute(
        self,
        model: ModelAdapter,
        images: Any,
        targets: Any,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> AttributionResult:
        """One attribution map per image for its target class.

        ``batch_size`` is the most inputs sent to the model in one call, whatever the
        method multiplies (steps x images x samples); results do not depend on it.
        """
        if not isinstance(model, ModelAdapter):
            raise InvalidInputError(
                f"expected a model adapter; got {type(model).__name__}: wrap the model with "
                "imacs.load_model(model) first"
            )
        if not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"expected batch_size to be a positive int; got {batch_size!r}")
        for capability in self.requires:
            model.require(capability, by=f"attribution method {self.name!r}")
        x = as_image_batch(images)
        if model.num_classes is None:
            model.predict(x[:1])
        t = as_targets(targets, len(x), model.num_classes)
        result = self._attribute(model, x, t, batch_size)
        if result.maps.shape != x.shape:
            raise InvalidInputError(
                f"attribution method {self.name!r} returned maps of shape {result.maps.shape} "
                f"for images of shape {x.shape}"
            )
        result.maps = result.maps.astype(np.float32, copy=False)
        return result

    @abc.abstractmethod
    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        """Compute maps for validated float32 images and int64 targets."""
