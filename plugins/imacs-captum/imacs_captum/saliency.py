"""Captum's Saliency: the input gradient, by default its absolute value.

Simonyan, Vedaldi, Zisserman. "Deep Inside Convolutional Networks: Visualising Image
Classification Models and Saliency Maps". ICLR workshop 2014. arXiv:1312.6034.
Implementation: ``captum.attr.Saliency``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imacs_captum.captum_method import CaptumCall, CaptumMethod

if TYPE_CHECKING:
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores


class CaptumSaliency(CaptumMethod):
    """``captum.attr.Saliency`` on the adapter's model, in pixel space.

    Parameters
    ----------
    abs:
        Return ``|gradient|`` (Captum's default, ``True``) or the signed gradient. The
        name shadows Python's ``abs`` only as this attribute; it is Captum's.

    One Captum call per chunk of ``batch_size`` images.
    """

    name = "captum-saliency"
    citation = "Simonyan et al., ICLR workshop 2014, arXiv:1312.6034 (Captum)"
    builtin = "gradient"

    def __init__(self, *, abs: bool = True):
        self.abs = abs

    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        from captum.attr import Saliency

        return Saliency(forward)

    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        return {"abs": bool(self.abs)}
