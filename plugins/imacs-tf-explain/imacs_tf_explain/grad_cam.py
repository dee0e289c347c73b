"""tf-explain's GradCAM, upsampled to the image.

Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra. "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization". ICCV 2017. arXiv:1610.02391.
Implementation: ``tf_explain.core.GradCAM`` (``get_gradients_and_filters`` and
``generate_ponderated_output``).
"""

from __future__ import annotations

import difflib
import warnings
from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs_tf_explain.tf_explain_method import TfExplainMethod

if TYPE_CHECKING:
    from imacs_tensorflow.adapter import TensorFlowAdapter


class TfExplainGradCAM(TfExplainMethod):
    """tf-explain's Grad-CAM: a layer's maps weighted by their mean (guided) gradients.

    The ``(h, w)`` map of each image is resized to the image with ``cv2.resize``
    (bilinear), as tf-explain's own display does, and repeated across channels; no ReLU
    is applied (tf-explain applies none either).

    Two parts of tf-explain 0.3.1's GradCAM fail on Keras 3 and are replaced here:

    - ``infer_grad_cam_target_layer`` reads ``layer.output_shape``, which Keras 3 layers
      no longer have (``AttributeError``); the default layer is found the same way,
      the last layer with a 4-D output, from ``layer.output.shape``;
    - ``get_gradients_and_filters`` builds ``Model([model.inputs], [layer.output,
      model.output])``. Keras 3 accepts the nested input list with a warning, but a
      Keras 3 ``Sequential`` model has no ``model.output`` (``AttributeError``: "has
      never been called and thus has no defined output"), and a subclassed model has no
      ``model.inputs``. It is handed instead a functional model built from the adapter's
      graph of the user's model, ending in the adapter's target scores, fed the
      preprocessed images. Subclassed models and SavedModels have no such graph and are
      refused with ``MissingCapabilityError``: use the built-in ``grad-cam``.

    Parameters
    ----------
    layer_name:
        The layer, by its Keras name. Default: the last layer with a 4-D output.
    use_guided_grads:
        Keep only positive gradients where the activation is positive (tf-explain's
        default, ``True``); ``False`` gives the paper's plain gradients.

    Channel-last feature maps only: a ``channels_first`` model is refused. ``batch_size``
    images of one class per call.
    """

    name = "tf-explain-grad-cam"
    citation = "Selvaraju et al., ICCV 2017, arXiv:1610.02391 (tf-explain)"
    builtin = "grad-cam"

    def __init__(self, *, layer_name: str | None = None, use_guided_grads: bool = True):
        if layer_name is not None and not isinstance(layer_name, str):
            raise InvalidInputError(
                f"expected layer_name to be a Keras layer name or None; got {layer_name!r}"
            )
        self.layer_name = layer_name
        self.use_guided_grads = use_guided_grads

    def _explain(
        self, adapter: TensorFlowAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> tuple[np.ndarray, None]:
        import cv2
        from tf_explain.core.grad_cam import GradCAM

        from imacs_tf_explain.keras_bridge import class_chunks, graph_model, model_input

        if adapter.channels_first:
            raise InvalidInputError(
                "tf-explain-grad-cam averages gradients over the feature maps' first two "
                "axes, which assumes channel-last (N, h, w, D) layers; this model is "
                "channels_first: use the built-in 'grad-cam'"
            )
        model = graph_model(adapter, images, by=f"attribution method {self.name!r}")
        layer = self._layer(model)
        _, height, width, _ = images.shape
        maps = np.empty_like(images)
        for k, indices in class_chunks(targets, batch_size):
            with warnings.catch_warnings():
                # tf-explain passes [model.inputs], a nested list, where Keras 3 expects
                # the list itself; Keras warns on every call and goes on.
                warnings.filterwarnings("ignore", message="The structure of `inputs`")
                outputs, grads = GradCAM.get_gradients_and_filters(
                    model, model_input(adapter, images[indices]), layer, k, self.use_guided_grads
                )
            cams = GradCAM.generate_ponderated_output(outputs, grads)
            for i, cam in zip(indices, cams, strict=True):
                resized = cv2.resize(np.asarray(cam, np.float32), (width, height))
                maps[i] = resized[..., None]
        return maps, None

    def _layer(self, model: Any) -> str:
        layers = [layer for layer in model.layers if _output_rank(layer) is not None]
        if self.layer_name is None:
            # tf-explain's infer_grad_cam_target_layer, with Keras 3's output.shape
            for layer in reversed(layers):
                if _output_rank(layer) == 4:
                    return str(layer.name)
            raise InvalidInputError(
                "the model has no layer with a 4-D output (N, h, w, D) for Grad-CAM: pass "
                "layer_name, or use the built-in 'grad-cam'"
            )
        names = [str(layer.name) for layer in layers]
        if self.layer_name not in names:
            close = difflib.get_close_matches(self.layer_name, names, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InvalidInputError(
                f"the model has no layer {self.layer_name!r}; its layers are: "
                f"{', '.join(names)}.{hint}"
            )
        rank = _output_rank(model.get_layer(self.layer_name))
        if rank != 4:
            raise InvalidInputError(
                f"Grad-CAM needs a layer with a 4-D output (N, h, w, D); layer "
                f"{self.layer_name!r} outputs rank {rank}: choose a convolutional layer"
            )
        return self.layer_name


def _output_rank(layer: Any) -> int | None:
    try:
        return len(layer.output.shape)
    except (AttributeError, ValueError, TypeError):  # no single output
        return None
