"""An adapter over plain Python functions: any model you can call from NumPy.

Useful for models in frameworks imacs has no plugin for (call them from NumPy and give
their gradient function), for forward-only black boxes (no ``gradient_fn``: methods that
need gradients then say so), and for analytic test models.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter, TargetSpec, fingerprint_arrays
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl


def select_target(outputs: np.ndarray, targets: np.ndarray, target: TargetSpec) -> np.ndarray:
    """Apply a target spec to NumPy outputs ``(N, K)``: one score per image."""
    if callable(target):
        return np.asarray(target(outputs, targets))
    rows = np.arange(len(targets))
    if target == "logit":
        return outputs[rows, targets]
    shifted = outputs - outputs.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    if target == "log_probability":
        return log_probs[rows, targets]
    return np.exp(log_probs[rows, targets])


class FunctionAdapter(ModelAdapter):
    """Wrap NumPy-level functions as a model.

    Parameters
    ----------
    predict_fn:
        ``images (N, H, W, C) float32 -> outputs (N, K)``.
    gradient_fn:
        ``(images, targets) -> (N, H, W, C)``: the gradient of the target score (as chosen
        by ``target``) with respect to the images. Without it the adapter is forward-only.
    fingerprint:
        A string that identifies the model's weights, used to key cached results. Without
        it, a digest of the model's outputs on a fixed probe image is used, which needs
        ``image_shape``.
    image_shape:
        ``(H, W, C)`` the model accepts; images of another shape are then refused clearly.
    """

    name = "function"
    framework = "numpy"

    def __init__(
        self,
        predict_fn: Callable[[np.ndarray], Any],
        gradient_fn: Callable[[np.ndarray, np.ndarray], Any] | None = None,
        *,
        fingerprint: str | None = None,
        image_shape: tuple[int, int, int] | None = None,
        target: TargetSpec = "logit",
        batch_size: int | None = None,
    ):
        super().__init__(target=target, batch_size=batch_size)
        if not callable(predict_fn):
            raise InvalidInputError(f"expected predict_fn to be callable; got {predict_fn!r}")
        self.predict_fn = predict_fn
        self.gradient_fn = gradient_fn
        self._fingerprint = fingerprint
        self._image_shape = tuple(image_shape) if image_shape is not None else None  # type: ignore[assignment]
        self.capabilities = frozenset({"gradients"}) if gradient_fn is not None else frozenset()

    def _predict(self, images: np.ndarray) -> Any:
        return self.predict_fn(images)

    def _scores(self, images: np.ndarray, targets: np.ndarray) -> Any:
        return select_target(np.asarray(self.predict_fn(images)), targets, self.target)

    def _value_and_gradients(self, images: np.ndarray, targets: np.ndarray) -> tuple[Any, Any]:
        assert self.gradient_fn is not None  # guarded by require("gradients")
        return self._scores(images, targets), self.gradient_fn(images, targets)

    def fingerprint(self) -> str:
        if self._fingerprint is not None:
            return self._fingerprint
        if self._image_shape is None:
            raise InvalidInputError(
                "a FunctionAdapter needs fingerprint='...' (a string naming the model and its "
                "weights) or image_shape=(H, W, C), so cached results can be told apart"
            )
        probe = np.linspace(0, 1, num=int(np.prod(self._image_shape)), dtype=np.float32)
        return fingerprint_arrays([self.predict(probe.reshape(1, *self._image_shape))], "function")


@hookimpl
def register_model_adapters(register: Register) -> None:
    register(FunctionAdapter)
