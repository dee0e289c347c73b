"""Captum's GradientShap (expected gradients with noise).

Lundberg, Lee. "A Unified Approach to Interpreting Model Predictions". NeurIPS 2017.
arXiv:1705.07874. Implementation: ``captum.attr.GradientShap``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.parameters import check_non_negative, check_positive_int, check_seed
from imacs_captum.baselines import baseline_distribution, check_baselines
from imacs_captum.captum_method import CaptumCall, CaptumMethod

if TYPE_CHECKING:
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores


class CaptumGradientShap(CaptumMethod):
    """``captum.attr.GradientShap`` on the adapter's model, in pixel space.

    For each of ``n_samples`` samples Captum adds Gaussian noise of ``stdevs`` to the
    image, draws a baseline from ``baselines`` and a point uniformly on the line between
    them, and multiplies the gradient there by ``(noisy image - baseline)``; the map is
    the mean over samples.

    Parameters
    ----------
    baselines:
        The distribution baselines are drawn from: a number, one image ``(H, W, C)`` or
        ``B`` images ``(B, H, W, C)``, in the images' pixels and layout. Captum has no
        default; ours, ``0.0`` (one black image), makes the map an unbiased estimate of
        Integrated Gradients from zero, Captum's default baseline elsewhere.
    n_samples:
        Samples per image (Captum's default 5).
    stdevs:
        Standard deviation of the noise added to the image, in pixel units (Captum's
        default ``0.0``: none).
    multiply_by_inputs:
        Captum's flag: ``False`` leaves out the ``(image - baseline)`` factor.
    seed:
        Seeds Captum's draws (torch's and NumPy's global generators, restored after) per
        image from ``(seed, index of the image)``.

    Each image is attributed in its own Captum call, so that its draws do not depend on
    ``batch_size``. Captum evaluates all ``n_samples`` samples of an image in one model
    call and has no argument to split them (captum issue #1350), so ``batch_size`` is
    honoured only when it is at least ``n_samples``; a call holds ``n_samples`` inputs
    otherwise. ``convergence_delta`` is Captum's per-sample delta averaged over the
    image's samples: ``sum(map) - (F(x) - mean F(baseline))`` for the drawn baselines
    (with ``stdevs > 0``, of the noisy images).
    """

    name = "captum-gradient-shap"
    citation = "Lundberg & Lee, NeurIPS 2017, arXiv:1705.07874 (Captum)"
    random = True
    #: 2: each image's draws are seeded by its content, no longer by its place in the call
    version = "2"

    def __init__(
        self,
        *,
        baselines: Any = 0.0,
        n_samples: int = 5,
        stdevs: float = 0.0,
        multiply_by_inputs: bool = True,
        seed: int = 0,
    ):
        check_baselines(baselines)
        check_positive_int(n_samples, "n_samples")
        check_non_negative(stdevs, "stdevs")
        check_seed(seed)
        self.baselines = baselines
        self.n_samples = n_samples
        self.stdevs = stdevs
        self.multiply_by_inputs = multiply_by_inputs
        self.seed = seed

    def inputs_per_image(self) -> int:
        return int(self.n_samples)

    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        from captum.attr import GradientShap

        return GradientShap(forward, multiply_by_inputs=self.multiply_by_inputs)

    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        return {
            "baselines": call.tensor(baseline_distribution(self.baselines, call.all_images)),
            "n_samples": int(self.n_samples),
            "stdevs": float(self.stdevs),
        }
