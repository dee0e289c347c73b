"""imacs-ltx: LTX, Learning to Explain (Barkan et al., ICDM 2023, arXiv:2310.16584).

Installing this package registers the attribution method ``ltx``: a small PyTorch
explainer network that draws a mask in [0, 1], pre-trained on a dataset and fine-tuned on
each image against the explained model's prediction on the masked image. The explained
model is reached only through the adapter contract (``predict`` and ``output_vjp``), so
PyTorch and Keras models are explained alike; PyTorch is needed for the explainer only.

::

    import imacs

    result = imacs.attribute(model, images, targets, method="ltx")

imacs imports every installed plugin when it starts, so this module does not import
torch: :mod:`imacs_ltx.ltx` does, when the method is registered.
"""

from __future__ import annotations

from imacs.hookspecs import Register, hookimpl

__all__ = ["register_attribution_methods"]


@hookimpl
def register_attribution_methods(register: Register) -> None:
    """Register the ``ltx`` attribution method."""
    from imacs_ltx.ltx import LTX

    register(LTX)
