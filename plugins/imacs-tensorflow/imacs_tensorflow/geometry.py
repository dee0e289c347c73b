"""Each convolution's and pooling's geometry at an input size, read from the Keras graph.

The functional or Sequential model is cloned onto an input of the asked size, which
computes every layer's input shape without running anything; kernel, strides, padding
and dilation are the layers' own settings. What :mod:`imacs.spatial.padding` checks.
"""

from __future__ import annotations

from typing import Any

import keras

from imacs.errors import InvalidInputError

_CONVOLUTIONS = (keras.layers.Conv2D, keras.layers.DepthwiseConv2D, keras.layers.SeparableConv2D)
_POOLINGS = (keras.layers.MaxPooling2D, keras.layers.AveragePooling2D)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, tuple | list):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def layer_geometry(
    model: Any, size: tuple[int, int], channels: int, *, channels_first: bool = False
) -> list[dict[str, Any]]:
    """Geometry of ``model``'s 2-D convolutions and poolings on ``size`` inputs."""
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise InvalidInputError(f"expected a positive input size; got {height}x{width}")
    try:
        clone = keras.models.clone_model(
            model,
            input_tensors=keras.Input(
                shape=(channels, height, width) if channels_first else (height, width, channels)
            ),
        )
    except Exception as exc:  # Keras raises many kinds for an input it cannot take
        raise InvalidInputError(
            f"the model cannot be built on {height}x{width} images ({exc}); give a size it accepts"
        ) from exc
    found = []
    for layer in clone.layers:
        if not isinstance(layer, _CONVOLUTIONS + _POOLINGS):
            continue
        shape = layer.input.shape
        first = getattr(layer, "data_format", "channels_last") == "channels_first"
        h, w = (shape[2], shape[3]) if first else (shape[1], shape[2])
        if h is None or w is None or h < 1 or w < 1:
            raise InvalidInputError(
                f"layer {layer.name!r} would receive a {h}x{w} input from {height}x{width} "
                "images: the images are too small for the model"
            )
        is_pool = isinstance(layer, _POOLINGS)
        kernel = layer.pool_size if is_pool else layer.kernel_size
        found.append(
            {
                "name": layer.name,
                "type": type(layer).__name__,
                "input_size": (int(h), int(w)),
                "kernel": _pair(kernel),
                "stride": _pair(layer.strides if layer.strides is not None else kernel),
                "padding": str(layer.padding).lower(),
                "dilation": (1, 1) if is_pool else _pair(layer.dilation_rate),
                "ceil_mode": False,
            }
        )
    return found
