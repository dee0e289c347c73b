"""The smooth-surrogate option: gradients of a smoothed copy of a ReLU network.

Kokhlikyan, Miglani, Alsallakh, Martin, Reblitz-Richardson, "Investigating sanity checks
for saliency maps with image and text classification", arXiv 2106.07475, 2021, report that
replacing ReLU by Softplus and max-pooling by LogSumExp pooling *when computing
explanations* makes them more reliable by the infidelity measure. The input gradient of a
Softplus(beta) network is the expected gradient of the ReLU network under noise of a
logistic kind (Dombrowski et al., NeurIPS 2019, Thm. 2), so the surrogate's gradients are
those of the ReLU network, smoothed.

An adapter given ``smooth_surrogate={"beta": 10}`` keeps the model for ``predict`` and
``scores`` and takes ``value_and_gradients`` (and ``layer_gradients``) through a copy in
which

- every ReLU is ``softplus(beta * x) / beta``, which tends to ReLU as beta grows;
- every max-pooling window is ``T * log(mean(exp(x / T)))`` over the window, LogSumExp
  pooling at temperature ``T``, which lies between the window's mean and its maximum and
  tends to the maximum as ``T`` shrinks. ``T`` defaults to ``1 / beta``.

Only the layers are replaced: a ReLU written as a function call inside a PyTorch
``forward`` (``torch.relu(x)``, ``F.relu(x)``) is not, and is reported by neither adapter.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

from imacs.errors import InvalidInputError

#: beta when the option is given as ``True`` or without it
DEFAULT_BETA = 10.0


def check_smooth_surrogate(value: Any) -> dict[str, float] | None:
    """The option as ``{"beta": b, "temperature": t}``, or ``None`` for the model itself.

    Accepts ``None`` or ``False`` (no surrogate), ``True`` (beta 10), a number (beta) or a
    mapping with ``beta`` and optionally ``temperature``, both positive.
    """
    if value is None or value is False:
        return None
    if value is True:
        value = {}
    elif isinstance(value, int | float) and not isinstance(value, bool):
        value = {"beta": value}
    if not isinstance(value, Mapping):
        raise InvalidInputError(
            f"expected smooth_surrogate to be a dict such as {{'beta': 10}}, a number (beta), "
            f"True or None; got {value!r}"
        )
    unknown = sorted(set(value) - {"beta", "temperature"})
    if unknown:
        raise InvalidInputError(
            f"smooth_surrogate takes 'beta' and 'temperature'; got {', '.join(map(repr, unknown))}"
        )
    beta = _positive(value.get("beta", DEFAULT_BETA), "beta")
    temperature = _positive(value.get("temperature", 1.0 / beta), "temperature")
    return {"beta": beta, "temperature": temperature}


def _positive(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise InvalidInputError(f"expected smooth_surrogate {name} to be a number; got {value!r}")
    number = float(value)
    if not (math.isfinite(number) and number > 0):
        raise InvalidInputError(
            f"expected smooth_surrogate {name} to be a positive number; got {value!r}"
        )
    return number
