"""Guided Integrated Gradients: an adaptive path that moves low-gradient pixels first.

Kapishnikov, Venugopalan, Avci, Wedin, Terry, Bolukbasi. "Guided Integrated Gradients:
an Adaptive Path Method for Removing Noise". CVPR 2021. arXiv:2106.09788.

This is PAIR saliency's algorithm (``saliency.core.guided_ig.guided_ig_impl``, v0.2.1)
step for step, with its parameter names, defaults, float64 path arithmetic, ``1e-9``
tolerance and ``"lower"`` quantile. PAIR walks one image at a time and asks the model
for one gradient per step; here every image of a group walks its own path in lock-step:
at step ``k`` the current points of all the group's images go to the model together, and
the per-image feature selection is vectorised over images. Groups hold at most
``batch_size`` images, so every model call and the path state are bounded by it.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod, AttributionResult
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl

#: PAIR's tolerance for "the step's L1 target is reached" (``math.isclose`` rel and abs).
EPSILON = 1e-9


class GuidedIG(AttributionMethod):
    """Guided IG from ``x_baseline`` to each image, as PAIR saliency computes it.

    At each of ``x_steps`` steps the path must close ``1 / x_steps`` of the L1 distance
    between baseline and image. It does so by moving the ``fraction`` of features with
    the smallest ``|gradient|`` toward the image, while no feature may lag or lead the
    straight line by more than ``max_dist`` (in units of the path's progress ``alpha``).
    Attribution accumulates ``gradient * displacement`` along the path.

    Parameters
    ----------
    x_baseline:
        Where the path starts: ``None`` for zeros (PAIR's default, black for images in
        ``[0, 1]``), a number, or an array of one image's shape ``(H, W, C)`` or of the
        batch's ``(N, H, W, C)``.
    x_steps:
        Number of steps, one gradient call per image each (PAIR: 200).
    fraction:
        Share of features, in ``(0, 1]``, selected by smallest ``|gradient|`` at each
        sub-step (PAIR: 0.25).
    max_dist:
        Largest deviation from the straight line, in ``[0, 1]``: 0 is IG on the straight
        path (a left Riemann sum: each step uses the gradient at its start), 1 is
        unbounded Guided IG (PAIR: 0.02).

    ``convergence_delta`` is each map's completeness error
    ``sum(map) - (f(image) - f(baseline))``, from two extra forward passes per image.
    """

    name = "guided-ig"
    citation = "Kapishnikov et al., CVPR 2021, arXiv:2106.09788"
    requires = frozenset({"gradients"})

    def __init__(
        self,
        *,
        x_baseline: float | np.ndarray | None = None,
        x_steps: int = 200,
        fraction: float = 0.25,
        max_dist: float = 0.02,
    ):
        self.x_baseline = x_baseline
        self.x_steps = x_steps
        self.fraction = fraction
        self.max_dist = max_dist
        _check_params(x_steps, fraction, max_dist)

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        baselines = _baseline_batch(self.x_baseline, images)
        maps = np.empty(images.shape, dtype=np.float64)
        for start in range(0, len(images), batch_size):
            group = slice(start, start + batch_size)
            maps[group] = guided_ig_paths(
                model,
                images[group],
                baselines[group],
                targets[group],
                steps=self.x_steps,
                fraction=self.fraction,
                max_dist=self.max_dist,
                batch_size=batch_size,
            )
        gain = model.scores(images, targets, batch_size=batch_size) - model.scores(
            baselines, targets, batch_size=batch_size
        )
        delta = maps.reshape(len(maps), -1).sum(axis=1) - gain.astype(np.float64)
        return AttributionResult(maps, self.name, self.get_params(), convergence_delta=delta)


def guided_ig_paths(
    model: ModelAdapter,
    x_input: np.ndarray,
    x_baseline: np.ndarray,
    targets: np.ndarray,
    *,
    steps: int,
    fraction: float,
    max_dist: float,
    batch_size: int,
) -> np.ndarray:
    """Guided IG for a group of images in lock-step: one model call per step for all.

    Every image follows exactly PAIR's per-image path. Returns float64 maps of
    ``x_input``'s shape.
    """
    shape = x_input.shape
    n = shape[0]
    x_in = x_input.reshape(n, -1).astype(np.float64)
    x_base = x_baseline.reshape(n, -1).astype(np.float64)
    attr = np.zeros_like(x_in)
    # PAIR returns zeros, without calling the model, for an image equal to its baseline
    moving = np.flatnonzero(np.abs(x_in - x_base).sum(axis=1) != 0)
    if len(moving) == 0:
        return attr.reshape(shape)
    paths = _GuidedPaths(x_in[moving], x_base[moving], fraction=fraction, max_dist=max_dist)
    moved_attr = np.zeros((len(moving), x_in.shape[1]))
    for step in range(steps):
        grad = model.gradients(
            paths.x.reshape(-1, *shape[1:]), targets[moving], batch_size=batch_size
        )
        paths.step(grad.reshape(len(moving), -1), moved_attr, step=step, steps=steps)
    attr[moving] = moved_attr
    return attr.reshape(shape)


#: Rows (images) of a block in the selection logic: about 1 MiB of float64 per buffer,
#: so the dozen passes over a block run in cache rather than in main memory.
_BLOCK_FEATURES = 1 << 17


class _GuidedPaths:
    """The current points of several images' Guided IG paths, flattened to ``(n, D)``.

    The decisions (which features move, how far) use PAIR's float64 expressions in
    PAIR's order, so each path equals PAIR's bit for bit. Images are processed in blocks
    of rows, vectorised within a block, with preallocated buffers and in-place
    arithmetic: a freshly allocated array per operation costs more than the operation.
    """

    def __init__(self, x_in: np.ndarray, x_base: np.ndarray, *, fraction: float, max_dist: float):
        self.x_in = x_in
        self.x_base = x_base
        self.total_diff = x_in - x_base
        self.l1_total = np.abs(self.total_diff).sum(axis=1)
        self.constant = self.total_diff == 0
        self.x = x_base.copy()
        self.max_dist = max_dist
        n, d = x_in.shape
        # the index np.quantile(..., method="lower") picks, as in PAIR's threshold
        self.kth = int(np.floor((d - 1) * np.float64(fraction)))
        self.block = max(1, min(n, _BLOCK_FEATURES // d))
        shape = (self.block, d)
        self._f64 = {name: np.empty(shape) for name in ("x_min", "x_max", "start", "tmp", "mask")}
        self._f32 = {name: np.empty(shape, np.float32) for name in ("work", "sorted", "mask")}
        self._bool = {name: np.empty(shape, bool) for name in ("selected", "to_max")}

    def step(self, grad: np.ndarray, attr: np.ndarray, *, step: int, steps: int) -> None:
        """Move every path through step ``step``; add ``grad * displacement`` to ``attr``."""
        alpha = (step + 1.0) / steps
        bounds = (max(alpha - self.max_dist, 0.0), min(alpha + self.max_dist, 1.0))
        l1_target = self.l1_total * (1 - (step + 1) / steps)
        for lo in range(0, len(self.x), self.block):
            rows = slice(lo, lo + self.block)
            self._step_rows(rows, grad[rows], attr[rows], bounds, l1_target[rows])

    def _step_rows(
        self,
        rows: slice,
        grad: np.ndarray,
        attr: np.ndarray,
        bounds: tuple[float, float],
        l1_target: np.ndarray,
    ) -> None:
        alpha_min, alpha_max = bounds
        n = len(grad)
        x, x_in, x_base = self.x[rows], self.x_in[rows], self.x_base[rows]
        total_diff, constant = self.total_diff[rows], self.constant[rows]
        x_min, x_max, start, tmp, mask64 = (b[:n] for b in self._f64.values())
        work, sorted_, mask32 = (b[:n] for b in self._f32.values())
        selected, to_max = (b[:n] for b in self._bool.values())

        np.multiply(total_diff, alpha_min, out=x_min)
        x_min += x_base
        np.multiply(total_diff, alpha_max, out=x_max)
        x_max += x_base
        np.copyto(start, x)
        # PAIR snaps features that lag behind alpha_min to x_min on every pass of its
        # inner loop; later passes only move features forward, so once per step suffices.
        # Features whose input equals the baseline count as being at alpha_max.
        np.subtract(x, x_base, out=tmp)
        np.divide(tmp, total_diff, out=tmp, where=~constant)
        tmp[constant] = alpha_max
        np.less(tmp, alpha_min, out=selected)
        _put(x, x_min, selected, mask64, tmp)
        # |gradient|, +inf for features at x_max: PAIR's exclusion, kept up to date below
        np.abs(grad, out=work, casting="same_kind")
        np.equal(x, x_max, out=selected)
        _exclude(work, selected, mask32, sorted_)

        live = np.ones(n, bool)  # images still short of this step's L1 target
        for _ in range(x.shape[1] + 2):
            np.subtract(x, x_in, out=tmp)
            np.abs(tmp, out=tmp)
            l1_current = tmp.sum(axis=1)
            # math.isclose(l1_target, l1_current, rel_tol=EPSILON, abs_tol=EPSILON)
            close = np.abs(l1_target - l1_current) <= np.maximum(
                EPSILON * np.maximum(np.abs(l1_target), np.abs(l1_current)), EPSILON
            )
            live &= ~close
            np.copyto(sorted_, work)
            sorted_.partition(self.kth, axis=1)
            threshold = sorted_[:, self.kth].copy()
            # selected: |g| <= threshold and not excluded (inf <= inf would select them)
            threshold[np.isinf(threshold)] = np.finfo(np.float32).max
            np.less_equal(work, threshold[:, None], out=selected)
            selected[~live] = False
            np.subtract(x, x_max, out=tmp)
            np.abs(tmp, out=tmp)
            tmp *= selected
            l1_s = tmp.sum(axis=1)
            with np.errstate(divide="ignore", invalid="ignore"):
                gamma = np.where(l1_s > 0, (l1_current - l1_target) / l1_s, np.inf)
            full = live & (gamma > 1.0)
            # gamma > 1: the selection cannot close the gap, so it moves all the way
            np.copyto(to_max, selected)
            to_max[~full] = False
            _put(x, x_max, to_max, mask64, tmp)
            _exclude(work, to_max, mask32, sorted_)
            partial = np.flatnonzero(live & ~full)  # images making their last move
            if len(partial):
                x_part = x[partial]
                moved = x_part + (x_max[partial] - x_part) * gamma[partial, None]
                _put(x_part, moved, selected[partial], mask64[partial], tmp[partial])
                x[partial] = x_part
            live = full
            if not live.any():
                # the gradient is fixed within a step, so its sub-moves add up to one move
                np.subtract(x, start, out=tmp)
                tmp *= grad
                attr += tmp
                return
        raise RuntimeError(
            "Guided IG did not reach a step's L1 target; this is a bug, please report it "
            "with the images and parameters"
        )


def _put(
    dst: np.ndarray, src: np.ndarray, where: np.ndarray, mask: np.ndarray, scratch: np.ndarray
) -> None:
    """``dst[where] = src[where]`` for finite floats, without branches.

    ``dst * (1 - m) + src * m`` is exact for ``m`` in {0, 1}, and several times faster
    than a masked copy when the mask is irregular, as feature selections are.
    """
    np.copyto(mask, where)
    np.multiply(src, mask, out=scratch)
    np.subtract(1.0, mask, out=mask)
    dst *= mask
    dst += scratch


def _exclude(work: np.ndarray, where: np.ndarray, mask: np.ndarray, scratch: np.ndarray) -> None:
    """``work[where] = inf`` without branches: add ``m / (1 - m)``, which is inf or 0."""
    np.copyto(mask, where)
    np.subtract(1.0, mask, out=scratch)
    with np.errstate(divide="ignore"):
        np.divide(mask, scratch, out=scratch)
    work += scratch


def _check_params(x_steps: Any, fraction: Any, max_dist: Any) -> None:
    if isinstance(x_steps, bool) or not isinstance(x_steps, int | np.integer) or x_steps < 1:
        raise InvalidInputError(f"expected x_steps to be a positive int; got {x_steps!r}")
    if not _is_number(fraction) or not 0 < fraction <= 1:
        raise InvalidInputError(
            f"expected fraction in (0, 1] (the share of features moved per sub-step); "
            f"got {fraction!r}"
        )
    if not _is_number(max_dist) or not 0 <= max_dist <= 1:
        raise InvalidInputError(
            f"expected max_dist in [0, 1] (0: straight line, 1: unbounded); got {max_dist!r}"
        )


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | np.number) and not isinstance(value, bool)


def _baseline_batch(x_baseline: Any, images: np.ndarray) -> np.ndarray:
    """``x_baseline`` broadcast to the images' shape, as float32."""
    if x_baseline is None:
        return np.zeros_like(images)
    if not (_is_number(x_baseline) or isinstance(x_baseline, np.ndarray)):
        raise InvalidInputError(
            f"expected x_baseline to be None (zeros), a number or a numpy array; got "
            f"{type(x_baseline).__name__}: convert with numpy.asarray"
        )
    baseline = np.asarray(x_baseline, dtype=np.float32)
    if baseline.ndim not in (0, 3, 4) or baseline.shape not in (
        (),
        images.shape[1:],
        images.shape,
    ):
        raise InvalidInputError(
            f"expected x_baseline of one image's shape {images.shape[1:]} or the batch's "
            f"{images.shape}; got shape {baseline.shape}: pass one baseline per image or a "
            "number"
        )
    if not np.isfinite(baseline).all():
        raise InvalidInputError("expected a finite x_baseline; it contains NaN or infinity")
    return np.ascontiguousarray(np.broadcast_to(baseline, images.shape))


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(GuidedIG)
