"""Captum's LayerGradCam, upsampled to the image.

Selvaraju, Cogswell, Das, Vedantam, Parikh, Batra. "Grad-CAM: Visual Explanations from
Deep Networks via Gradient-based Localization". ICCV 2017. arXiv:1610.02391.
Implementation: ``captum.attr.LayerGradCam`` and ``LayerAttribution.interpolate``.
"""

from __future__ import annotations

import difflib
from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.errors import InvalidInputError
from imacs.parameters import check_choice
from imacs_captum.captum_method import CaptumCall, CaptumMethod

if TYPE_CHECKING:
    import torch
    from imacs_torch.adapter import TorchAdapter

    from imacs_captum.torch_bridge import PixelScores

#: ``torch.nn.functional.interpolate`` modes for 2-D maps
INTERPOLATE_MODES = ("nearest", "nearest-exact", "bilinear", "bicubic", "area")


class CaptumLayerGradCam(CaptumMethod):
    """``captum.attr.LayerGradCam`` on one layer of the adapter's model.

    The layer's activations ``A`` (``(N, D, h, w)``) are weighted by the spatial mean of
    the target score's gradient with respect to them and summed over ``D``; the ``(h, w)``
    map is upsampled to the image by ``LayerAttribution.interpolate`` and repeated across
    the image's channels, so every channel holds the same map.

    Parameters
    ----------
    layer:
        The layer's name, as ``adapter.layer_names()`` lists it (``"layer4"``,
        ``"features.28"``). Default: the adapter's last layer with a spatial feature map
        (``adapter.default_layer``), the last convolutional layer the paper uses.
    relu_attributions:
        Apply a ReLU to the map, as the paper does. Captum's default is ``False`` (signed
        maps), and so is ours.
    attribute_to_layer_input:
        Weight the layer's input instead of its output (Captum's flag, default ``False``).
    interpolate_mode:
        How the map is upsampled: ``"nearest"`` (Captum's default), ``"nearest-exact"``,
        ``"bilinear"``, ``"bicubic"`` or ``"area"``.

    One Captum call per chunk of ``batch_size`` images.
    """

    name = "captum-layer-grad-cam"
    citation = "Selvaraju et al., ICCV 2017, arXiv:1610.02391 (Captum)"
    builtin = "grad-cam"
    requires = frozenset({"layers"})

    def __init__(
        self,
        *,
        layer: str | None = None,
        relu_attributions: bool = False,
        attribute_to_layer_input: bool = False,
        interpolate_mode: str = "nearest",
    ):
        if layer is not None and not isinstance(layer, str):
            raise InvalidInputError(
                f"expected layer to be a layer name (str) or None; got {layer!r}: pass the "
                "name adapter.layer_names() lists"
            )
        check_choice(interpolate_mode, "interpolate_mode", INTERPOLATE_MODES)
        self.layer = layer
        self.relu_attributions = relu_attributions
        self.attribute_to_layer_input = attribute_to_layer_input
        self.interpolate_mode = interpolate_mode

    def captum_attribution(
        self, forward: PixelScores, adapter: TorchAdapter, images: np.ndarray
    ) -> Any:
        from captum.attr import LayerGradCam

        name = self.layer if self.layer is not None else adapter.default_layer(images)
        modules = dict(adapter.model.named_modules())
        if name not in modules or name == "":
            names = adapter.layer_names()
            close = difflib.get_close_matches(name, names, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InvalidInputError(
                f"the model has no layer {name!r}; adapter.layer_names() lists its "
                f"{len(names)} layers.{hint}"
            )
        return LayerGradCam(forward, modules[name])

    def captum_arguments(self, call: CaptumCall) -> dict[str, Any]:
        return {
            "relu_attributions": bool(self.relu_attributions),
            "attribute_to_layer_input": bool(self.attribute_to_layer_input),
        }

    def finish(self, attributions: torch.Tensor, call: CaptumCall) -> torch.Tensor:
        from captum.attr import LayerAttribution

        _, height, width, channels = call.images.shape
        if attributions.ndim != 4:
            raise InvalidInputError(
                f"Grad-CAM needs a layer with a spatial output (N, D, h, w); layer "
                f"{self.layer!r} gives maps of shape {tuple(attributions.shape)}: choose a "
                "convolutional layer (adapter.layer_names() lists them), or leave layer out"
            )
        maps = LayerAttribution.interpolate(
            attributions, (height, width), interpolate_mode=self.interpolate_mode
        )
        return maps.expand(-1, channels, -1, -1)
