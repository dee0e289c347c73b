"""Sanity checks of attribution maps: model-parameter randomisation and random logit.

Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. "Sanity Checks for Saliency Maps".
NeurIPS 2018. arXiv:1810.03292. If a method's maps of a trained model look like its maps
of the same network with its weights re-initialised, they cannot be telling us what the
model learnt. The **cascading** test re-initialises the layers from the logits downwards,
cumulatively, and compares the maps after each step with the trained model's; the
**independent** test re-initialises one layer at a time. Maps are compared by Spearman
rank correlation (signed, and of absolute values), SSIM and the correlation of HOG
features, the paper's four similarities. The **random-logit** test (Sixt, Granz and
Landgraf, "When Explanations Lie", ICML 2020, as Quantus implements it) compares the map
of the target class with the map of a random other class: a method whose maps do not
depend on the class explains no decision.

The re-initialisation is the adapters' (capability ``"randomise"``, see
:func:`imacs.adapters.randomisation.new_parameters`): PyTorch's default rule, drawn
alike in every framework. How to read the results, and the critiques of the test
(Yona and Greenfeld 2021; Binder et al. 2023; Hedström et al. 2023), are in
``docs/quality.md``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import DEFAULT_BATCH_SIZE, AttributionMethod
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.images import as_image_batch, as_targets
from imacs.metrics.spearman import SpearmanRankCorrelation
from imacs.metrics.ssim import mean_ssim, window_size
from imacs.parameters import check_seed
from imacs.quality.base import QualityMeasure, QualityResult, as_maps, image_rng

CITATION = (
    "Adebayo, Gilmer, Muelly, Goodfellow, Hardt, Kim. Sanity Checks for Saliency Maps. "
    "NeurIPS 2018. arXiv:1810.03292"
)
RANDOM_LOGIT_CITATION = (
    "Sixt, Granz, Landgraf. When Explanations Lie: Why Many Modified BP Attributions Fail. "
    "ICML 2020; defaults of Quantus's RandomLogit (Hedström et al., JMLR 2023)"
)

#: the similarities of Adebayo et al.: Spearman of signed maps, of absolute maps, SSIM, HOG
SIMILARITIES = ("spearman", "spearman_abs", "ssim", "hog")
MODES = ("cascading", "independent")


def _pixel_maps(maps: np.ndarray) -> np.ndarray:
    """``(N, H, W)`` float64: maps summed over channels (signed), as all four compare them."""
    m = np.asarray(maps, dtype=np.float64)
    return m.sum(axis=-1) if m.ndim == 4 else m


def _unit_abs(maps: np.ndarray) -> np.ndarray:
    """Absolute maps, each divided by its largest value, into ``[0, 1]``."""
    a = np.abs(maps)
    top = a.max(axis=(1, 2), keepdims=True)
    return a / np.where(top > 0, top, 1.0)


def hog_cell(height: int, width: int) -> int:
    """HOG cell side for a map: 8 pixels (scikit-image's default) or a quarter of its side."""
    return max(2, min(8, min(height, width) // 4))


def hog_features(maps: np.ndarray) -> np.ndarray:
    """``(N, F)`` HOG descriptors of absolute maps scaled to ``[0, 1]``.

    :func:`skimage.feature.hog` with 9 orientations, square cells of :func:`hog_cell`
    pixels and 2x2-cell blocks (L2-Hys), so that a 16x16 map still has a block.
    """
    from skimage.feature import hog

    scaled = _unit_abs(maps)
    cell = hog_cell(*scaled.shape[1:])
    return np.stack(
        [
            hog(m, orientations=9, pixels_per_cell=(cell, cell), cells_per_block=(2, 2))
            for m in scaled
        ]
    )


def _pearson_rows(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    a = a - a.mean(axis=1, keepdims=True)
    b = b - b.mean(axis=1, keepdims=True)
    norm = np.sqrt((a * a).sum(axis=1) * (b * b).sum(axis=1))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = (a * b).sum(axis=1) / norm
    return np.where(norm > 0, np.clip(r, -1.0, 1.0), 0.0)


def map_similarity(maps_a: Any, maps_b: Any, similarity: str) -> np.ndarray:
    """One similarity per pair of maps ``(N,)``, by one of :data:`SIMILARITIES`.

    Maps ``(N, H, W)`` or ``(N, H, W, C)`` are summed over channels first.

    - ``"spearman"``: rank correlation of the signed maps;
    - ``"spearman_abs"``: rank correlation of their absolute values (the default of
      Quantus's MPRT, and the paper's "absolute value" variant);
    - ``"ssim"``: SSIM (scikit-image's defaults, 7x7 window or the largest that fits) of
      the absolute maps, each scaled to ``[0, 1]`` by its maximum, ``data_range=1``;
    - ``"hog"``: Pearson correlation of the two maps' HOG descriptors
      (:func:`hog_features`).

    Constant maps have no ranks or gradients: their Spearman and HOG similarity is 0.
    """
    a, b = _pixel_maps(maps_a), _pixel_maps(maps_b)
    if a.shape != b.shape:
        raise InvalidInputError(f"expected maps of one shape; got {a.shape} and {b.shape}")
    if similarity == "spearman":
        return SpearmanRankCorrelation().score_batch(a, b)
    if similarity == "spearman_abs":
        return SpearmanRankCorrelation().score_batch(np.abs(a), np.abs(b))
    if similarity == "ssim":
        return mean_ssim(_unit_abs(a), _unit_abs(b), window_size(*a.shape[1:]), 1.0)
    if similarity == "hog":
        return _pearson_rows(hog_features(a), hog_features(b))
    raise InvalidInputError(
        f"unknown similarity {similarity!r}: expected one of {', '.join(SIMILARITIES)}"
    )


def randomisation_steps(layers: Sequence[str], mode: str) -> list[list[str]]:
    """The layers re-initialised at each step of the test.

    ``"cascading"``: the last layer, then the last two, ... then all (from the logits
    downwards, cumulatively); ``"independent"``: each layer alone, from the last.
    """
    if mode not in MODES:
        raise InvalidInputError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
    names = list(layers)
    if not names:
        raise InvalidInputError("the model has no layers with parameters to randomise")
    if mode == "cascading":
        return [names[len(names) - k :] for k in range(1, len(names) + 1)]
    return [[name] for name in reversed(names)]


@dataclass
class RandomisationResult:
    """The model-parameter randomisation test on a set of images.

    ``steps[s]`` lists the layers re-initialised at step ``s`` (the order of
    :func:`randomisation_steps`); ``similarity[name]`` is ``(N, S)``: each image's
    similarity between the trained model's map and the map after step ``s``.
    """

    mode: str
    steps: list[list[str]]
    similarity: dict[str, np.ndarray]

    @property
    def labels(self) -> list[str]:
        """A name per step: the lowest layer reached (cascading) or the layer (independent)."""
        return [step[0] for step in self.steps]

    def final(self, similarity: str) -> np.ndarray:
        """Per image: after the full cascade, or the mean over layers (independent)."""
        values = self.similarity[similarity]
        return values[:, -1] if self.mode == "cascading" else values.mean(axis=1)


def model_randomisation(
    model: ModelAdapter,
    images: Any,
    targets: Any,
    method: AttributionMethod,
    *,
    mode: str = "cascading",
    similarities: Sequence[str] = SIMILARITIES,
    layers: Sequence[str] | None = None,
    maps: Any = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> RandomisationResult:
    """Adebayo et al.'s model-parameter randomisation test of ``method`` on ``model``.

    For each step of :func:`randomisation_steps` (over ``layers``, by default
    ``model.parameter_layers()``), a randomised copy of the model (seeded by ``seed``)
    explains the same images for the same ``targets``, and its maps are compared with
    ``maps`` (computed with ``method`` on the trained model when not given) by each of
    ``similarities``. The model itself is left untouched.
    """
    check_seed(seed)
    model.require("randomise", by="the model-parameter randomisation test")
    unknown = [s for s in similarities if s not in SIMILARITIES]
    if unknown:
        raise InvalidInputError(
            f"unknown similarity {', '.join(map(repr, unknown))}: expected some of "
            f"{', '.join(SIMILARITIES)}"
        )
    x = as_image_batch(images)
    if model.num_classes is None:
        model.predict(x[:1])
    t = as_targets(targets, len(x), model.num_classes)
    original = (
        method.attribute(model, x, t, batch_size=batch_size).maps
        if maps is None
        else as_maps(maps, x.shape)
    )
    steps = randomisation_steps(model.parameter_layers() if layers is None else layers, mode)
    scores = {name: np.zeros((len(x), len(steps))) for name in similarities}
    for s, step in enumerate(steps):
        copy = model.randomised_copy(step, seed=seed)
        randomised = method.attribute(copy, x, t, batch_size=batch_size).maps
        for name in similarities:
            scores[name][:, s] = map_similarity(original, randomised, name)
    return RandomisationResult(mode, steps, scores)


def random_other_classes(targets: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """For each image, a class other than its target, uniformly, from ``image_rng(seed, i)``."""
    if n_classes < 2:
        raise InvalidInputError("the random-logit test needs a model with two classes or more")
    others = np.empty(len(targets), dtype=np.int64)
    for i, target in enumerate(targets):
        pick = int(image_rng(seed, i).integers(n_classes - 1))
        others[i] = pick + (pick >= target)
    return others


def random_logit(
    model: ModelAdapter,
    images: Any,
    targets: Any,
    method: AttributionMethod,
    *,
    similarity: str = "ssim",
    maps: Any = None,
    seed: int = 0,
    batch_size: int = DEFAULT_BATCH_SIZE,
) -> np.ndarray:
    """Per image, the similarity of the target's map and a random other class's map."""
    x = as_image_batch(images)
    if model.num_classes is None:
        model.predict(x[:1])
    n_classes = int(model.num_classes or 0)
    t = as_targets(targets, len(x), n_classes)
    original = (
        method.attribute(model, x, t, batch_size=batch_size).maps
        if maps is None
        else as_maps(maps, x.shape)
    )
    others = random_other_classes(t, n_classes, seed)
    other_maps = method.attribute(model, x, others, batch_size=batch_size).maps
    return map_similarity(original, other_maps, similarity)


# -- the two tests as quality measures ----------------------------------------------------


class ModelRandomisation(QualityMeasure):
    """The model-parameter randomisation test (MPRT): similarity to a randomised model's maps.

    Lower is better: maps that change when the weights are re-initialised depend on what
    the model learnt. The score of an image is its ``similarity`` after the full cascade
    (``mode="cascading"``, every layer re-initialised) or the mean over layers
    re-initialised one at a time (``mode="independent"``); the curve holds every step.
    ``similarity`` is one of ``"spearman_abs"`` (default, as Quantus's ``MPRT``),
    ``"spearman"``, ``"ssim"`` or ``"hog"``; ``layers`` restricts the test to some of
    ``parameter_layers()``. Copies are seeded by ``evaluate``'s ``seed`` (Quantus: 42).
    """

    name = "model-randomisation"
    citation = CITATION
    higher_is_better: ClassVar[bool] = False
    needs_method: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset({"randomise"})

    def __init__(
        self,
        *,
        mode: str = "cascading",
        similarity: str = "spearman_abs",
        layers: list[str] | None = None,
    ):
        if mode not in MODES:
            raise InvalidInputError(f"unknown mode {mode!r}: expected one of {', '.join(MODES)}")
        if similarity not in SIMILARITIES:
            raise InvalidInputError(
                f"unknown similarity {similarity!r}: expected one of {', '.join(SIMILARITIES)}"
            )
        self.mode = mode
        self.similarity = similarity
        self.layers = layers

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
        assert method is not None  # evaluate() refuses a missing method
        result = model_randomisation(
            model,
            images,
            targets,
            method,
            mode=self.mode,
            similarities=[self.similarity],
            layers=self.layers,
            maps=maps,
            seed=seed,
            batch_size=batch_size,
        )
        curves = result.similarity[self.similarity]
        return self.result(
            result.final(self.similarity),
            curves=curves,
            curve_x=np.arange(1, curves.shape[1] + 1, dtype=np.float64),
        )


class RandomLogit(QualityMeasure):
    """The random-logit test: similarity of the target's map to a random other class's.

    Lower is better: a map that does not change with the class explains no decision.
    ``similarity`` defaults to ``"ssim"``, and the other class is drawn uniformly among
    the rest, per image from the seed, as in Quantus's ``RandomLogit``.
    """

    name = "random-logit"
    citation = RANDOM_LOGIT_CITATION
    higher_is_better: ClassVar[bool] = False
    needs_method: ClassVar[bool] = True
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, similarity: str = "ssim"):
        if similarity not in SIMILARITIES:
            raise InvalidInputError(
                f"unknown similarity {similarity!r}: expected one of {', '.join(SIMILARITIES)}"
            )
        self.similarity = similarity

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
        assert method is not None
        scores = random_logit(
            model,
            images,
            targets,
            method,
            similarity=self.similarity,
            maps=maps,
            seed=seed,
            batch_size=batch_size,
        )
        return self.result(scores)


@hookimpl
def register_quality_measures(register: Register) -> None:
    register(ModelRandomisation)
    register(RandomLogit)
