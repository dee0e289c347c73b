"""Captum's Integrated Gradients.

Sundararajan, Taly, Yan. "Axiomatic Attribution for Deep Networks". ICML 2017.
arXiv:1703.01365. Implementation: ``captum.attr.IntegratedGradients``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.parameters import check_choice, check_positive_int
from imacs_captum.baselines import check_baselines
from imacs_captum.captum_method import CaptumCall, CaptumMethod

if TYPE_CHECKING:
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores

#: Captum's quadrature rules (``captum.attr._utils.approximation_methods``)
QUADRATURES = (
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
    "gausslegendre",
)


class CaptumIntegratedGradients(CaptumMethod):
    """``captum.attr.IntegratedGradients`` on the adapter's model, in pixel space.

    Parameters are Captum's, with Captum's defaults.

    Parameters
    ----------
    n_steps:
        Points on the path from the baseline to the image (default 50).
    quadrature:
        Captum's ``method``: ``"gausslegendre"`` (default), ``"riemann_left"``,
        ``"riemann_right"``, ``"riemann_middle"`` or ``"riemann_trapezoid"``. Renamed
        because ``method`` names the attribution method in ``imacs.attribute``, as for
        the built-in ``integrated-gradients``.
    baselines:
        ``None`` (zero, Captum's default), a number, or an array in the images' layout,
        ``(H, W, C)`` or one per image ``(N, H, W, C)``.
    multiply_by_inputs:
        Captum's constructor flag: ``False`` gives the path-averaged gradient without the
        ``(x - baseline)`` factor.

    ``batch_size`` becomes Captum's ``internal_batch_size``: chunks of at most
    ``batch_size`` images, and as many path steps per call as fit. ``convergence_delta``
    is Captum's, one per image.
    """

    name = "captum-integrated-gradients"
    citation = "Sundararajan et al., ICML 2017, arXiv:1703.01365 (Captum)"
    builtin = "integrated-gradients"

    def __init__(
        self,
        *,
        n_steps: int = 50,
        quadrature: str = "gausslegendre",
        baselines: Any = None,
        multiply_by_inputs: bool = True,
    ):
        check_positive_int(n_steps, "n_steps")
        check_choice(quadrature, "quadrature", QUADRATURES)
        check_baselines(baselines)
        self.n_steps = n_steps
        self.quadrature = quadrature
        self.baselines = baselines
        self.multiply_by_inputs = multiply_by_inputs

    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        from captum.attr import IntegratedGradients

        return IntegratedGradients(forward, multiply_by_inputs=self.multiply_by_inputs)

    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        # Chunks hold at most batch_size images, so Captum's batching (batch_size // images
        # steps per call) never sends more than batch_size inputs.
        return {
            "baselines": call.baselines(self.baselines),
            "n_steps": int(self.n_steps),
            "method": self.quadrature,
            "internal_batch_size": call.batch_size,
        }
