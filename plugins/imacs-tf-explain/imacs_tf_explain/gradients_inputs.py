"""tf-explain's GradientsInputs: the input times the gradient of the target score.

Shrikumar, Greenside, Shcherbina, Kundaje. "Not Just a Black Box: Learning Important
Features Through Propagating Activation Differences". arXiv:1605.01713, 2016.
Implementation: ``tf_explain.core.GradientsInputs.compute_gradients``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from imacs_tf_explain.tf_explain_method import TfExplainMethod

if TYPE_CHECKING:
    from imacs_tensorflow.adapter import TensorFlowAdapter


class TfExplainGradientsInputs(TfExplainMethod):
    """tf-explain's ``GradientsInputs.compute_gradients``: pixels times their gradient.

    The input is the user's pixels, so the product is with those pixels. No parameters;
    ``batch_size`` images of one class per call.
    """

    name = "tf-explain-gradients-inputs"
    citation = "Shrikumar et al., arXiv:1605.01713 (tf-explain)"
    builtin = "gradient-times-input"

    def __init__(self) -> None:
        pass

    def _explain(
        self, adapter: TensorFlowAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> tuple[np.ndarray, None]:
        from tf_explain.core.gradients_inputs import GradientsInputs

        from imacs_tf_explain.gradient_maps import gradient_maps

        return gradient_maps(
            GradientsInputs.compute_gradients, adapter, images, targets, batch_size
        ), None
