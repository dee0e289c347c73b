"""Gradient times input.

Shrikumar, Greenside, Shcherbina, Kundaje. "Not Just a Black Box: Learning Important
Features Through Propagating Activation Differences". arXiv:1605.01713, 2016; analysed by
Ancona, Ceolini, Oztireli, Gross. "Towards better understanding of gradient-based
attribution methods for Deep Neural Networks". ICLR 2018. arXiv:1711.06104.
"""

from __future__ import annotations

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.hookspecs import Register, hookimpl


class GradientTimesInput(AttributionMethod):
    """The input gradient multiplied elementwise by the input: ``x * dF/dx``.

    For a linear model it is each pixel's exact contribution ``w_j x_j`` to the score; in
    general it equals Integrated Gradients from a zero baseline with one right-Riemann step
    (``alpha = 1``). Pixel values enter as the adapter receives them, so the map
    depends on the pixel range (a pixel at 0 always gets 0).
    """

    name = "gradient-times-input"
    citation = "Shrikumar et al., arXiv:1605.01713, 2016; Ancona et al., ICLR 2018"

    def __init__(self) -> None:
        pass

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        grads = model.gradients(images, targets, batch_size=batch_size)
        return AttributionResult(grads * images, self.name, self.get_params())


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(GradientTimesInput)
