"""Each convolution's and pooling's geometry at an input size, read with forward pre-hooks.

One forward pass of a single all-zero image at the asked size records the input size
each ``Conv2d``, ``MaxPool2d`` and ``AvgPool2d`` receives; kernel, stride, padding and
dilation are the modules' own attributes. What :mod:`imacs.spatial.padding` checks.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from imacs.errors import InvalidInputError

_LAYERS = (torch.nn.Conv2d, torch.nn.MaxPool2d, torch.nn.AvgPool2d)


def _pair(value: Any) -> tuple[int, int]:
    if isinstance(value, tuple | list):
        return int(value[0]), int(value[-1])
    return int(value), int(value)


def _padding(module: torch.nn.Module) -> Any:
    padding = module.padding
    if isinstance(padding, str):
        return padding  # "same" (stride 1, odd total to the bottom/right) or "valid"
    return _pair(padding)


def _describe(name: str, module: torch.nn.Module, size: tuple[int, int]) -> dict[str, Any]:
    return {
        "name": name,
        "type": type(module).__name__,
        "input_size": size,
        "kernel": _pair(module.kernel_size),
        "stride": _pair(module.stride if module.stride is not None else module.kernel_size),
        "padding": _padding(module),
        "dilation": _pair(getattr(module, "dilation", 1)),
        "ceil_mode": bool(getattr(module, "ceil_mode", False)),
    }


def layer_geometry(adapter: Any, size: tuple[int, int]) -> list[dict[str, Any]]:
    """The torch adapter's ``layer_geometry``: see :class:`imacs.adapters.base.ModelAdapter`."""
    height, width = (int(v) for v in size)
    if height < 1 or width < 1:
        raise InvalidInputError(f"expected a positive input size; got {height}x{width}")
    model = adapter.model
    if adapter._image_shape is not None:
        channels = adapter._image_shape[-1]
    else:
        first = next((m for m in model.modules() if isinstance(m, torch.nn.Conv2d)), None)
        channels = first.in_channels if first is not None else 3
    found: list[dict[str, Any]] = []
    calls: dict[str, int] = {}

    def record(name: str) -> Any:
        def hook(module: torch.nn.Module, inputs: Any) -> None:
            calls[name] = calls.get(name, 0) + 1
            shape = inputs[0].shape
            shown = name if calls[name] == 1 else f"{name} (call {calls[name]})"
            found.append(_describe(shown, module, (int(shape[-2]), int(shape[-1]))))

        return hook

    image = np.zeros((1, height, width, channels), dtype=np.float32)
    with contextlib.ExitStack() as stack:
        for name, module in model.named_modules():
            if isinstance(module, _LAYERS):
                stack.callback(module.register_forward_pre_hook(record(name)).remove)
        try:
            with torch.inference_mode():
                adapter.forward_pixels(adapter._pixels(image))
        except RuntimeError as exc:
            raise InvalidInputError(
                f"the model does not run on {height}x{width} images ({exc}); give a size it accepts"
            ) from exc
    return found
