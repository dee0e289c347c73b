"""imacs-tf-explain: tf-explain's attribution methods for Keras 3 models in imacs.

Installing this package registers these attribution methods, each calling tf-explain
0.3.1's computation helpers (not its ``explain``, which returns a picture grid) and
returning raw maps ``(N, H, W, C)``:

==================================== ======================================================
``tf-explain-vanilla-gradients``     ``VanillaGradients.compute_gradients``
``tf-explain-gradients-inputs``      ``GradientsInputs.compute_gradients``
``tf-explain-integrated-gradients``  ``IntegratedGradients`` (times ``x - 0``, see there)
``tf-explain-smoothgrad``            ``SmoothGrad`` (the gradient of log p, see there)
``tf-explain-occlusion-sensitivity`` ``OcclusionSensitivity.get_sensitivity_map``
``tf-explain-grad-cam``              ``GradCAM``, with its Keras-3-broken parts replaced
==================================== ======================================================

::

    import imacs

    model = imacs.load_model(keras_model, preprocessing={"scale": 1 / 255})
    result = imacs.attribute(model, images, targets, method="tf-explain-integrated-gradients")

They need a model loaded through imacs-tensorflow. tf-explain is handed a Keras model
from the user's pixels to the adapter's target scores, with the adapter's preprocessing
inside, so its maps are with respect to the same pixels, and of the same score, as the
built-in methods' maps.

tf-explain 0.3.1 is unmaintained and was written for Keras 2. On Keras 3, checked on
functional, Sequential and subclassed models: the gradient helpers, Integrated Gradients,
SmoothGrad and occlusion sensitivity work; GradCAM's layer inference (``output_shape``)
and its use of ``model.output`` on Sequential models fail, and are replaced (see
:class:`~imacs_tf_explain.grad_cam.TfExplainGradCAM`). ``ExtractActivations`` works on
Keras 3 but is not an attribution method (it returns a layer's activations, with no
target): use ``adapter.embed(images, layer=...)``.

imacs imports every installed plugin when it starts, so neither this module nor the
method modules import TensorFlow or tf-explain at import time.
"""

from __future__ import annotations

from imacs.hookspecs import Register, hookimpl

__all__ = ["register_attribution_methods"]


@hookimpl
def register_attribution_methods(register: Register) -> None:
    """Register the ``tf-explain-*`` attribution methods."""
    from imacs_tf_explain.grad_cam import TfExplainGradCAM
    from imacs_tf_explain.gradients_inputs import TfExplainGradientsInputs
    from imacs_tf_explain.integrated_gradients import TfExplainIntegratedGradients
    from imacs_tf_explain.occlusion_sensitivity import TfExplainOcclusionSensitivity
    from imacs_tf_explain.smoothgrad import TfExplainSmoothGrad
    from imacs_tf_explain.vanilla_gradients import TfExplainVanillaGradients

    for cls in (
        TfExplainVanillaGradients,
        TfExplainGradientsInputs,
        TfExplainIntegratedGradients,
        TfExplainSmoothGrad,
        TfExplainOcclusionSensitivity,
        TfExplainGradCAM,
    ):
        register(cls)
