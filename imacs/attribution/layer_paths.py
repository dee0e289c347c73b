"""Straight-line paths through a network's inner representations, shared by DIX and IIA.

Barkan et al.'s methods integrate ``v * d f / d v`` along straight lines from a reference
``r`` to a representation ``u`` (the input, or a layer's activations), with the
reference the **per-channel minimum** of ``u`` over its spatial positions. Each path has
``steps`` points ``r + (k / steps) (u - r)``, ``k = 1..steps`` (the right Riemann sum,
as Integrated Gradients is approximated). Paths are laid out sample-major: the points of
one representation are contiguous, so nesting paths keeps each image's points together.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.grad_cam import interpolate_maps
from imacs.errors import InvalidInputError


def channel_minimum(representations: np.ndarray) -> np.ndarray:
    """Each channel's minimum over the spatial positions, broadcast back: ``(M, h, w, D)``."""
    m, h, w, d = representations.shape
    # halving the positions with elementwise minima runs on long contiguous rows, 5-10x
    # faster than numpy's reduction over the middle axes, and a minimum is exact in any order
    rows = representations.reshape(m, h * w, d)
    while rows.shape[1] > 1:
        half = rows.shape[1] // 2
        lower = np.minimum(rows[:, :half], rows[:, half : 2 * half])
        if rows.shape[1] % 2:
            np.minimum(lower[:, :1], rows[:, -1:], out=lower[:, :1])
        rows = lower
    return np.broadcast_to(rows.reshape(m, 1, 1, d), representations.shape)


def path_points(reference: np.ndarray, end: np.ndarray, steps: int) -> np.ndarray:
    """``steps`` points from ``reference`` to ``end`` per row: ``(M * steps, ...)`` float32.

    Row ``m * steps + (k - 1)`` is ``reference[m] + (k / steps) (end[m] - reference[m])``;
    ``reference`` may be anything that broadcasts to ``end``'s shape.
    """
    m = len(end)
    # rows flattened, so that every operation below runs over long contiguous rows
    start = np.broadcast_to(np.asarray(reference, dtype=np.float32), end.shape).reshape(m, 1, -1)
    difference = np.asarray(end, dtype=np.float32).reshape(m, 1, -1) - start
    alphas = (np.arange(1, steps + 1, dtype=np.float32) / steps).reshape(1, steps, 1)
    # one array of all the points, written twice, instead of two temporaries of its size
    points = np.multiply(
        alphas, difference, out=np.empty((m, steps, difference.shape[2]), dtype=np.float32)
    )
    points += start
    return points.reshape(m * steps, *end.shape[1:])


def mean_product(points: np.ndarray, gradients: np.ndarray, n_images: int) -> np.ndarray:
    """``points * gradients`` averaged over each image's points: ``(n_images, ...)``.

    The points of one image are contiguous rows (sample-major, as :func:`path_points`
    lays them out). One pass that neither writes the product nor changes either array;
    its sums are numpy's own for a mean over that axis, so the values are the same.
    """
    per_image = len(points) // n_images
    product_sum = np.einsum(
        "mkf,mkf->mf",
        points.reshape(n_images, per_image, -1),
        gradients.reshape(n_images, per_image, -1),
    )
    product_sum /= np.float32(per_image)
    return product_sum.reshape(n_images, *points.shape[1:])


def check_feature_map(activations: np.ndarray, layer: str, method: str) -> None:
    """Raise unless ``activations`` are a spatial feature map ``(M, h, w, D)``."""
    if activations.ndim != 4:
        raise InvalidInputError(
            f"{method} needs a layer with a spatial output (N, h, w, channels); layer "
            f"{layer!r} gives activations of shape {activations.shape}: pick a "
            "convolutional layer from model.layer_names()"
        )


def layer_maps_to_images(layer_maps: np.ndarray, image_shape: tuple[int, ...]) -> np.ndarray:
    """Layer-space maps ``(N, h, w, D)`` summed over channels, upsampled bilinearly to
    the images' ``(H, W)`` and repeated over their ``C`` channels: ``(N, H, W, C)``."""
    # a product with ones sums each pixel's channels in one BLAS call, not numpy's slow
    # reduction over a short last axis; float32 values sum the same in float64 either way
    channels = layer_maps.shape[-1]
    summed = (layer_maps.reshape(-1, channels).astype(np.float64) @ np.ones(channels)).reshape(
        layer_maps.shape[:-1]
    )
    upsampled = interpolate_maps(summed, (image_shape[0], image_shape[1]), "bilinear")
    return np.repeat(upsampled.astype(np.float32)[..., None], image_shape[2], axis=-1)


def image_groups(n_images: int, points_per_image: int, batch_size: int) -> Iterator[slice]:
    """Groups of images whose path points fill about one ``batch_size`` each.

    Every model call is still split by the adapter at ``batch_size``; grouping only
    bounds the memory the points of one group take, so results do not depend on it.
    """
    size = max(1, batch_size // max(points_per_image, 1))
    for start in range(0, n_images, size):
        yield slice(start, min(start + size, n_images))


def resolve_layer(model: ModelAdapter, images: np.ndarray, layer: str | None, method: str) -> str:
    """``layer``, or the adapter's default (last spatial) feature layer."""
    if layer is not None:
        return layer
    found = model.default_layer(images[:1])
    if found is None:
        raise InvalidInputError(
            f"{method} needs layer=: adapter {model.name!r} does not say which layer is its "
            "last spatial feature map; pick one of model.layer_names()"
        )
    return found


def previous_feature_map(model: ModelAdapter, images: np.ndarray, layer: str) -> str:
    """The nearest layer before ``layer`` (in ``layer_names()`` order) with a spatial output
    of another shape, and through whose output the rest of the network can be run."""
    names = model.layer_names()
    shape = model.layer_activations(images[:1], layer).shape
    for name in reversed(names[: names.index(layer)]):
        try:
            candidate = model.layer_activations(images[:1], name)
            if candidate.ndim != 4 or candidate.shape == shape:
                continue
            model.layer_activations(candidate, layer, from_layer=name)
        except InvalidInputError:
            continue
        return name
    raise InvalidInputError(
        f"found no layer before {layer!r} with a spatial output of another shape to "
        "integrate over: pass inner_layer= naming one of model.layer_names()"
    )
