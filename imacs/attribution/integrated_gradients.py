"""Integrated Gradients.

Sundararajan, Taly, Yan. "Axiomatic Attribution for Deep Networks". ICML 2017.
arXiv:1703.01365.

The attribution of pixel ``j`` is ``(x_j - x'_j) * integral_0^1 dF(x' + a (x - x'))/dx_j da``
along the straight line from a baseline ``x'`` to the image ``x``, approximated by a
quadrature rule (:mod:`imacs.attribution.quadrature`). Its attributions sum to
``F(x) - F(x')`` (completeness) up to the quadrature's error, reported per image as
``convergence_delta``.

With ``n_steps="auto"`` the number of points is chosen per image: the trapezoid rule
starts at 8 intervals and doubles them, evaluating only the new midpoints (the rule's
points are nested), until the image's completeness error is below ``tolerance``.
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
from imacs.errors import InvalidInputError
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


#: intervals of the trapezoid rule that ``n_steps="auto"`` starts with (9 points)
AUTO_START_INTERVALS = 8


def integrate_paths_adaptive(
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    baselines: np.ndarray,
    tolerance: float,
    max_steps: int,
    batch_size: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IG by the trapezoid rule with per-path doubling until ``|delta| <= tolerance``.

    Every path starts with :data:`AUTO_START_INTERVALS` intervals (``alpha = k / n``,
    ``k = 0..n``). A path whose completeness error is above ``tolerance`` has its
    intervals doubled: only the ``n`` new midpoints ``(2k + 1) / 2n`` are evaluated,
    and the earlier points keep their gradients (the trapezoid rule with ``2n`` intervals
    is ``T_n / 2`` plus the new points' mean over 2), until the error is small enough or
    the path has ``max_steps`` intervals. Returns attributions ``(B, N, H, W, C)``,
    ``convergence_delta`` ``(B, N)`` and the intervals each path ended with ``(B, N)``
    (it saw that many gradients plus one).
    """
    n_baselines, n_images = baselines.shape[:2]
    starts = baselines.reshape(n_baselines * n_images, *images.shape[1:])
    diffs = (images[None] - baselines).reshape(starts.shape)
    path_targets = np.tile(targets, n_baselines)
    n_paths = len(starts)

    def gradients_at(
        paths: np.ndarray, alphas: np.ndarray, weights: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        weights32 = weights.astype(np.float32)

        def weighted(_: np.ndarray, steps: np.ndarray, grads: np.ndarray) -> np.ndarray:
            grads *= weights32[steps, None, None, None]
            return grads

        return accumulate_weighted_gradients(
            model,
            path_targets[paths],
            (len(paths), *starts.shape[1:]),
            len(alphas),
            straight_path(starts[paths], diffs[paths], alphas),
            weighted,
            batch_size,
        )

    n = AUTO_START_INTERVALS
    alphas = np.arange(n + 1, dtype=np.float64) / n
    weights = np.ones(n + 1)
    weights[[0, -1]] = 0.5
    # sums: the trapezoid rule's weighted gradient sums, times the intervals (T_n * n)
    sums, path_scores = gradients_at(np.arange(n_paths), alphas, weights)
    score_change = path_scores[:, -1] - path_scores[:, 0]
    intervals = np.full(n_paths, n, dtype=np.int64)
    flat_diffs = diffs.reshape(n_paths, -1)

    def deltas(paths: np.ndarray) -> np.ndarray:
        integral = sums[paths].reshape(len(paths), -1) / intervals[paths, None]
        return np.einsum("pj,pj->p", integral, flat_diffs[paths]) - score_change[paths]

    delta = deltas(np.arange(n_paths))
    while True:
        active = np.flatnonzero((np.abs(delta) > tolerance) & (intervals < max_steps))
        if len(active) == 0:
            break
        # one round per interval count, so each round's paths share their new points
        n = int(intervals[active].min())
        active = active[intervals[active] == n]
        midpoints = (2 * np.arange(n, dtype=np.float64) + 1) / (2 * n)
        new_sums, _ = gradients_at(active, midpoints, np.ones(n))
        sums[active] += new_sums
        intervals[active] = 2 * n
        # T_2n * 2n = (T_n * n) + sum of the new points: the endpoints keep weight 1/2
        delta[active] = deltas(active)

    attributions = sums / intervals[:, None, None, None] * diffs
    shape = (n_baselines, *images.shape)
    return (
        attributions.reshape(shape),
        delta.reshape(n_baselines, n_images),
        intervals.reshape(n_baselines, n_images),
    )


class IntegratedGradients(AttributionMethod):
    """Integrated Gradients along the straight line from a baseline to each image.

    Parameters
    ----------
    n_steps:
        Number of points on the path (gradient evaluations per image and baseline).
        Default 50, Captum's; PAIR saliency's default is ``x_steps=25``. ``"auto"``
        chooses per image and baseline: the trapezoid rule (``quadrature="trapezoid"``
        is then required) with 8 intervals, doubled, reusing the earlier points, until
        the completeness error ``|convergence_delta|`` is at most ``tolerance`` or the
        intervals reach ``max_steps``. The intervals each image ended with are in
        ``self.last_steps`` (``(n_baselines, N)``) after a call.
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
    tolerance:
        With ``n_steps="auto"``: the largest completeness error accepted, in the units of
        the model's score (the target logit by default), per image and baseline.
    max_steps:
        With ``n_steps="auto"``: the most intervals a path may reach (a power of two of 8
        or more; ``max_steps + 1`` gradients). Paths that reach it stop above the
        tolerance; their ``convergence_delta`` says by how much.

    ``convergence_delta`` is per image, averaged over baselines:
    ``sum(map) - mean_b(F(x) - F(x'_b))``.
    """

    name = "integrated-gradients"
    citation = "Sundararajan, Taly, Yan, ICML 2017, arXiv:1703.01365"

    def __init__(
        self,
        *,
        n_steps: int | str = 50,
        quadrature: str = "gausslegendre",
        baselines: Any = "black",
        pixel_range: Any = (0.0, 1.0),
        blur_sigma: float = 10.0,
        seed: int = 0,
        tolerance: float = 0.01,
        max_steps: int = 256,
    ):
        if n_steps == "auto":
            check_auto_steps(quadrature, tolerance, max_steps)
        else:
            check_quadrature(quadrature, n_steps)  # type: ignore[arg-type]
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
        self.tolerance = tolerance
        self.max_steps = max_steps
        #: intervals per baseline and image of the last call with ``n_steps="auto"``
        self.last_steps: np.ndarray | None = None

    def get_params(self) -> dict[str, Any]:
        """The parameters; ``tolerance`` and ``max_steps`` only with ``n_steps="auto"``.

        Fixed step counts keep the parameters (and so the store keys) they had before
        the adaptive option existed.
        """
        params = super().get_params()
        if self.n_steps != "auto":
            del params["tolerance"], params["max_steps"]
        return params

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        baselines = make_baselines(
            self.baselines,
            images,
            pixel_range=self.pixel_range,
            blur_sigma=self.blur_sigma,
            seed=self.seed,
        )
        if self.n_steps == "auto":
            attributions, delta, self.last_steps = integrate_paths_adaptive(
                model, images, targets, baselines, self.tolerance, self.max_steps, batch_size
            )
        else:
            alphas, weights = quadrature(self.quadrature, int(self.n_steps))
            attributions, delta = integrate_paths(
                model, images, targets, baselines, alphas, weights, batch_size
            )
        return AttributionResult(
            attributions.mean(axis=0),
            self.name,
            self.get_params(),
            convergence_delta=delta.mean(axis=0),
        )


def check_auto_steps(quadrature_name: str, tolerance: Any, max_steps: Any) -> None:
    """Raise ``InvalidInputError`` unless these suit ``n_steps="auto"``."""
    if quadrature_name != "trapezoid":
        raise InvalidInputError(
            "n_steps='auto' doubles the points of the trapezoid rule, whose points are "
            f"nested; pass quadrature='trapezoid' (got {quadrature_name!r})"
        )
    if isinstance(tolerance, bool) or not isinstance(tolerance, int | float) or tolerance <= 0:
        raise InvalidInputError(f"expected tolerance to be a number > 0; got {tolerance!r}")
    ok = isinstance(max_steps, int) and not isinstance(max_steps, bool)
    if not ok or max_steps < AUTO_START_INTERVALS or max_steps & (max_steps - 1):
        raise InvalidInputError(
            f"expected max_steps to be a power of two >= {AUTO_START_INTERVALS}; got {max_steps!r}"
        )


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(IntegratedGradients)
