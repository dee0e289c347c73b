"""IIA: Iterated Integrated Attributions (IIA2 and IIA3).

Barkan, Elisha, Asher, Eshel, Weill, Koenigstein. "Visual Explanations via Iterated
Integrated Attributions". ICCV 2023. Released code: github.com/iia-iccv23/iia.

IIA nests straight-line integrals: along the path from the input's reference to the
image, each point is carried to the next chosen representation, which is integrated in
turn from its own reference, and so on down to the last chosen layer ``L``, where the
integrand is ``q = v * d f_c / d v``. Every reference is the per-channel minimum of the
representation it starts a path to (over the spatial positions; for the input, over the
pixels). With ``n`` steps per integral, the map at ``L`` is the Riemann sum

    M = 1/n^b  sum_{i, j, ...} v_{ij...} * d f_c / d v_{ij...}

over the ``n^b`` innermost points, ``b`` the number of integrals, summed over channels
and upsampled bilinearly to the image. IIA2 integrates over the input and ``L`` (the last
spatial feature map, b = 2); IIA3 also over the layer before (b = 3).

The released CNN code (``heatmap_of_layer``) departs from this (anchors §2.2): its layer
reference equals the activation itself, so only the input path is integrated, from a
zero input in ``n + 1`` points including both ends, and the map is
``sum_j d f_c / d A_j * ReLU(A_j)``. ``reference="released"`` reproduces that for IIA2
(zero in pixel space, or ``input_baseline``; the released zero is in the model's
normalised space). The released three-layer variant is not reproduced.
"""

from __future__ import annotations

from typing import ClassVar

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
    previous_feature_map,
    resolve_layer,
)
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl

REFERENCES = ("channel-minimum", "released")


class _IteratedIntegratedAttributions(AttributionMethod):
    """The shared algorithm: the input's path, then one path per chosen layer."""

    citation = "Barkan et al., ICCV 2023"
    requires = frozenset({"injection"})
    n_layers: ClassVar[int] = 1

    layer: str | None
    inner_layer: str | None
    steps: int
    reference: str
    input_baseline: float | None

    def _check(self) -> None:
        for name in ("layer", "inner_layer"):
            value = getattr(self, name, None)
            if value is not None and not isinstance(value, str):
                raise InvalidInputError(
                    f"expected {name} to be a layer name (str) or None; got {type(value).__name__}"
                )
        if not isinstance(self.steps, int) or isinstance(self.steps, bool) or self.steps < 1:
            raise InvalidInputError(f"expected steps to be a positive int; got {self.steps!r}")
        if self.reference not in REFERENCES:
            raise InvalidInputError(
                f"unknown reference {self.reference!r}: expected one of {', '.join(REFERENCES)}"
            )
        if self.reference == "released" and self.n_layers > 1:
            raise InvalidInputError(
                f"{self.name} has no reference='released': the released code's three-layer "
                "variant is not reproduced; use iia2 with reference='released', or the "
                "paper's reference 'channel-minimum'"
            )
        if self.input_baseline is not None and not isinstance(self.input_baseline, int | float):
            raise InvalidInputError(
                f"expected input_baseline to be a number or None; got {self.input_baseline!r}"
            )

    def _layers(self, model: ModelAdapter, images: np.ndarray) -> list[str]:
        layer = resolve_layer(model, images, self.layer, self.name)
        if self.n_layers == 1:
            return [layer]
        inner = self.inner_layer or previous_feature_map(model, images, layer)
        return [inner, layer]

    def _input_reference(self, images: np.ndarray) -> np.ndarray:
        if self.input_baseline is not None:
            return np.full_like(images, self.input_baseline)
        if self.reference == "released":
            return np.zeros_like(images)
        return channel_minimum(images)

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        layers = self._layers(model, images)
        if self.reference == "released":
            maps = self._released(model, images, targets, layers[0], batch_size)
        else:
            maps = self._paper(model, images, targets, layers, batch_size)
        params = {**self.get_params(), "layer": layers[-1]}
        if len(layers) > 1:
            params["inner_layer"] = layers[0]
        return AttributionResult(maps, self.name, params)

    def _paper(
        self,
        model: ModelAdapter,
        images: np.ndarray,
        targets: np.ndarray,
        layers: list[str],
        batch_size: int,
    ) -> np.ndarray:
        n = self.steps
        points_per_image = n ** (len(layers) + 1)
        # upsampled once for all images: its fixed cost is then paid once per call
        layer_maps = []
        for group in image_groups(len(images), points_per_image, batch_size):
            x = images[group]
            points = path_points(self._input_reference(x), x, n)
            point_targets = np.repeat(targets[group], n)
            previous: str | None = None
            for layer in layers:
                u = model.layer_activations(
                    points, layer, from_layer=previous, batch_size=batch_size
                )
                check_feature_map(u, layer, self.name)
                points = path_points(channel_minimum(u), u, n)
                point_targets = np.repeat(point_targets, n)
                previous = layer
            _, g = model.injected_gradients(
                points, point_targets, layers[-1], batch_size=batch_size
            )
            # activation x gradient at every point, averaged over each image's points
            layer_map = mean_product(points, g, len(x))
            layer_maps.append(layer_map)
        return layer_maps_to_images(np.concatenate(layer_maps), images.shape[1:])

    def _released(
        self,
        model: ModelAdapter,
        images: np.ndarray,
        targets: np.ndarray,
        layer: str,
        batch_size: int,
    ) -> np.ndarray:
        n = self.steps
        # upsampled once for all images: its fixed cost is then paid once per call
        layer_maps = []
        for group in image_groups(len(images), n + 1, batch_size):
            x = images[group]
            baseline = self._input_reference(x)
            alphas = (np.arange(n + 1, dtype=np.float32) / n).reshape(1, n + 1, 1, 1, 1)
            points = (baseline[:, None] + alphas * (x - baseline)[:, None]).reshape(
                len(x) * (n + 1), *x.shape[1:]
            )
            a = model.layer_activations(points, layer, batch_size=batch_size)
            check_feature_map(a, layer, self.name)
            _, g = model.injected_gradients(
                a, np.repeat(targets[group], n + 1), layer, batch_size=batch_size
            )
            layer_map = (g * np.maximum(a, 0.0)).reshape(len(x), n + 1, *a.shape[1:]).sum(axis=1)
            layer_maps.append(layer_map)
        return layer_maps_to_images(np.concatenate(layer_maps), images.shape[1:])


class IIA2(_IteratedIntegratedAttributions):
    """Iterated Integrated Attributions over the input and the last feature map (IIA2).

    Parameters
    ----------
    layer:
        The last integrated layer, by the adapter's name. ``None`` (default): the
        adapter's last spatial feature map (the paper: ResNet-101's layer4).
    steps:
        ``n``, points per integral. Default 10 (the paper and the released code).
    reference:
        ``"channel-minimum"`` (default, the paper) or ``"released"`` (the released code;
        see the module docstring).
    input_baseline:
        A constant pixel value to start the input's path from instead of its per-channel
        minimum (``"released"``: default 0).

    Cost per image: ``n`` forward passes up to ``layer`` and ``n^2`` forward and backward
    passes of the network after it (``"released"``: ``n + 1`` of each), batched across
    images and steps.
    """

    name = "iia2"
    n_layers = 1

    def __init__(
        self,
        *,
        layer: str | None = None,
        steps: int = 10,
        reference: str = "channel-minimum",
        input_baseline: float | None = None,
    ):
        self.layer = layer
        self.steps = steps
        self.reference = reference
        self.input_baseline = input_baseline
        self._check()


class IIA3(_IteratedIntegratedAttributions):
    """Iterated Integrated Attributions over the input, a feature map and the last (IIA3).

    Parameters
    ----------
    layer:
        The last integrated layer. ``None`` (default): the adapter's last spatial map.
    inner_layer:
        The layer integrated before ``layer``. ``None`` (default): the nearest layer
        before it in ``model.layer_names()`` with a spatial output of another shape.
    steps:
        ``n``, points per integral. Default 10 (the paper).
    reference:
        ``"channel-minimum"`` only (the paper).
    input_baseline:
        A constant pixel value to start the input's path from instead of its per-channel
        minimum.

    Cost per image: ``n`` forward passes up to ``inner_layer``, ``n^2`` forward passes
    from ``inner_layer`` to ``layer``, and ``n^3`` forward and backward passes of the
    network after ``layer``, batched across images and steps.
    """

    name = "iia3"
    n_layers = 2

    def __init__(
        self,
        *,
        layer: str | None = None,
        inner_layer: str | None = None,
        steps: int = 10,
        reference: str = "channel-minimum",
        input_baseline: float | None = None,
    ):
        self.layer = layer
        self.inner_layer = inner_layer
        self.steps = steps
        self.reference = reference
        self.input_baseline = input_baseline
        self._check()


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(IIA2)
    register(IIA3)
