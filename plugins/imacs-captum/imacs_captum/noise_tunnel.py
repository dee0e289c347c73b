"""Captum's NoiseTunnel: another Captum method averaged over noisy copies of the image.

Smilkov, Thorat, Kim, Viégas, Wattenberg. "SmoothGrad: removing noise by adding noise".
arXiv:1706.03825, 2017 (``smoothgrad``, ``smoothgrad_sq``); Adebayo, Gilmer, Goodfellow,
Kim. "Local Explanation Methods for Deep Neural Networks Lack Sensitivity to Parameter
Values". ICLR workshop 2018, arXiv:1810.03307 (``vargrad``). Implementation:
``captum.attr.NoiseTunnel``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs.parameters import check_choice, check_non_negative, check_positive_int, check_seed
from imacs_captum.captum_method import CaptumCall, CaptumMethod

if TYPE_CHECKING:
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores

NT_TYPES = ("smoothgrad", "smoothgrad_sq", "vargrad")


def wrappable_methods() -> dict[str, type[CaptumMethod]]:
    """The Captum wrappers NoiseTunnel can wrap: those whose maps are input-shaped."""
    from imacs_captum.deep_lift import CaptumDeepLift
    from imacs_captum.gradient_shap import CaptumGradientShap
    from imacs_captum.input_x_gradient import CaptumInputXGradient
    from imacs_captum.integrated_gradients import CaptumIntegratedGradients
    from imacs_captum.occlusion import CaptumOcclusion
    from imacs_captum.saliency import CaptumSaliency

    classes: list[type[CaptumMethod]] = [
        CaptumSaliency,
        CaptumInputXGradient,
        CaptumIntegratedGradients,
        CaptumDeepLift,
        CaptumGradientShap,
        CaptumOcclusion,
    ]
    return {cls.name: cls for cls in classes}


class CaptumNoiseTunnel(CaptumMethod):
    """``captum.attr.NoiseTunnel`` around another ``captum-*`` method, in pixel space.

    Parameters
    ----------
    attribution_method:
        The wrapped method's name: ``"captum-saliency"`` (default: SmoothGrad as the
        paper defines it, on Captum's absolute gradient), ``"captum-input-x-gradient"``,
        ``"captum-integrated-gradients"``, ``"captum-deep-lift"``,
        ``"captum-gradient-shap"`` or ``"captum-occlusion"``. Captum takes the method
        object; here its name.
    attribution_params:
        The wrapped method's parameters, as a dict (``{"n_steps": 20}``); checked by its
        constructor.
    nt_type:
        ``"smoothgrad"`` (mean, Captum's default), ``"smoothgrad_sq"`` (mean of squares) or
        ``"vargrad"`` (variance).
    nt_samples:
        Noisy copies per image (Captum's default 5).
    stdevs:
        Standard deviation of the Gaussian noise, in pixel units (Captum's default
        ``1.0``, which suits standardised inputs; for pixels in ``[0, 1]`` the paper's
        10-20 % of the range is ``0.1``-``0.2``).
    draw_baseline_from_distrib:
        Captum's flag: draw each sample's baseline from the wrapped method's
        ``baselines`` instead of pairing them with the images.
    seed:
        Seeds Captum's draws per image from ``seed`` and the image's content; the wrapped
        method's own ``seed`` is not used.

    Each image is attributed in its own Captum call, and Captum's
    ``nt_samples_batch_size`` is fixed at 1: Captum draws each partition's noise in one
    go, so any partition that followed ``batch_size`` would make the noise, and the map,
    depend on it. ``batch_size`` then bounds the wrapped method's own batching (its
    steps, perturbations), and every call holds at most ``batch_size`` inputs except
    where the wrapped method cannot split (two for DeepLift, ``n_samples`` for
    GradientShap). ``convergence_delta``, when the wrapped method has one, is its mean
    over the image's noisy copies.
    """

    name = "captum-noise-tunnel"
    citation = "Smilkov et al., arXiv:1706.03825; Adebayo et al., arXiv:1810.03307 (Captum)"
    builtin = "smoothgrad"
    random = True
    #: 2: each image's draws are seeded by its content, no longer by its place in the call
    version = "2"

    def __init__(
        self,
        *,
        attribution_method: str = "captum-saliency",
        attribution_params: dict[str, Any] | None = None,
        nt_type: str = "smoothgrad",
        nt_samples: int = 5,
        stdevs: float = 1.0,
        draw_baseline_from_distrib: bool = False,
        seed: int = 0,
    ):
        methods = wrappable_methods()
        if attribution_method not in methods:
            raise InvalidInputError(
                f"captum-noise-tunnel cannot wrap {attribution_method!r}: expected one of "
                f"{', '.join(methods)}"
            )
        if attribution_params is not None and not isinstance(attribution_params, dict):
            raise InvalidInputError(
                f"expected attribution_params to be a dict of the wrapped method's "
                f"parameters; got {type(attribution_params).__name__}"
            )
        cls = methods[attribution_method]
        params = dict(attribution_params or {})
        unknown = sorted(set(params) - set(cls.param_names()))
        if unknown:
            raise InvalidInputError(
                f"{attribution_method} does not take parameter(s) {', '.join(unknown)}; it "
                f"takes: {', '.join(cls.param_names()) or 'no parameters'}"
            )
        check_choice(nt_type, "nt_type", NT_TYPES)
        check_positive_int(nt_samples, "nt_samples")
        check_non_negative(stdevs, "stdevs")
        check_seed(seed)
        self.attribution_method = attribution_method
        self.attribution_params = attribution_params
        self.nt_type = nt_type
        self.nt_samples = nt_samples
        self.stdevs = stdevs
        self.draw_baseline_from_distrib = draw_baseline_from_distrib
        self.seed = seed
        self._inner = cls(**params)
        self.gradient = self._inner.gradient

    def inputs_per_image(self) -> int:
        return self._inner.inputs_per_image()

    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        from captum.attr import NoiseTunnel

        for capability in self._inner.requires:
            adapter.require(capability, by=f"{self.name} around {self.attribution_method}")
        return NoiseTunnel(self._inner.captum_attribution(forward, adapter, images))

    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        # A call holds one image, so the wrapped method's batching, planned for one input
        # (nt_samples_batch_size=1), keeps each model call within batch_size.
        return {
            **self._inner.captum_arguments(call),
            "nt_type": self.nt_type,
            "nt_samples": int(self.nt_samples),
            "nt_samples_batch_size": 1,
            "stdevs": float(self.stdevs),
            "draw_baseline_from_distrib": bool(self.draw_baseline_from_distrib),
        }
