"""Split Integrated Gradients: the part of IG gathered before the output saturates.

Miglani, Kokhlikyan, Alsallakh, Martin, Reblitz-Richardson. "Investigating Saturation
Effects in Integrated Gradients". ICML 2020 workshop on Human Interpretability.
arXiv:2010.12697. Reference code: github.com/vivekmig/captum-1, branch ``ExpandedIG``
(``split_ig`` in ``notebooks/ImageNetSplitIG-Basic.ipynb``).

Along the straight path from the baseline ``x'`` to ``x`` with right-Riemann points
``alpha_i = i / n`` (``i = 1..n``), the target score climbs from ``F(x')`` to ``F(x)``.
The path is split at the first point whose score passes
``F(x') + ratio * (F(x) - F(x'))``: IG summed over the points before it is the *left*
(unsaturated) part, returned as the map; the rest is the *right* (saturated) part.
``left + right`` is ordinary IG with ``quadrature="riemann_right"``.
"""

from __future__ import annotations

from dataclasses import dataclass
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
from imacs.attribution.integrated_gradients import straight_path
from imacs.attribution.paths import evaluate_points
from imacs.attribution.quadrature import check_quadrature, riemann_right
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_seed


@dataclass
class SplitIGResult(AttributionResult):
    """Split IG's maps (the left part) with what the split leaves on the right.

    ``saturated_maps`` ``(N, H, W, C)``: IG over the points at and after the split (the
    right part); ``maps + saturated_maps`` is IG. ``split_index`` ``(N,)``: how many path
    points fall in the left part (``0..n_steps``), so the split lies at
    ``alpha = split_index / n_steps``.
    """

    saturated_maps: np.ndarray | None = None
    split_index: np.ndarray | None = None


class SplitIntegratedGradients(AttributionMethod):
    """The unsaturated part of Integrated Gradients.

    Parameters
    ----------
    ratio:
        Fraction of the score change ``F(x) - F(x')`` at which the path is split. Default
        0.5, the reference ``split_ig`` function's default; the paper's dataset experiment
        uses 0.95 and its single-image demo 0.9.
    n_steps:
        Right-Riemann points on the path. Default 50 (Captum's IG default, which the
        reference ``IntegratedGradientsExp`` keeps); the experiments use 200, which places
        the split more finely.
    baseline:
        One baseline, as for IG (``"black"`` by default; ``"white"``, ``"uniform"``,
        ``"blurred"``, a number or an array). A list is refused: every baseline would
        split at its own point.
    pixel_range, blur_sigma, seed:
        As for :class:`~imacs.attribution.integrated_gradients.IntegratedGradients`.

    The split uses the direction of the change: the first point whose score has moved
    past the threshold from ``F(x')``'s side (``F > thr`` when the score rises, the
    reference rule; ``F < thr`` when it falls). When ``F(x) == F(x')`` nothing is split
    off and the left part is all of IG. ``attribute`` returns a :class:`SplitIGResult`;
    its ``convergence_delta`` is the completeness error of the whole IG (left + right).
    """

    name = "split-ig"
    citation = "Miglani et al., ICML 2020 WHI workshop, arXiv:2010.12697"

    def __init__(
        self,
        *,
        ratio: float = 0.5,
        n_steps: int = 50,
        baseline: Any = "black",
        pixel_range: Any = (0.0, 1.0),
        blur_sigma: float = 10.0,
        seed: int = 0,
    ):
        if (
            isinstance(ratio, bool)
            or not isinstance(ratio, int | float | np.number)
            or not 0 <= ratio <= 1
        ):
            raise InvalidInputError(f"expected ratio to be a number in [0, 1]; got {ratio!r}")
        check_quadrature("riemann_right", n_steps)
        if len(baseline_specs(baseline)) != 1:
            raise InvalidInputError(
                "expected one baseline for Split IG; got a list: each baseline would split at "
                "its own point, so run Split IG once per baseline"
            )
        check_pixel_range(pixel_range)
        check_blur_sigma(blur_sigma)
        check_seed(seed)
        self.ratio = ratio
        self.n_steps = n_steps
        self.baseline = baseline
        self.pixel_range = pixel_range
        self.blur_sigma = blur_sigma
        self.seed = seed

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> SplitIGResult:
        n_images = len(images)
        alphas, weights = riemann_right(self.n_steps)
        baseline = make_baselines(
            self.baseline,
            images,
            pixel_range=self.pixel_range,
            blur_sigma=self.blur_sigma,
            seed=self.seed,
        )[0]
        diffs = images - baseline
        scores = model.scores(
            np.concatenate([images, baseline]), np.tile(targets, 2), batch_size=batch_size
        ).astype(np.float64)
        score_x, score_baseline = scores[:n_images], scores[n_images:]
        threshold = score_baseline + self.ratio * (score_x - score_baseline)
        direction = np.sign(score_x - score_baseline)

        left = np.zeros(images.shape)
        right = np.zeros(images.shape)
        crossed = np.zeros(n_images, dtype=bool)
        split_index = np.full(n_images, self.n_steps, dtype=np.int64)
        weights32 = weights.astype(np.float32)

        def fold(
            owners: np.ndarray, steps: np.ndarray, values: np.ndarray, grads: np.ndarray
        ) -> None:
            passed = direction[owners] * (values.astype(np.float64) - threshold[owners]) > 0
            grads *= weights32[steps, None, None, None]
            # points arrive image-major and in step order: each image's run is contiguous,
            # and once an image has crossed, all its later points are on the right
            images_here, run_starts = np.unique(owners, return_index=True)
            run_ends = [*run_starts[1:], len(owners)]
            for image, first, last in zip(images_here, run_starts, run_ends, strict=True):
                n_left = 0
                if not crossed[image]:
                    hits = np.flatnonzero(passed[first:last])
                    n_left = int(hits[0]) if len(hits) else last - first
                    if len(hits):
                        crossed[image] = True
                        split_index[image] = steps[first + n_left]
                left[image] += grads[first : first + n_left].sum(axis=0, dtype=np.float64)
                right[image] += grads[first + n_left : last].sum(axis=0, dtype=np.float64)

        evaluate_points(
            model,
            targets,
            self.n_steps,
            straight_path(baseline, diffs, alphas),
            fold,
            batch_size,
        )
        left *= diffs
        right *= diffs
        delta = (left + right).reshape(n_images, -1).sum(axis=1) - (score_x - score_baseline)
        return SplitIGResult(
            left,
            self.name,
            self.get_params(),
            convergence_delta=delta,
            saturated_maps=right.astype(np.float32),
            split_index=split_index,
        )


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(SplitIntegratedGradients)
