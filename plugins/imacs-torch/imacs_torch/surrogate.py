"""A smooth copy of a PyTorch module: ReLU -> Softplus(beta), MaxPool2d -> LogSumExp pooling.

See :mod:`imacs.adapters.surrogate` for why and what the adapter does with it.
"""

from __future__ import annotations

import copy
import math

import torch
from torch import nn

from imacs.errors import InvalidInputError


class LogSumExpPool2d(nn.Module):
    """``T * log(mean(exp(x / T)))`` over each pooling window: a smooth max-pool."""

    def __init__(self, kernel_size: tuple[int, int], stride: tuple[int, int], temperature: float):
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        kh, kw = self.kernel_size
        patches = nn.functional.unfold(x, self.kernel_size, stride=self.stride)
        patches = patches.reshape(n, c, kh * kw, -1)
        t = self.temperature
        pooled = t * torch.logsumexp(patches / t, dim=2) - t * math.log(kh * kw)
        out_h = (h - kh) // self.stride[0] + 1
        out_w = (w - kw) // self.stride[1] + 1
        return pooled.reshape(n, c, out_h, out_w)


def _pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    if isinstance(value, int):
        return (value, value)
    return (int(value[0]), int(value[-1]))


def _lse_pool(pool: nn.MaxPool2d, temperature: float) -> LogSumExpPool2d:
    if _pair(pool.padding) != (0, 0) or _pair(pool.dilation) != (1, 1) or pool.ceil_mode:
        raise InvalidInputError(
            "smooth_surrogate replaces MaxPool2d by LogSumExp pooling only without padding, "
            f"dilation or ceil_mode; the model has {pool}: leave smooth_surrogate out for "
            "this model"
        )
    kernel = _pair(pool.kernel_size)
    stride = _pair(pool.stride) if pool.stride is not None else kernel
    return LogSumExpPool2d(kernel, stride, temperature)


def smooth_surrogate(model: nn.Module, beta: float, temperature: float) -> nn.Module:
    """A deep copy of ``model`` with ReLU modules as Softplus(beta), MaxPool2d as LSE pooling.

    Raises :class:`~imacs.errors.InvalidInputError` when the model has neither, since the
    surrogate would then be the model itself.
    """
    surrogate = copy.deepcopy(model)
    replaced = 0
    for parent in surrogate.modules():
        for name, child in parent.named_children():
            if isinstance(child, nn.ReLU):
                setattr(parent, name, nn.Softplus(beta=beta))
            elif isinstance(child, nn.MaxPool2d):
                setattr(parent, name, _lse_pool(child, temperature))
            else:
                continue
            replaced += 1
    if replaced == 0:
        raise InvalidInputError(
            "smooth_surrogate found no nn.ReLU or nn.MaxPool2d module to replace in the model "
            "(ReLUs called as functions inside forward() cannot be replaced): leave "
            "smooth_surrogate out, or build the model with nn.ReLU modules"
        )
    return surrogate.eval()
