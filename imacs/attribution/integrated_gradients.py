"""Integrated Gradients.

Sundararajan, Taly, Yan. "Axiomatic Attribution for Deep Networks". ICML 2017.
arXiv:1703.01365.

The attribution of pixel ``j`` is ``(x_j - x'_j) * integral_0^1 dF(x' + a (x - x'))/dx_j da``
along the straight line from a baseline ``x'`` to the image ``x``, approximated by a
quadrature rule (:mod:`imacs.attribution.quadrature`). Its attributions sum to
``F(x) - F(x')`` (completeness) up to the quadrature's error, reported per image as
``convergence_delta``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.attribution.baselines import (
    baseline_specs,
    check_blur_sigma,
    check_pixel_range,
    make_baselines,
)
from imacs.attribution.paths import MakeInputs, accumulate_weighted_gradients
from imacs.attribution.quadrature import check_quadrature, quadrature
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_seed


def straight_path(starts: np.ndarray, diffs: np.ndarray, alphas: np.ndarray) -> MakeInputs:
    """Inputs ``starts[p] + alphas[s] * diffs[p]`` for path ``p`` at step ``s``, in float32.

    The operations and their order are Captum's (``baseline + alpha * (input -
    baseline)``), so with the same alphas the points are bit-identical to Captum's.
    """
    alphas32 = alphas.astype(np.float32)

    def make_inputs(paths: np.ndarray, steps: np.ndarray) -> np.ndarray:
        inputs = diffs[paths]
        inputs *= alphas32[steps, None, None, None]
        inputs += starts[paths]
        return inputs

    return make_inputs


def integrate_paths(
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    baselines: np.ndarray,
    alphas: np.ndarray,
    weights: np.ndarray,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray]:
    """IG from each of ``baselines`` ``(B, N, H, W, C)``: attributions and completeness errors.

    Returns attributions ``(B, N, H, W, C)`` (float64) and ``convergence_delta`` ``(B, N)``:
    ``sum(attributions) - (F(x) - F(x'))``. All ``B * N * n_steps`` path points go through
    the model ``batch_size`` at a time. ``F`` at an end point comes from the path when the
    quadrature evaluates it there (``alpha`` exactly 0 or 1), otherwise from one ``scores``
    call for all missing end points.
    """
    n_baselines, n_images = baselines.shape[:2]
    starts = baselines.reshape(n_baselines * n_images, *images.shape[1:])
    diffs = (images[None] - baselines).reshape(starts.shape)  # path p = b * N + i
    path_targets = np.tile(targets, n_baselines)
    weights32 = weights.astype(np.float32)

    def weighted(paths: np.ndarray, steps: np.ndarray, grads: np.ndarray) -> np.ndarray:
        grads *= weights32[steps, None, None, None]
        return grads

    total, path_scores = accumulate_weighted_gradients(
        model,
        path_targets,
        starts.shape,
        len(alphas),
        straight_path(starts, diffs, alphas),
        weighted,
        batch_size,
    )
    attributions = np.multiply(total, diffs, out=total)

    need_end, need_start = alphas[-1] != 1.0, alphas[0] != 0.0
    scores = np.empty(0)
    if need_end or need_start:
        queries = ([images] if need_end else []) + ([starts] if need_start else [])
        query_targets = ([targets] if need_end else []) + ([path_targets] if need_start else [])
        scores = model.scores(
            np.concatenate(queries), np.concatenate(query_targets), batch_size=batch_size
        ).astype(np.float64)
    end_scores = np.tile(scores[:n_images], n_baselines) if need_end else path_scores[:, -1]
    start_scores = scores[-len(starts) :] if need_start else path_scores[:, 0]
    delta = attributions.reshape(len(starts), -1).sum(axis=1) - (end_scores - start_scores)
    shape = (n_baselines, *images.shape)
    return attributions.reshape(shape), delta.reshape(n_baselines, n_images)


class IntegratedGradients(AttributionMethod):
    """Integrated Gradients along the straight line from a baseline to each image.

    Parameters
    ----------
    n_steps:
        Number of points on the path (gradient evaluations per image and baseline).
        Default 50, Captum's; PAIR saliency's default is ``x_steps=25``.
    quadrature:
        The rule placing the points (:data:`imacs.attribution.quadrature.QUADRATURES`):
        ``"gausslegendre"`` (default, Captum's: the most accurate for smooth models),
        ``"riemann_left"``, ``"riemann_right"``, ``"riemann_middle"``,
        ``"riemann_trapezoid"`` (Captum's, whose weights sum to ``1 - 1/n``),
        ``"trapezoid"`` (the exact trapezoid rule), or ``"riemann_include_endpoints"``
        (PAIR saliency's).
        Captum calls this parameter ``method``; here ``method`` names the attribution
        method itself (``imacs.attribute(method=...)``).
    baselines:
        Where paths start: ``"black"`` (default, the zero image for the default pixel
        range, as in Captum and PAIR saliency), ``"white"``, ``"uniform"``, ``"blurred"``,
        a number or an array of shape ``(H, W, C)`` or ``(N, H, W, C)``, or a list of them,
        whose attributions are averaged (``["black", "white"]`` is XRAI's choice). See
        :mod:`imacs.attribution.baselines`.
    pixel_range:
        ``(low, high)`` of the images' pixel values, defining black and white and the
        range of uniform noise; default ``(0.0, 1.0)``. ``"image"`` takes each image's own
        min and max, as PAIR saliency's XRAI does.
    blur_sigma:
        Gaussian blur in pixels for the ``"blurred"`` baseline. Default 10: it removes
        detail but keeps the layout of colours at ImageNet sizes; scale it with the image.
    seed:
        Seeds the ``"uniform"`` baseline.

    ``convergence_delta`` is per image, averaged over baselines:
    ``sum(map) - mean_b(F(x) - F(x'_b))``.
    """

    name = "integrated-gradients"
    citation = "Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365"

    def __init__(
        self,
        *,
        n_steps: int = 50,
        quadrature: str = "gausslegendre",
        baselines: Any = "black",
        pixel_range: Any = (0.0, 1.0),
        blur_sigma: float = 10.0,
        seed: int = 0,
    ):
        check_quadrature(quadrature, n_steps)
        baseline_specs(baselines)
        check_pixel_range(pixel_range)
        check_blur_sigma(blur_sigma)
        check_seed(seed)
        self.n_steps = n_steps
        self.quadrature = quadrature
        self.baselines = baselines
        self.pixel_range = pixel_range
        self.blur_sigma = blur_sigma
        self.seed = seed

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        alphas, weights = quadrature(self.quadrature, self.n_steps)
        baselines = make_baselines(
            self.baselines,
            images,
            pixel_range=self.pixel_range,
            blur_sigma=self.blur_sigma,
            seed=self.seed,
        )
        attributions, delta = integrate_paths(
            model, images, targets, baselines, alphas, weights, batch_size
        )
        return AttributionResult(
            attributions.mean(axis=0),
            self.name,
            self.get_params(),
            convergence_delta=delta.mean(axis=0),
        )


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(IntegratedGradients)
