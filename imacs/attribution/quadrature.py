"""Quadrature rules on [0, 1] for path integrals: ``n_steps -> (alphas, weights)``.

Integrated Gradients and its relatives approximate ``integral_0^1 g(alpha) d alpha`` by
``sum_s weights[s] * g(alphas[s])``. The rules here reproduce Captum's
(``captum.attr._utils.approximation_methods``) number for number, so an IG computed
with them equals Captum's to float32 precision:

==============================  ===================================  =====================
name                            alphas                               weights
==============================  ===================================  =====================
``riemann_left``                ``linspace(0, 1 - 1/n, n)``          ``1/n`` each
``riemann_right``               ``linspace(1/n, 1, n)``              ``1/n`` each
``riemann_middle``              ``linspace(1/(2n), 1 - 1/(2n), n)``  ``1/n`` each
``riemann_trapezoid``           ``linspace(0, 1, n)``                ``1/n``, halved at ends
``gausslegendre``               Gauss-Legendre nodes on [0, 1]       their weights
``trapezoid``                   ``linspace(0, 1, n)``                ``1/(n-1)``, halved at
                                                                     ends
``riemann_include_endpoints``   ``linspace(0, 1, n)``                ``1/n`` each
==============================  ===================================  =====================

The first five are Captum's. Captum's ``riemann_trapezoid`` weights sum to ``1 - 1/n``,
not 1 (its points are ``1/(n-1)`` apart but weighted ``1/n``), so its attributions are
the trapezoid rule's scaled by ``1 - 1/n`` and miss completeness by about ``1/n``. It is
kept as Captum has it, for equality; ``trapezoid`` is the composite trapezoid rule with
the same points, which Sotoudeh and Thakur (arXiv:1908.06214) found more accurate than
Riemann sums for IG.

Captum builds the Riemann alphas with float32 ``torch.linspace``; :func:`float32_linspace`
rounds them the same way (PyTorch's kernel: ``start + step * i`` for the first half,
``end - step * (n - 1 - i)`` for the second, fused multiply-add in float32), so the path
points are bit-identical. Gauss-Legendre nodes are NumPy float64, as in Captum.

``riemann_include_endpoints`` is PAIR saliency's rule (``IntegratedGradients.GetMask``:
``alphas = np.linspace(0, 1, x_steps)``, result ``sum_grads * (x - x') / x_steps``): both
end points with weight ``1/n`` each, so the weights sum to 1 but the rule is neither left
nor right Riemann. Captum has the same rule under this name, commented out. PAIR's IG with
``x_steps=n`` is IG here with ``quadrature="riemann_include_endpoints", n_steps=n``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from imacs.errors import InvalidInputError

Quadrature = Callable[[int], tuple[np.ndarray, np.ndarray]]


def float32_linspace(start: float, end: float, n: int) -> np.ndarray:
    """``torch.linspace(start, end, n)`` (float32, CPU) as float64 values, bit for bit."""
    first, last = np.float32(start), np.float32(end)
    if n == 1:
        return np.array([first], dtype=np.float64)
    step = np.float64(np.float32((last - first) / np.float32(n - 1)))
    index = np.arange(n, dtype=np.float64)
    # products of two float32 are exact in float64, so rounding the float64 sum to float32
    # reproduces PyTorch's single-rounding fused multiply-add
    values = np.where(
        index < n // 2, np.float64(first) + step * index, np.float64(last) - step * (n - 1 - index)
    )
    return values.astype(np.float32).astype(np.float64)


def _uniform_weights(n: int) -> np.ndarray:
    return np.full(n, 1.0 / n)


def riemann_left(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Left Riemann sum: ``alpha = 0, 1/n, ..., 1 - 1/n``, weights ``1/n``."""
    return float32_linspace(0.0, 1.0 - 1.0 / n_steps, n_steps), _uniform_weights(n_steps)


def riemann_right(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Right Riemann sum: ``alpha = 1/n, 2/n, ..., 1``, weights ``1/n``."""
    return float32_linspace(1.0 / n_steps, 1.0, n_steps), _uniform_weights(n_steps)


def riemann_middle(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Midpoint rule: ``alpha = (s + 1/2) / n``, weights ``1/n``."""
    start = 1.0 / (2 * n_steps)
    return float32_linspace(start, 1.0 - start, n_steps), _uniform_weights(n_steps)


def riemann_trapezoid(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Captum's trapezoid rule: ``alpha = linspace(0, 1, n)``, weights ``1/n`` halved at ends.

    As in Captum the weights are ``1/n`` (not ``1/(n-1)``), so they sum to ``1 - 1/n``;
    kept for equality with Captum (:func:`trapezoid` is the exact rule). Needs
    ``n_steps >= 2``.
    """
    weights = _uniform_weights(n_steps)
    weights[0] /= 2
    weights[-1] /= 2
    return float32_linspace(0.0, 1.0, n_steps), weights


def trapezoid(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The composite trapezoid rule on Captum's points ``linspace(0, 1, n)``, n >= 2."""
    weights = np.full(n_steps, 1.0 / (n_steps - 1))
    weights[0] /= 2
    weights[-1] /= 2
    return float32_linspace(0.0, 1.0, n_steps), weights


def gausslegendre(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Gauss-Legendre nodes and weights mapped from [-1, 1] to [0, 1] (Captum's default)."""
    nodes, weights = np.polynomial.legendre.leggauss(n_steps)
    return 0.5 * (1.0 + nodes), 0.5 * weights


def riemann_include_endpoints(n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """PAIR saliency's IG rule: ``alpha = linspace(0, 1, n)`` (float64), weights ``1/n``."""
    return np.linspace(0.0, 1.0, n_steps), _uniform_weights(n_steps)


QUADRATURES: dict[str, Quadrature] = {
    "riemann_left": riemann_left,
    "riemann_right": riemann_right,
    "riemann_middle": riemann_middle,
    "riemann_trapezoid": riemann_trapezoid,
    "gausslegendre": gausslegendre,
    "trapezoid": trapezoid,
    "riemann_include_endpoints": riemann_include_endpoints,
}

_MIN_STEPS = {"riemann_trapezoid": 2, "trapezoid": 2}


def check_quadrature(name: str, n_steps: int) -> None:
    """Raise ``InvalidInputError`` unless ``name`` is a known rule and ``n_steps`` suits it."""
    if not isinstance(name, str) or name not in QUADRATURES:
        raise InvalidInputError(
            f"unknown quadrature {name!r}: expected one of {', '.join(QUADRATURES)}"
        )
    least = _MIN_STEPS.get(name, 1)
    if isinstance(n_steps, bool) or not isinstance(n_steps, int | np.integer) or n_steps < least:
        raise InvalidInputError(
            f"expected n_steps to be an int >= {least} for quadrature {name!r}; got {n_steps!r}"
        )


def quadrature(name: str, n_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """The ``(alphas, weights)`` of rule ``name`` with ``n_steps`` points, both float64."""
    check_quadrature(name, n_steps)
    alphas, weights = QUADRATURES[name](int(n_steps))
    return np.asarray(alphas, dtype=np.float64), np.asarray(weights, dtype=np.float64)
