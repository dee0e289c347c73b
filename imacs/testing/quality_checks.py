"""The conformance suite for quality measures.

``check_quality_measure`` runs a measure on a model, a few images and their maps, and
raises one ``AssertionError`` listing every way the measure departs from the contract:

- ``evaluate`` returns a :class:`~imacs.quality.base.QualityResult` named for the measure,
  with one finite float64 score per image, and curves (where there are any) of one row
  per image, finite, sampled at as many points as ``curve_x`` holds;
- scores do not depend on ``batch_size`` (1, 7 and one large batch agree within ``atol``
  plus ``rtol`` of the largest score);
- two calls with one seed give identical scores, and the caller's arrays are left alone;
- no model call ever receives more than ``batch_size`` inputs (checked through a
  :class:`~imacs.testing.RecordingAdapter`);
- a measure that ``needs_method`` refuses to run without one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod
from imacs.errors import InvalidInputError
from imacs.quality.base import QualityMeasure, QualityResult
from imacs.testing.attribution_checks import BATCH_SIZES, RecordingAdapter
from imacs.testing.reporting import run_checks


def check_quality_measure(
    measure: QualityMeasure,
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    maps: np.ndarray,
    *,
    method: AttributionMethod | None = None,
    seed: int = 0,
    rtol: float = 1e-5,
    atol: float = 1e-6,
) -> None:
    """Run every quality-measure check on ``images`` ``(N, H, W, C)``, targets and maps.

    Use four to eight small images. ``method`` is the attribution method that made
    ``maps``, needed by measures that recompute maps. ``rtol`` and ``atol`` bound how far
    scores may move with ``batch_size``: a model's float32 convolutions round differently
    by batch size in the last bits, which a score of probabilities carries through.
    """
    images = np.asarray(images, dtype=np.float32)
    targets = np.asarray(targets)
    maps = np.asarray(maps, dtype=np.float32)
    first: list[QualityResult] = []

    def evaluate(adapter: ModelAdapter, batch_size: int, run_seed: int = seed) -> QualityResult:
        result = measure.evaluate(
            adapter, images, targets, maps, method=method, seed=run_seed, batch_size=batch_size
        )
        assert isinstance(result, QualityResult), (
            f"evaluate returned {type(result).__name__}; expected a QualityResult"
        )
        return result

    def one_finite_score_per_image() -> None:
        result = evaluate(model, BATCH_SIZES[-1])
        assert result.measure == measure.name, (
            f"result.measure is {result.measure!r}; expected the measure's name {measure.name!r}"
        )
        assert result.scores.shape == (len(images),), (
            f"scores have shape {result.scores.shape}; expected one per image ({len(images)},)"
        )
        assert result.scores.dtype == np.float64, f"scores have dtype {result.scores.dtype}"
        assert np.isfinite(result.scores).all(), "scores contain NaN or infinity"
        if result.curves is not None:
            curves = np.asarray(result.curves)
            assert curves.ndim == 2 and len(curves) == len(images), (
                f"curves have shape {curves.shape}; expected (N, S) with N = {len(images)}"
            )
            assert np.isfinite(curves).all(), "curves contain NaN or infinity"
            curve_x = np.asarray(result.curve_x)
            assert curve_x.shape == curves.shape[1:], (
                f"curve_x has shape {curve_x.shape}; expected ({curves.shape[1]},)"
            )
        first.append(result)

    def batch_size_does_not_matter() -> None:
        assert first, "no scores to compare with"
        reference = first[0].scores
        tolerance = atol + rtol * max(float(np.abs(reference).max()), 1e-12)
        for batch_size in BATCH_SIZES[:-1]:
            scores = evaluate(model, batch_size).scores
            error = float(np.abs(scores - reference).max())
            assert error <= tolerance, (
                f"scores with batch_size={batch_size} differ from batch_size={BATCH_SIZES[-1]} "
                f"by up to {error:.3g} (allowed {tolerance:.3g}): results must not depend on "
                "how the work is split; draw random numbers per image, not per batch, and "
                "never normalise over a batch"
            )

    def determinism() -> None:
        before = (images.copy(), targets.copy(), maps.copy())
        once = evaluate(model, 7).scores
        for name, array, copy in zip(
            ("images", "targets", "maps"), (images, targets, maps), before, strict=True
        ):
            assert np.array_equal(array, copy), f"the measure modified the caller's {name}"
        again = evaluate(model, 7).scores
        assert np.array_equal(once, again), (
            f"two calls with seed={seed} gave different scores: take randomness from the seed"
        )

    def respects_batch_size() -> None:
        recorder = RecordingAdapter(model)
        for batch_size in BATCH_SIZES[:2]:
            recorder.reset()
            evaluate(recorder, batch_size)
            assert recorder.largest_batch <= batch_size, (
                f"with batch_size={batch_size} the model received {recorder.largest_batch} "
                "inputs in one call"
            )

    def refuses_to_run_without_a_method() -> None:
        if not measure.needs_method:
            return
        try:
            measure.evaluate(model, images, targets, maps, method=None, seed=seed)
        except InvalidInputError:
            return
        raise AssertionError("needs_method is set, yet evaluate ran without a method")

    checks: list[tuple[str, Any]] = [
        ("one_finite_score_per_image", one_finite_score_per_image),
        ("batch_size_does_not_matter", batch_size_does_not_matter),
        ("determinism", determinism),
        ("respects_batch_size", respects_batch_size),
        ("refuses_to_run_without_a_method", refuses_to_run_without_a_method),
    ]
    run_checks(f"quality measure {measure.name!r}", checks)
