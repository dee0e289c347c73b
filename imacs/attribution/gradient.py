"""The plain input gradient (vanilla saliency).

Simonyan, Vedaldi, Zisserman. "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps". ICLR workshop 2014. arXiv:1312.6034.
"""

from __future__ import annotations

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.hookspecs import Register, hookimpl


class Gradient(AttributionMethod):
    """The gradient of the target score with respect to each input pixel.

    Parameters
    ----------
    absolute:
        Return ``|gradient|`` (the saliency map of the paper) instead of the signed
        gradient.
    """

    name = "gradient"
    citation = "Simonyan et al., ICLR workshop 2014, arXiv:1312.6034"

    def __init__(self, *, absolute: bool = False):
        self.absolute = absolute

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        grads = model.gradients(images, targets, batch_size=batch_size)
        maps = np.abs(grads) if self.absolute else grads
        return AttributionResult(maps, self.name, self.get_params())


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(Gradient)
