"""Captum's Input X Gradient: the input times its gradient.

Shrikumar, Greenside, Shcherbina, Kundaje. "Not Just a Black Box: Learning Important
Features Through Propagating Activation Differences". arXiv:1605.01713, 2016.
Implementation: ``captum.attr.InputXGradient``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imacs_captum.captum_method import CaptumCall, CaptumMethod

if TYPE_CHECKING:
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores


class CaptumInputXGradient(CaptumMethod):
    """``captum.attr.InputXGradient`` on the adapter's model, in pixel space.

    No parameters. The input is the user's pixels, so the product is pixels times the
    gradient with respect to them. One Captum call per chunk of ``batch_size`` images.
    """

    name = "captum-input-x-gradient"
    citation = "Shrikumar et al., arXiv:1605.01713 (Captum)"
    builtin = "gradient-times-input"

    def __init__(self) -> None:
        pass

    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        from captum.attr import InputXGradient

        return InputXGradient(forward)

    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        return {}
