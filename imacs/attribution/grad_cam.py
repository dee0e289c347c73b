"""Grad-CAM: gradient-weighted class activation maps.

Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra. "Grad-CAM: Visual Explanations from Deep
Networks via Gradient-based Localization". ICCV 2017. arXiv:1610.02391.

For a convolutional layer with activations ``A_k`` (``k`` over its ``D`` channels), the
weight of channel ``k`` is the spatial mean of the target score's gradient with respect to
``A_k``, and the map is ``ReLU(sum_k w_k A_k)`` at the layer's resolution, upsampled to the
image's (bilinear, as in the paper). The operations and their order are Captum's
``LayerGradCam`` followed by ``LayerAttribution.interpolate``, which give the same numbers
on the same layer.
"""

from __future__ import annotations

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl

INTERPOLATE_MODES = ("bilinear", "nearest")


def _nearest_matrix(n_out: int, n_in: int) -> np.ndarray:
    # torch's legacy "nearest": source floor(dst * in / out), computed in float32
    scale = np.float32(n_in / n_out)
    source = np.floor(np.arange(n_out, dtype=np.float32) * scale).astype(np.int64)
    matrix = np.zeros((n_out, n_in))
    matrix[np.arange(n_out), np.minimum(source, n_in - 1)] = 1.0
    return matrix


def _bilinear_matrix(n_out: int, n_in: int) -> np.ndarray:
    # torch's align_corners=False: source (dst + 0.5) * in / out - 0.5, clamped at 0
    source = np.maximum((np.arange(n_out) + 0.5) * (n_in / n_out) - 0.5, 0.0)
    low = np.minimum(np.floor(source).astype(np.int64), n_in - 1)
    high = np.minimum(low + 1, n_in - 1)
    weight_high = source - low
    matrix = np.zeros((n_out, n_in))
    rows = np.arange(n_out)
    np.add.at(matrix, (rows, low), 1.0 - weight_high)
    np.add.at(matrix, (rows, high), weight_high)
    return matrix


def interpolate_maps(maps: np.ndarray, size: tuple[int, int], mode: str = "bilinear") -> np.ndarray:
    """Resize maps ``(N, h, w)`` to ``(N, *size)`` as ``torch.nn.functional.interpolate``.

    ``mode="bilinear"`` (``align_corners=False``, no antialiasing) or ``"nearest"``
    (PyTorch's legacy nearest), which is what Captum's ``LayerAttribution.interpolate``
    calls. Both are separable, so they are two small matrix products per map.
    """
    if mode not in INTERPOLATE_MODES:
        raise InvalidInputError(
            f"unknown interpolate_mode {mode!r}: expected one of {', '.join(INTERPOLATE_MODES)}"
        )
    make = _bilinear_matrix if mode == "bilinear" else _nearest_matrix
    rows = make(size[0], maps.shape[1])
    cols = make(size[1], maps.shape[2])
    return np.asarray(rows @ maps @ cols.T)


class GradCAM(AttributionMethod):
    """Grad-CAM on one convolutional layer, upsampled to the image and repeated over channels.

    Parameters
    ----------
    layer:
        The layer whose activations are weighted, by the adapter's name for it
        (``model.layer_names()``). ``None`` (default): the adapter's default feature layer,
        the last layer with a spatial output, which is where the paper takes Grad-CAM (the
        last convolutional layer). Adapters that cannot say which layer that is need
        ``layer=``.
    relu_attributions:
        Apply the ReLU of the paper, keeping only regions that raise the target score.
        Default True (the paper); Captum's ``LayerGradCam`` defaults to False.
    interpolate_mode:
        ``"bilinear"`` (default, the paper's upsampling) or ``"nearest"`` (Captum's
        ``LayerAttribution.interpolate`` default), both as ``torch.nn.functional.interpolate``
        with ``align_corners=False``.

    The map is not normalised (PAIR saliency's ``GradCam`` divides by its maximum before
    resizing); it is constant over the image's channels.
    """

    name = "grad-cam"
    citation = "Selvaraju et al., ICCV 2017, arXiv:1610.02391"
    requires = frozenset({"layers"})

    def __init__(
        self,
        *,
        layer: str | None = None,
        relu_attributions: bool = True,
        interpolate_mode: str = "bilinear",
    ):
        if layer is not None and not isinstance(layer, str):
            raise InvalidInputError(
                f"expected layer to be a layer name (str) or None; got {type(layer).__name__}"
            )
        if interpolate_mode not in INTERPOLATE_MODES:
            raise InvalidInputError(
                f"unknown interpolate_mode {interpolate_mode!r}: expected one of "
                f"{', '.join(INTERPOLATE_MODES)}"
            )
        self.layer = layer
        self.relu_attributions = relu_attributions
        self.interpolate_mode = interpolate_mode

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        layer = self.layer if self.layer is not None else model.default_layer(images[:1])
        if layer is None:
            raise InvalidInputError(
                f"grad-cam needs layer=: adapter {model.name!r} does not say which layer is "
                "its last spatial feature map; pick one of model.layer_names(), usually the "
                "last convolutional layer"
            )
        activations, gradients = model.layer_gradients(
            images, targets, layer, batch_size=batch_size
        )
        if activations.ndim != 4 or gradients.shape != activations.shape:
            raise InvalidInputError(
                f"grad-cam needs a layer with a spatial output (N, h, w, channels); layer "
                f"{layer!r} gives activations of shape {activations.shape}: pick a "
                "convolutional layer"
            )
        weights = gradients.astype(np.float64).mean(axis=(1, 2), keepdims=True)
        cam = (weights * activations).sum(axis=-1)
        if self.relu_attributions:
            cam = np.maximum(cam, 0.0)
        upsampled = interpolate_maps(cam, images.shape[1:3], self.interpolate_mode)
        maps = np.repeat(upsampled[..., None].astype(np.float32), images.shape[-1], axis=-1)
        params = {**self.get_params(), "layer": layer}
        return AttributionResult(maps, self.name, params)


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(GradCAM)
