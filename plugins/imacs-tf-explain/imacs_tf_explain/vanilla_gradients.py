"""tf-explain's VanillaGradients: the gradient of the target score.

Simonyan, Vedaldi, Zisserman. "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps". ICLR workshop 2014. arXiv:1312.6034.
Implementation: ``tf_explain.core.VanillaGradients.compute_gradients``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from imacs_tf_explain.tf_explain_method import TfExplainMethod

if TYPE_CHECKING:
    from imacs_tensorflow.adapter import TensorFlowAdapter


class TfExplainVanillaGradients(TfExplainMethod):
    """tf-explain's ``VanillaGradients.compute_gradients``: the signed input gradient.

    The raw map, not tf-explain's picture (which takes ``|gradient|``, sums channels and
    standardises). Its ``explain`` first drops a final activation layer
    (``get_score_model``); here the score is the adapter's ``target``, so for a model
    ending in a softmax choose ``target="log_probability"`` or load the model without its
    softmax. No parameters; ``batch_size`` images of one class per call.
    """

    name = "tf-explain-vanilla-gradients"
    citation = "Simonyan et al., ICLR workshop 2014, arXiv:1312.6034 (tf-explain)"
    builtin = "gradient"

    def __init__(self) -> None:
        pass

    def _explain(
        self, adapter: TensorFlowAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> tuple[np.ndarray, None]:
        from tf_explain.core.vanilla_gradients import VanillaGradients

        from imacs_tf_explain.gradient_maps import gradient_maps

        return gradient_maps(
            VanillaGradients.compute_gradients, adapter, images, targets, batch_size
        ), None
