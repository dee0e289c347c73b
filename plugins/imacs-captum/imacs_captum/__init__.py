"""imacs-captum: Captum's attribution methods for PyTorch models in imacs.

Installing this package registers these attribution methods, each a thin wrapper that
hands the work to Captum (``captum.attr``) with Captum's parameter names and defaults:

=============================== ==========================================
``captum-integrated-gradients`` ``IntegratedGradients``
``captum-saliency``             ``Saliency``
``captum-input-x-gradient``     ``InputXGradient``
``captum-deep-lift``            ``DeepLift``
``captum-gradient-shap``        ``GradientShap``
``captum-occlusion``            ``Occlusion``
``captum-layer-grad-cam``       ``LayerGradCam``, upsampled to the image
``captum-noise-tunnel``         ``NoiseTunnel`` around one of the above
=============================== ==========================================

::

    import imacs

    model = imacs.load_model(torch_module, preprocessing={"mean": ..., "std": ...})
    result = imacs.attribute(model, images, targets, method="captum-integrated-gradients",
                             n_steps=32)

They need a PyTorch model loaded through imacs-torch. Captum's forward function is the
adapter's module behind its preprocessing and target function, taking the user's pixels,
so Captum's maps are with respect to the same pixels, and of the same score, as the
built-in methods' maps; they come back channel-last like the images.

imacs imports every installed plugin when it starts, so neither this module nor the
method modules import torch or Captum at import time.
"""

from __future__ import annotations

from imacs.hookspecs import Register, hookimpl

__all__ = ["register_attribution_methods"]


@hookimpl
def register_attribution_methods(register: Register) -> None:
    """Register the ``captum-*`` attribution methods."""
    from imacs_captum.deep_lift import CaptumDeepLift
    from imacs_captum.gradient_shap import CaptumGradientShap
    from imacs_captum.input_x_gradient import CaptumInputXGradient
    from imacs_captum.integrated_gradients import CaptumIntegratedGradients
    from imacs_captum.layer_grad_cam import CaptumLayerGradCam
    from imacs_captum.noise_tunnel import CaptumNoiseTunnel
    from imacs_captum.occlusion import CaptumOcclusion
    from imacs_captum.saliency import CaptumSaliency

    for cls in (
        CaptumIntegratedGradients,
        CaptumSaliency,
        CaptumInputXGradient,
        CaptumDeepLift,
        CaptumGradientShap,
        CaptumOcclusion,
        CaptumLayerGradCam,
        CaptumNoiseTunnel,
    ):
        register(cls)
