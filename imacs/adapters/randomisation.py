"""New parameter values for the model-parameter randomisation test, framework-free.

Adebayo et al. ("Sanity Checks for Saliency Maps", NeurIPS 2018) re-initialise a trained
network's layers and ask whether the attribution maps change. The adapters of every
framework draw the new values here, with NumPy, so that

- a layer's new values depend only on the seed and the layer's position among the layers
  with parameters: the cascading test's steps share the values of the layers they have in
  common, and the same seed gives the same copy;
- the same network built in PyTorch and in Keras gets the same new weights, since the
  values are drawn in one layout (PyTorch's, output axis first) and each adapter transposes
  them into its own.

The rule is PyTorch's default initialisation of ``Conv*d`` and ``Linear`` layers: every
parameter uniform on ``[-b, b]`` with ``b = 1 / sqrt(fan_in)``, ``fan_in`` the product of
the weight's axes after the first (input channels times kernel area). Layers whose
parameters are all vectors (normalisation layers) have no fan-in; they are reset to the
identity (scale 1, shift 0, statistics 0 and 1) by the adapter, as ``reset_parameters``
does in PyTorch.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from imacs.parameters import check_seed


def new_parameters(
    shapes: Sequence[tuple[int, ...]], *, seed: int, position: int
) -> list[np.ndarray] | None:
    """Fresh float32 values for one layer's parameters, in output-first layout.

    ``shapes`` are the layer's parameter shapes in PyTorch's layout (``(out, in, kh, kw)``
    for a convolution, ``(out, in)`` for a dense layer, ``(out,)`` for a bias), weight
    first. Returns ``None`` for a layer with no parameter of two or more axes: the adapter
    resets such a layer to the identity.
    """
    check_seed(seed)
    weights = [shape for shape in shapes if len(shape) >= 2]
    if not weights:
        return None
    fan_in = math.prod(weights[0][1:])
    bound = 1.0 / math.sqrt(max(fan_in, 1))
    rng = np.random.default_rng([seed, position])
    return [rng.uniform(-bound, bound, size=shape).astype(np.float32) for shape in shapes]


def output_first_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """The output-first shape of a channel-last kernel (Keras's ``(kh, kw, in, out)``).

    ``(kh, kw, in, out)`` becomes ``(out, in, kh, kw)`` and ``(in, out)`` becomes
    ``(out, in)``; vectors are unchanged.
    """
    if len(shape) < 2:
        return shape
    return (shape[-1], shape[-2], *shape[:-2])


def to_channel_last_kernel(values: np.ndarray) -> np.ndarray:
    """An output-first array laid out as a channel-last kernel: the inverse of the above."""
    if values.ndim < 2:
        return values
    return np.ascontiguousarray(values.transpose(*range(2, values.ndim), 1, 0))
