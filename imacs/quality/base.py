"""The quality-measure interface: can a model's attribution maps be trusted?

A quality measure scores attribution maps against the model they explain: it perturbs the
images where the maps point and watches the model's output (insertion, deletion, ROAD,
infidelity), or recomputes maps on changed inputs or a changed model (max-sensitivity, the
randomisation test). It therefore needs the model, unlike a :class:`~imacs.MapMetric`,
which compares two maps on their own.

Every measure answers one score per image, so a dataset's score is a mean over images
with a confidence interval resampled over images, and a sample of images can be scored
image by image and combined later. Measures whose score is the area under a curve keep
the curve too.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import DEFAULT_BATCH_SIZE, AttributionMethod
from imacs.components import Component
from imacs.errors import InvalidInputError
from imacs.images import as_image_batch, as_targets
from imacs.parameters import check_seed

#: resamples of the percentile bootstrap behind every quality confidence interval
BOOTSTRAP_RESAMPLES = 2000


def bootstrap_interval(
    scores: np.ndarray,
    *,
    level: float = 0.95,
    n_resamples: int = BOOTSTRAP_RESAMPLES,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``scores``, resampling images.

    Draws ``n_resamples`` samples of the images with replacement, takes each sample's mean,
    and returns the ``(1 - level) / 2`` and ``(1 + level) / 2`` quantiles of those means
    (Efron and Tibshirani, "An Introduction to the Bootstrap", 1993, ch. 13). One image
    gives the interval ``(score, score)``; none gives ``(nan, nan)``.
    """
    values = np.asarray(scores, dtype=np.float64).reshape(-1)
    if not 0.0 < level < 1.0:
        raise InvalidInputError(f"expected level in (0, 1); got {level!r}")
    if len(values) == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, len(values), size=(n_resamples, len(values)))
    means = values[draws].mean(axis=1)
    low, high = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return (float(low), float(high))


@dataclass
class QualityResult:
    """One quality measure's answer for a set of images.

    ``scores`` holds one float64 per image. Measures built on a curve (insertion,
    deletion, ROAD, positive/negative perturbation) keep each image's curve in ``curves``
    ``(N, S)``, sampled at ``curve_x`` ``(S,)`` (the fraction of pixels changed, or the
    percentile removed). ``higher_is_better`` says which way round the score reads.
    """

    measure: str
    scores: np.ndarray
    higher_is_better: bool
    params: dict[str, Any] = field(default_factory=dict)
    curves: np.ndarray | None = None
    curve_x: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.scores)

    @property
    def mean(self) -> float:
        """The mean score over images."""
        return float(np.mean(self.scores)) if len(self.scores) else float("nan")

    def confidence_interval(self, level: float = 0.95, *, seed: int = 0) -> tuple[float, float]:
        """A percentile-bootstrap interval of :attr:`mean` over images.

        See :func:`bootstrap_interval`.
        """
        return bootstrap_interval(self.scores, level=level, seed=seed)

    def summary(self, level: float = 0.95, *, seed: int = 0) -> dict[str, Any]:
        """One row for a table: measure, images, mean, interval, and which way is better."""
        low, high = self.confidence_interval(level, seed=seed)
        return {
            "measure": self.measure,
            "n_images": len(self.scores),
            "mean": self.mean,
            "ci_low": low,
            "ci_high": high,
            "level": level,
            "higher_is_better": self.higher_is_better,
        }


class QualityMeasure(Component, abc.ABC):
    """Base class of quality measures. Subclasses implement ``_evaluate``.

    ``evaluate(model, images, targets, maps)`` scores each image's map against the model.
    Measures that recompute maps (max-sensitivity, the randomisation test) set
    ``needs_method = True`` and receive the attribution method that made ``maps``;
    ``requires`` names the adapter capabilities the measure itself calls (forward passes
    need none). Randomness comes from ``seed`` alone, drawn per image (the generator
    ``numpy.random.default_rng([seed, i])`` for the image at position ``i``), so an
    image's score does not depend on ``batch_size``; ``batch_size`` is the most inputs
    sent to the model in one call, whatever the measure multiplies (steps x images x
    samples). ``imacs.testing.check_quality_measure`` checks all of this.
    """

    #: True when a higher score means more trustworthy maps.
    higher_is_better: ClassVar[bool] = True
    #: True when the measure recomputes maps and needs the attribution method.
    needs_method: ClassVar[bool] = False

    def evaluate(
        self,
        model: ModelAdapter,
        images: Any,
        targets: Any,
        maps: Any,
        *,
        method: AttributionMethod | None = None,
        seed: int = 0,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> QualityResult:
        """Score ``maps`` ``(N, H, W, C)`` or ``(N, H, W)`` of ``images`` for ``targets``.

        ``method`` is the attribution method that made ``maps``; measures with
        ``needs_method`` use it to recompute maps and raise without it.
        """
        if not isinstance(model, ModelAdapter):
            raise InvalidInputError(
                f"expected a model adapter; got {type(model).__name__}: wrap the model with "
                "imacs.load_model(model) first"
            )
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise InvalidInputError(f"expected batch_size to be a positive int; got {batch_size!r}")
        check_seed(seed)
        if self.needs_method and not isinstance(method, AttributionMethod):
            raise InvalidInputError(
                f"quality measure {self.name!r} recomputes maps and needs the attribution "
                f"method that made them: pass method=imacs.get_method(name); got {method!r}"
            )
        for capability in self.requires:
            model.require(capability, by=f"quality measure {self.name!r}")
        x = as_image_batch(images)
        if model.num_classes is None:
            model.predict(x[:1])
        t = as_targets(targets, len(x), model.num_classes)
        m = as_maps(maps, x.shape)
        result = self._evaluate(model, x, t, m, method, int(seed), batch_size)
        scores = np.asarray(result.scores, dtype=np.float64)
        if scores.shape != (len(x),):
            raise InvalidInputError(
                f"quality measure {self.name!r} returned scores of shape {scores.shape} for "
                f"{len(x)} images; expected one score per image"
            )
        result.scores = scores
        return result

    @abc.abstractmethod
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
        """Score validated float32 images, int64 targets and float32 ``(N, H, W, C')`` maps.

        ``C'`` is the images' channel count or 1 (maps given as ``(N, H, W)``).
        """

    def result(self, scores: np.ndarray, **extra: Any) -> QualityResult:
        """A :class:`QualityResult` of this measure, with its parameters filled in."""
        return QualityResult(
            measure=self.name,
            scores=np.asarray(scores, dtype=np.float64),
            higher_is_better=self.higher_is_better,
            params=self.get_params(),
            **extra,
        )


def as_maps(maps: Any, image_shape: tuple[int, ...]) -> np.ndarray:
    """``maps`` as float32 ``(N, H, W, C)`` or ``(N, H, W, 1)``, checked against the images."""
    m = np.asarray(getattr(maps, "maps", maps), dtype=np.float32)
    if m.ndim == 3:
        m = m[..., None]
    n, h, w, c = image_shape
    if m.ndim != 4 or m.shape[:3] != (n, h, w) or m.shape[3] not in (1, c):
        raise InvalidInputError(
            f"expected maps of shape (N, H, W) or (N, H, W, C) matching images of shape "
            f"{tuple(image_shape)}; got {m.shape}"
        )
    if not np.all(np.isfinite(m)):
        raise InvalidInputError("expected finite maps; got NaN or infinity")
    return m


def pixel_relevance(maps: np.ndarray) -> np.ndarray:
    """One relevance per pixel ``(N, H * W)``: the map summed over channels (signed)."""
    return maps.sum(axis=3, dtype=np.float64).reshape(len(maps), -1)


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random generator of the image at position ``index``, under ``seed``."""
    return np.random.default_rng([seed, index])
