"""The ``"road-morf"`` and ``"road-lerf"`` measures: ROAD (Rong et al. 2022).

Rong, Leemann, Borisov, Kasneci and Kasneci. "A Consistent and Efficient Evaluation
Strategy for Attribution Methods" (RemOve And Debias). ICML 2022. arXiv:2202.00449.

Deleting pixels by setting them to a constant leaks the shape of the deleted region, which
a model can read as class evidence. ROAD fills removed pixels with the *noisy linear
imputation*: each removed pixel is the weighted mean of its eight neighbours (1/6 for the
four direct ones, 1/12 for the diagonal ones; a neighbour outside the image is left out
and the weights of the others are not renormalised away, they divide by their own sum),
with the removed pixels solved together as one sparse linear system, plus Gaussian noise
of standard deviation ``noise`` on the removed pixels. Defaults are the reference
implementation's (tleemann/road_evaluation ``imputations.py``, vendored in
pytorch-grad-cam's ``metrics/road.py``): ``noise=0.01`` and the percentiles
10, 20, ..., 90 of its averaged variants.

Here a percentile is the share of pixels *removed*, as in the paper's plots and Quantus's
``ROAD(percentages=...)`` (pytorch-grad-cam's ``ROADMostRelevantFirst(percentile=80)``
instead keeps the pixels below the 80th percentile, removing 20%). MoRF removes the most
relevant pixels first (a faithful map makes the target's probability fall: lower is
better); LeRF the least relevant first (it should stay: higher is better). The score is
the curve's mean over the percentiles, the reference's ``...Average`` measures.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import numpy as np
from scipy import sparse
from scipy.sparse.linalg import spsolve

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_non_negative
from imacs.quality.base import QualityMeasure, QualityResult, pixel_relevance
from imacs.quality.curves import check_score, perturbation_curves, relevance_order

CITATION = (
    "Rong, Leemann, Borisov, Kasneci and Kasneci. A Consistent and Efficient Evaluation "
    "Strategy for Attribution Methods. ICML 2022. arXiv:2202.00449"
)

#: (row offset, column offset, weight) of the eight neighbours in the imputation
NEIGHBOUR_WEIGHTS: tuple[tuple[int, int, float], ...] = (
    (-1, 0, 1 / 6),
    (1, 0, 1 / 6),
    (0, -1, 1 / 6),
    (0, 1, 1 / 6),
    (-1, -1, 1 / 12),
    (-1, 1, 1 / 12),
    (1, -1, 1 / 12),
    (1, 1, 1 / 12),
)


def linear_imputation(image: np.ndarray, removed: np.ndarray) -> np.ndarray:
    """``image`` ``(H, W, C)`` with the ``removed`` pixels ``(H, W)`` bool filled in, no noise.

    Every removed pixel ``p`` satisfies ``s_p x_p = sum_q w_q x_q`` over its neighbours
    ``q`` inside the image, known or removed, where ``s_p`` is the sum of those
    neighbours' weights; all removed pixels are solved at once, every channel with one
    factorisation (``scipy.sparse.linalg.spsolve``).
    """
    h, w, c = image.shape
    flat = image.reshape(h * w, c).astype(np.float64)
    unknown = np.flatnonzero(removed.reshape(-1))
    if len(unknown) == 0:
        return image.astype(np.float32, copy=True)
    variable = np.full(h * w, -1, dtype=np.int64)
    variable[unknown] = np.arange(len(unknown))
    rows, cols = np.divmod(unknown, w)
    diagonal = np.zeros(len(unknown))
    right_side = np.zeros((len(unknown), c))
    entries_row, entries_col, entries_value = [], [], []
    for dr, dc, weight in NEIGHBOUR_WEIGHTS:
        r, q = rows + dr, cols + dc
        inside = (r >= 0) & (r < h) & (q >= 0) & (q < w)
        diagonal[inside] += weight
        neighbour = r[inside] * w + q[inside]
        equation = np.flatnonzero(inside)
        known = variable[neighbour] < 0
        right_side[equation[known]] += weight * flat[neighbour[known]]
        entries_row.append(equation[~known])
        entries_col.append(variable[neighbour[~known]])
        entries_value.append(np.full(int((~known).sum()), -weight))
    entries_row.append(np.arange(len(unknown)))
    entries_col.append(np.arange(len(unknown)))
    entries_value.append(diagonal)
    system = sparse.csc_matrix(
        (np.concatenate(entries_value), (np.concatenate(entries_row), np.concatenate(entries_col))),
        shape=(len(unknown), len(unknown)),
    )
    solution = np.asarray(spsolve(system, right_side)).reshape(len(unknown), c)
    filled = flat.copy()
    filled[unknown] = solution
    return filled.reshape(h, w, c).astype(np.float32)


def noisy_linear_imputation(
    image: np.ndarray, removed: np.ndarray, noise: float, rng: np.random.Generator
) -> np.ndarray:
    """:func:`linear_imputation` plus ``N(0, noise^2)`` on every channel of the removed pixels."""
    filled = linear_imputation(image, removed)
    if noise > 0:
        count = int(removed.sum())
        filled[removed] += (noise * rng.standard_normal((count, image.shape[2]))).astype(np.float32)
    return filled


class _Road(QualityMeasure):
    citation = CITATION
    version = "1"
    requires: ClassVar[frozenset[str]] = frozenset()
    most_relevant_first: ClassVar[bool] = True

    def __init__(
        self,
        percentiles: Sequence[float] = (10, 20, 30, 40, 50, 60, 70, 80, 90),
        noise: float = 0.01,
        score: str = "probability",
    ):
        values = [float(p) for p in percentiles]
        if not values or any(not 0 <= p <= 100 for p in values):
            raise InvalidInputError(
                f"expected percentiles to be a non-empty list of numbers in [0, 100]; "
                f"got {percentiles!r}"
            )
        check_non_negative(noise, "noise")
        check_score(score)
        self.percentiles = percentiles
        self.noise = noise
        self.score = score

    def _evaluate(
        self,
        model: ModelAdapter,
        images: np.ndarray,
        targets: np.ndarray,
        maps: np.ndarray,
        method: AttributionMethod | None,
        seed: int,
        batch_size: int,
    ) -> QualityResult:
        _, h, w, _ = images.shape
        relevance = pixel_relevance(maps)
        place = relevance_order(relevance if self.most_relevant_first else -relevance)
        fractions = np.array([float(p) for p in self.percentiles]) / 100.0
        counts = np.rint(fractions * h * w).astype(np.int64)

        def build(i: int, steps: np.ndarray, out: np.ndarray) -> None:
            for j, s in enumerate(steps):
                out[j] = noisy_linear_imputation(
                    images[i],
                    (place[i] < counts[s]).reshape(h, w),
                    float(self.noise),
                    np.random.default_rng([seed, i, int(s)]),
                )

        curves = perturbation_curves(
            model,
            targets,
            len(counts),
            build,
            score=self.score,
            batch_size=batch_size,
            image_shape=images.shape[1:],
        )
        return self.result(curves.mean(axis=1), curves=curves, curve_x=fractions)


class RoadMostRelevantFirst(_Road):
    """ROAD, most relevant pixels removed first: mean target probability over percentiles.

    Lower is better. Parameters: ``percentiles`` (shares of pixels removed, in percent;
    default 10..90), ``noise`` (default 0.01, in the images' pixel units), ``score``
    (``"probability"``; ``"correct"`` gives the paper's accuracy, ``"output"``,
    ``"target"``).
    """

    name = "road-morf"
    higher_is_better = False
    most_relevant_first = True


class RoadLeastRelevantFirst(_Road):
    """ROAD, least relevant pixels removed first. Higher is better; parameters as MoRF."""

    name = "road-lerf"
    higher_is_better = True
    most_relevant_first = False


@hookimpl
def register_quality_measures(register: Register) -> None:
    register(RoadMostRelevantFirst)
    register(RoadLeastRelevantFirst)
