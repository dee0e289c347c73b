"""DIX: Deep Integrated Explanations.

Barkan, Elisha, Asher, Eshel, Weill, Koenigstein. "Deep Integrated Explanations".
CIKM 2023, doi:10.1145/3583780.3614836. Released code: github.com/dix-cikm23/dix.

DIX integrates a layer's activations coupled with their gradients. At a layer ``L`` with
activations ``u`` (channel-last ``(h, w, D)``), the reference ``r`` is each channel's
minimum over the positions, and the map is the Riemann sum

    M = 1/n sum_{k=1..n} v_k * d f_c / d v_k,    v_k = r + (k/n) (u - r),

with ``f_c`` the target score of the network run on from ``v_k`` at ``L``. ``M`` is
summed over channels and upsampled bilinearly to the image.

The released code departs from this (anchors §2.1): its reference is a minimum over a
singleton axis, so every ``v_k`` equals ``u``, and its integrand is
``ReLU(grad) * ReLU(v)`` summed over ``n + 1`` points. ``reference="released"``
computes that layer-``L`` term (``H1'``), which equals ``(n + 1) ReLU(g) ReLU(u)``; the
released DIX2 also multiplies in a term of the layer before, resampled trilinearly over
channels to a ResNet-101 shape, which is not reproduced.
"""

from __future__ import annotations

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.attribution.layer_paths import (
    channel_minimum,
    check_feature_map,
    image_groups,
    layer_maps_to_images,
    mean_product,
    path_points,
    resolve_layer,
)
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl

REFERENCES = ("channel-minimum", "released")


class DIX(AttributionMethod):
    """Deep Integrated Explanations at one layer, upsampled to the image.

    Parameters
    ----------
    layer:
        The layer integrated over, by the adapter's name for it. ``None`` (default): the
        adapter's last spatial feature map (the paper's ResNet-101 setting: layer4).
    steps:
        ``n``, points per path. Default 10 (the paper; the released CNN script uses 4).
    reference:
        ``"channel-minimum"`` (default, the paper) or ``"released"`` (the released code's
        degenerate reference and ``ReLU(g) ReLU(v)`` integrand; see the module docstring).

    Cost per image: one forward pass up to ``layer`` and ``n`` forward and backward passes
    of the network after it (``"released"``: one, since its ``n + 1`` points coincide),
    batched across images and steps.
    """

    name = "dix"
    citation = "Barkan et al., CIKM 2023, doi:10.1145/3583780.3614836"
    requires = frozenset({"injection"})

    def __init__(
        self, *, layer: str | None = None, steps: int = 10, reference: str = "channel-minimum"
    ):
        if layer is not None and not isinstance(layer, str):
            raise InvalidInputError(
                f"expected layer to be a layer name (str) or None; got {type(layer).__name__}"
            )
        if not isinstance(steps, int) or isinstance(steps, bool) or steps < 1:
            raise InvalidInputError(f"expected steps to be a positive int; got {steps!r}")
        if reference not in REFERENCES:
            raise InvalidInputError(
                f"unknown reference {reference!r}: expected one of {', '.join(REFERENCES)}"
            )
        self.layer = layer
        self.steps = steps
        self.reference = reference

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        layer = resolve_layer(model, images, self.layer, self.name)
        released = self.reference == "released"
        n = self.steps
        # upsampled once for all images: its fixed cost is then paid once per call
        layer_maps = []
        for group in image_groups(len(images), 1 if released else n, batch_size):
            u = model.layer_activations(images[group], layer, batch_size=batch_size)
            check_feature_map(u, layer, self.name)
            if released:
                _, g = model.injected_gradients(u, targets[group], layer, batch_size=batch_size)
                layer_map = (n + 1) * np.maximum(g, 0.0) * np.maximum(u, 0.0)
            else:
                v = path_points(channel_minimum(u), u, n)
                _, g = model.injected_gradients(
                    v, np.repeat(targets[group], n), layer, batch_size=batch_size
                )
                layer_map = mean_product(v, g, len(u))
            layer_maps.append(layer_map)
        params = {**self.get_params(), "layer": layer}
        maps = layer_maps_to_images(np.concatenate(layer_maps), images.shape[1:])
        return AttributionResult(maps, self.name, params)


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(DIX)
