"""Captum's DeepLift (the Rescale rule).

Shrikumar, Greenside, Kundaje. "Learning Important Features Through Propagating
Activation Differences". ICML 2017. arXiv:1704.02685. Implementation:
``captum.attr.DeepLift``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.parameters import check_non_negative
from imacs_captum.baselines import check_baselines
from imacs_captum.captum_method import CaptumCall, CaptumMethod

if TYPE_CHECKING:
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores


class CaptumDeepLift(CaptumMethod):
    """``captum.attr.DeepLift`` on the adapter's model, in pixel space.

    Captum hooks the module's non-linear layers (``nn.ReLU``, ``nn.Sigmoid``,
    ``nn.Tanh``, ``nn.Softmax``, max-pooling, ...) and replaces their gradients by DeepLift
    multipliers; functional activations (``F.relu`` inside ``forward``) and layers it does
    not know are differentiated plainly, and a layer object used twice is an error. The
    module hooks need the ``layers`` capability, which TorchScript modules lack.

    Parameters
    ----------
    baselines:
        ``None`` (zero, Captum's default), a number, or an array in the images' layout,
        ``(H, W, C)`` or one per image ``(N, H, W, C)``.
    multiply_by_inputs:
        Captum's flag: ``False`` gives the multipliers without the ``(x - baseline)``
        factor.
    eps:
        Captum's threshold below which a layer's input difference counts as zero
        (default ``1e-10``).

    Captum runs images and baselines through the model in one call, so a call holds two
    inputs per image: chunks of ``batch_size // 2`` images. With ``batch_size=1`` a call
    still holds 2 inputs, the fewest DeepLift can send. ``convergence_delta`` is
    Captum's, one per image.
    """

    name = "captum-deep-lift"
    citation = "Shrikumar et al., ICML 2017, arXiv:1704.02685 (Captum)"
    requires = frozenset({"layers"})

    def __init__(
        self, *, baselines: Any = None, multiply_by_inputs: bool = True, eps: float = 1e-10
    ):
        check_baselines(baselines)
        check_non_negative(eps, "eps")
        self.baselines = baselines
        self.multiply_by_inputs = multiply_by_inputs
        self.eps = eps

    def inputs_per_image(self) -> int:
        return 2  # the image and its baseline, concatenated by Captum

    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        from captum.attr import DeepLift

        return DeepLift(forward, multiply_by_inputs=self.multiply_by_inputs, eps=self.eps)

    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        return {"baselines": call.baselines(self.baselines)}
