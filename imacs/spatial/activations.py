"""Mean activation maps per layer: where in the frame a layer's units fire on average.

For layer ``l``, ``MA_l(h, w) = mean over images and channels of A_l(x)[h, w, c]``,
shown divided by its own mean, so 1 is the layer's average and the map shows relative
elevation or suppression (Alsallakh et al., "Mind the Pad", ICLR 2021; anchors §3.2).
Computed on dataset images, and on constant images (all zeros, and the dataset's mean
colour), which hold no content at any position: whatever structure their maps show
comes from padding and the convolution arithmetic. Layers are read through the adapter's
``embedding`` capability (``embed(images, layer=...)``), one pass per layer.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from imacs.errors import InvalidInputError


def relative_mean_map(activations: np.ndarray) -> np.ndarray:
    """``(h, w)`` mean over images and channels of ``(N, h, w, C)``, over its own mean."""
    mean = np.asarray(activations, dtype=np.float64).mean(axis=(0, 3))
    level = mean.mean()
    return mean / level if abs(level) > 1e-12 else np.ones_like(mean)


def spatial_layers(adapter: Any, size: tuple[int, int]) -> list[str]:
    """The convolution layers (by name) whose output is a feature map, via ``geometry``."""
    if "geometry" in adapter.capabilities:
        names = [row["name"] for row in adapter.layer_geometry(size)]
        convolutions = [n for n in names if "(call" not in n]
        if convolutions:
            return convolutions
    return []


def mean_activation_maps(
    adapter: Any,
    images: np.ndarray,
    *,
    layers: Sequence[str] | None = None,
    constant: float | np.ndarray | None = None,
    batch_size: int | None = None,
) -> dict[str, dict[str, np.ndarray]]:
    """Relative mean activation maps of ``layers`` on ``images`` and on constant images.

    Returns ``{layer: {"data": map, "zeros": map, "constant": map}}``; ``constant`` is
    the constant image's value or colour (default: the images' mean colour).
    """
    adapter.require("embedding", by="mean activation maps")
    images = np.asarray(images, dtype=np.float32)
    if images.ndim != 4 or not len(images):
        raise InvalidInputError(f"expected images (N, H, W, C) with N >= 1; got {images.shape}")
    if layers is None:
        layers = spatial_layers(adapter, images.shape[1:3]) or [adapter.default_layer(images)]
    colour = images.mean(axis=(0, 1, 2)) if constant is None else np.asarray(constant)
    plain = np.stack([np.zeros_like(images[0]), np.broadcast_to(colour, images[0].shape)])
    maps: dict[str, dict[str, np.ndarray]] = {}
    for layer in layers:
        data = adapter.embed(images, layer=layer, batch_size=batch_size)
        flat = adapter.embed(plain, layer=layer, batch_size=batch_size)
        if data.ndim != 4:
            continue  # not a spatial feature map
        maps[layer] = {
            "data": relative_mean_map(data),
            "zeros": relative_mean_map(flat[:1]),
            "constant": relative_mean_map(flat[1:]),
        }
    return maps
