"""Blur IG: integrated gradients along a path of ever stronger Gaussian blur.

Xu, Venugopalan, Sundararajan. "Attribution in Scale and Space". CVPR 2020.
arXiv:2004.03383.

This is PAIR saliency's algorithm (``saliency.core.blur_ig.BlurIG``, v0.2.1) with its
parameter names and defaults: a left Riemann sum over ``steps`` blur levels, the blur's
derivative taken by a forward difference of ``grad_step`` in sigma, and the sign flipped
because the path runs from the image toward its blurred version. The blur is
``scipy.ndimage.gaussian_filter``'s (kernel truncated at 4 sigma, zero padding,
channels not mixed), written as matrix products so that a whole chunk of blur levels is
blurred by BLAS at once, in float32 without losing the derivative to cancellation (see
``blur_and_derivative``); PAIR blurs one image at a time with scipy. The products run on
one BLAS thread: they are small, and BLAS threads that spin between them take the cores
the model's threads need (with two, the blurs took 7 to 16 times longer between model
passes; docs/performance.md).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from threadpoolctl import ThreadpoolController

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.attribution.paths import accumulate_weighted_gradients
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl

#: scipy.ndimage.gaussian_filter's default: the kernel reaches 4 sigma each side.
TRUNCATE = 4.0


class BlurIG(AttributionMethod):
    """Blur IG from each image to its blur at ``max_sigma``, as PAIR saliency computes it.

    Parameters
    ----------
    max_sigma:
        Blur (in pixels) at the end of the path (PAIR: 50).
    steps:
        Number of blur levels, one gradient evaluation each (PAIR: 100).
    grad_step:
        Step in sigma of the forward difference that estimates the blur's derivative
        (PAIR: 0.01).
    sqrt:
        Space the blur levels as ``sqrt(i * max_sigma / steps)`` rather than linearly, so
        the path ends at ``sqrt(max_sigma)`` (PAIR: False).

    ``convergence_delta`` is each map's completeness error
    ``sum(map) - (f(image) - f(blurred image))``, from one extra forward pass per image.

    PAIR's batched mode weights a whole batch by its last point's step in sigma, which
    matters only with ``sqrt=True``; here every point gets its own step, which equals
    PAIR run with ``batch_size=1``.
    """

    name = "blur-ig"
    citation = "Xu, Venugopalan, Sundararajan, CVPR 2020, arXiv:2004.03383"
    requires = frozenset({"gradients"})

    def __init__(
        self,
        *,
        max_sigma: float = 50,
        steps: int = 100,
        grad_step: float = 0.01,
        sqrt: bool = False,
    ):
        self.max_sigma = max_sigma
        self.steps = steps
        self.grad_step = grad_step
        self.sqrt = sqrt
        _check_params(max_sigma, steps, grad_step, sqrt)

    def sigmas(self) -> np.ndarray:
        """The ``steps + 1`` blur levels of the path, PAIR's way."""
        levels = np.arange(self.steps + 1) * float(self.max_sigma) / float(self.steps)
        return np.sqrt(levels) if self.sqrt else levels

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        sigmas = self.sigmas()
        step_sizes = np.diff(sigmas)
        chunk: dict[str, np.ndarray] = {}
        threads = ThreadpoolController()

        def make_inputs(image_index: np.ndarray, step_index: np.ndarray) -> np.ndarray:
            with threads.limit(limits=1, user_api="blas"):
                blurred, derivative = blur_and_derivative(
                    images[image_index], sigmas[step_index], self.grad_step
                )
            chunk["derivative"] = derivative  # for ``weights`` on this same chunk
            return blurred

        def weights(
            image_index: np.ndarray, step_index: np.ndarray, grads: np.ndarray
        ) -> np.ndarray:
            step = step_sizes[step_index].reshape(-1, 1, 1, 1)
            return step * chunk.pop("derivative") * grads

        total, scores = accumulate_weighted_gradients(
            model, targets, images.shape, self.steps, make_inputs, weights, batch_size
        )
        maps = -total
        with threads.limit(limits=1, user_api="blas"):
            end = np.concatenate(
                [
                    gaussian_blur(images[s], np.full(len(images[s]), sigmas[-1]))
                    for s in _slices(len(images), batch_size)
                ]
            )
        gain = scores[:, 0] - model.scores(end, targets, batch_size=batch_size)
        delta = maps.reshape(len(maps), -1).sum(axis=1) - gain
        return AttributionResult(maps, self.name, self.get_params(), convergence_delta=delta)


def blur_and_derivative(
    images: np.ndarray, sigmas: np.ndarray, grad_step: float
) -> tuple[np.ndarray, np.ndarray]:
    """Each image blurred with its sigma, and PAIR's forward difference of the blur.

    The difference ``(blur(x, s + grad_step) - blur(x, s)) / grad_step`` would lose
    digits to cancellation when both blurs are rounded first (PAIR, blurring a float32
    image, loses about ``1 / grad_step`` times float32's precision). Here the difference
    is taken between the float64 blur matrices, ``D = (M' - M) / grad_step``, and the
    derivative is ``D_H x M'_W^T + M_H x D_W^T``: exact algebra, no cancellation, so the
    five products can run in the images' own precision.
    """
    h, w = images.shape[1:3]
    dtype = images.dtype
    rows, rows_next = _matrices(h, sigmas), _matrices(h, sigmas + grad_step)
    if w == h:
        cols, cols_next = rows, rows_next
    else:
        cols, cols_next = _matrices(w, sigmas), _matrices(w, sigmas + grad_step)
    rows_diff = ((rows_next - rows) / grad_step).astype(dtype)
    cols_diff = ((cols_next - cols) / grad_step).astype(dtype)
    x = _columns_last(images)
    partial = _along_rows(rows.astype(dtype), x)  # M_H x
    blurred = _along_cols(cols.astype(dtype), partial)
    derivative = _along_cols(cols_next.astype(dtype), _along_rows(rows_diff, x))
    derivative += _along_cols(cols_diff, partial)
    return _channels_last(blurred), _channels_last(derivative)


def gaussian_blur(images: np.ndarray, sigmas: np.ndarray) -> np.ndarray:
    """Blur each image ``(B, H, W, C)`` over its two spatial axes with its own sigma.

    Equals ``scipy.ndimage.gaussian_filter(image, [s, s, 0], mode="constant")`` (the
    image itself for ``s = 0``), computed in the images' precision as ``M_H x M_W^T``
    per channel with banded matrices holding scipy's truncated, normalised kernel.
    """
    h, w = images.shape[1:3]
    rows = _matrices(h, sigmas).astype(images.dtype)
    cols = rows if w == h else _matrices(w, sigmas).astype(images.dtype)
    return _channels_last(_along_cols(cols, _along_rows(rows, _columns_last(images))))


def _matrices(size: int, sigmas: np.ndarray) -> np.ndarray:
    return np.stack([blur_matrix(size, s) for s in sigmas])


# The products work on images laid out (B, H, C, W), so that both are plain matrix
# products without copies: M_H @ (H, C*W) along rows and (H*C, W) @ M_W^T along columns.


def _columns_last(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 1, 3, 2))


def _channels_last(images: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(images.transpose(0, 1, 3, 2))


def _along_rows(matrices: np.ndarray, x: np.ndarray) -> np.ndarray:
    """``matrices[i] @ x[i]`` over the row axis: ``(B, H, H)``, ``(B, H, C, W)``."""
    b, h, c, w = x.shape
    return np.matmul(matrices, x.reshape(b, h, c * w)).reshape(b, h, c, w)


def _along_cols(matrices: np.ndarray, x: np.ndarray) -> np.ndarray:
    """The same over the column axis: ``(B, W, W)``, ``(B, H, C, W)``."""
    b, h, c, w = x.shape
    return np.matmul(x.reshape(b, h * c, w), matrices.transpose(0, 2, 1)).reshape(b, h, c, w)


def blur_matrix(size: int, sigma: float) -> np.ndarray:
    """``(size, size)`` matrix of scipy's 1-D Gaussian filter with zero padding.

    Row ``i`` holds the kernel centred on ``i``, cut where it leaves the signal; the
    kernel is ``exp(-x^2 / 2 sigma^2)`` on ``|x| <= int(4 sigma + 0.5)``, normalised to
    sum 1, exactly as ``scipy.ndimage.gaussian_filter1d`` builds it.
    """
    if sigma == 0:
        return np.eye(size)
    radius = int(TRUNCATE * float(sigma) + 0.5)
    x = np.arange(-radius, radius + 1)
    kernel = np.exp(-0.5 / (sigma * sigma) * x**2)
    kernel /= kernel.sum()
    offset = np.subtract.outer(np.arange(size), np.arange(size))  # i - j
    inside = np.abs(offset) <= radius
    return np.where(inside, kernel[np.clip(offset, -radius, radius) + radius], 0.0)


def _slices(n: int, size: int) -> list[slice]:
    return [slice(start, start + size) for start in range(0, n, size)]


def _check_params(max_sigma: Any, steps: Any, grad_step: Any, sqrt: Any) -> None:
    def positive_number(value: Any) -> bool:
        return bool(
            isinstance(value, int | float | np.number)
            and not isinstance(value, bool)
            and np.isfinite(value)
            and value > 0
        )

    if not positive_number(max_sigma):
        raise InvalidInputError(
            f"expected max_sigma to be a positive number of pixels; got {max_sigma!r}"
        )
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer) or steps < 1:
        raise InvalidInputError(f"expected steps to be a positive int; got {steps!r}")
    if not positive_number(grad_step):
        raise InvalidInputError(
            f"expected grad_step to be a positive number (a step in sigma); got {grad_step!r}"
        )
    if not isinstance(sqrt, bool | np.bool_):
        raise InvalidInputError(f"expected sqrt to be True or False; got {sqrt!r}")


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(BlurIG)
