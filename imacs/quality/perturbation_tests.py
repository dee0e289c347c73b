"""The Barkan papers' perturbation tests: POS/NEG perturbation AUC, ADP and PIC.

The measures DIX (Barkan et al., CIKM 2023), IIA (Barkan et al., ICCV 2023) and LTX
(Barkan et al., ICDM 2023, arXiv:2310.16584) report, after the transformer-explainability
line they follow (Chefer, Gur and Wolf, "Transformer Interpretability Beyond Attention
Visualization", CVPR 2021, arXiv:2012.09838) and, for ADP/PIC, Jung and Oh ("Towards
Better Explanations of Class Activation Mapping", ICCV 2021). Defaults are the LTX
reference code's (LTX-Code/LTX, ``evaluation/perturbation_tests/`` and
``cnn_baselines/evaluation/adp_pic_eval_from_hdf5.py``):

- **positive / negative perturbation** (``"positive-perturbation"``,
  ``"negative-perturbation"``): for each step ``k`` in 0.1, ..., 0.9, the ``int(k * H * W)``
  pixels the map ranks highest (positive) or lowest (negative) are set to 0 in every
  channel; each step records whether the target is still the model's top class, the clean
  image's answer comes first, and the score is the area under those ten points over
  ``x = 0, 0.1, ..., 0.9`` by the trapezoid rule, times 100. Positive: lower is better
  (removing what the map calls important should break the prediction); negative: higher
  is better.
- **ADP / PIC** (``"adp"``, ``"pic"``): the image is multiplied by its map scaled to
  [0, 1] (the map summed over channels, minus its minimum, over its maximum plus 1e-7, as
  pytorch-grad-cam's ``scale_cam_image`` scales the CAMs those papers compare); with ``p``
  the target's softmax probability on the image and ``p_m`` on the masked one, the
  average drop is ``max(p - p_m, 0) / p * 100`` (ADP, lower is better) and the increase
  in confidence ``100 * [p_m > p]`` (PIC, higher is better), both averaged over images.

The reference sets pixels to 0 in its [0, 1] image space before the model's
normalisation; here 0 is in the images' own pixel range, which is the same thing for
images in [0, 1] and a model that normalises inside (imacs adapters do).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_positive_int
from imacs.quality.base import QualityMeasure, QualityResult, pixel_relevance
from imacs.quality.curves import check_score, perturbation_curves, relevance_order

CITATION = (
    "Barkan et al. DIX (CIKM 2023), IIA (ICCV 2023), LTX (ICDM 2023, arXiv:2310.16584); "
    "after Chefer, Gur and Wolf, CVPR 2021, arXiv:2012.09838"
)
ADP_PIC_CITATION = (
    "Jung and Oh. Towards Better Explanations of Class Activation Mapping. ICCV 2021; as "
    "reported by Barkan et al., LTX (ICDM 2023, arXiv:2310.16584)"
)


class _Perturbation(QualityMeasure):
    citation = CITATION
    version = "1"
    requires: ClassVar[frozenset[str]] = frozenset()
    positive: ClassVar[bool] = True

    def __init__(self, n_steps: int = 10, score: str = "correct"):
        check_positive_int(n_steps, "n_steps")
        check_score(score)
        self.n_steps = n_steps
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
        _, h, w, c = images.shape
        relevance = pixel_relevance(maps)
        place = relevance_order(relevance if self.positive else -relevance)
        x = np.arange(self.n_steps) / self.n_steps  # 0, 0.1, ..., 0.9 by default
        counts = (x * h * w).astype(np.int64)

        def build(i: int, steps: np.ndarray, out: np.ndarray) -> None:
            removed = place[i][None, :] < counts[steps][:, None]
            np.multiply(
                images[i].reshape(1, h * w, c),
                ~removed[..., None],
                out=out.reshape(len(steps), h * w, c),
            )

        curves = perturbation_curves(
            model,
            targets,
            self.n_steps,
            build,
            score=self.score,
            batch_size=batch_size,
            image_shape=images.shape[1:],
        )
        area = np.trapezoid(curves, x, axis=1) * 100.0
        return self.result(area, curves=curves, curve_x=x)


class PositivePerturbation(_Perturbation):
    """POS: top-1 correctness as the most relevant pixels are zeroed; AUC x 100.

    Lower is better. Parameters: ``n_steps`` (10: the clean image and 10%..90% removed),
    ``score`` (``"correct"``, the reference's; ``"probability"`` gives its DEL-style AUC).
    """

    name = "positive-perturbation"
    higher_is_better = False
    positive = True


class NegativePerturbation(_Perturbation):
    """NEG: top-1 correctness as the least relevant pixels are zeroed; AUC x 100.

    Higher is better; parameters as :class:`PositivePerturbation`.
    """

    name = "negative-perturbation"
    higher_is_better = True
    positive = False


def scaled_maps(maps: np.ndarray) -> np.ndarray:
    """Each map summed over channels and min-max scaled to [0, 1]: ``(N, H, W, 1)``."""
    summed = maps.sum(axis=3, keepdims=True, dtype=np.float64)
    low = summed.min(axis=(1, 2, 3), keepdims=True)
    shifted = summed - low
    return shifted / (shifted.max(axis=(1, 2, 3), keepdims=True) + 1e-7)


def masked_probabilities(
    model: ModelAdapter, images: np.ndarray, targets: np.ndarray, maps: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray]:
    """The target's probability on each image and on the image times its scaled map."""
    masked = (images * scaled_maps(maps)).astype(np.float32)
    both = np.stack([images, masked], axis=1)  # (N, 2, H, W, C): clean, masked

    def build(i: int, steps: np.ndarray, out: np.ndarray) -> None:
        out[...] = both[i][steps]

    probabilities = perturbation_curves(
        model,
        targets,
        2,
        build,
        score="probability",
        batch_size=batch_size,
        image_shape=images.shape[1:],
    )
    return probabilities[:, 0], probabilities[:, 1]


class AverageDropPercentage(QualityMeasure):
    """ADP: how much the target's probability drops when the image is masked by its map.

    ``max(p - p_m, 0) / p * 100`` per image; lower is better. No parameters.
    """

    name = "adp"
    citation = ADP_PIC_CITATION
    version = "1"
    higher_is_better = False
    requires: ClassVar[frozenset[str]] = frozenset()

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
        p, p_masked = masked_probabilities(model, images, targets, maps, batch_size)
        drop = np.divide(np.maximum(p - p_masked, 0.0), p, out=np.zeros_like(p), where=p > 0)
        return self.result(drop * 100.0)


class PercentageIncreaseInConfidence(QualityMeasure):
    """PIC: whether masking the image by its map raises the target's probability.

    ``100 * [p_m > p]`` per image, so the mean is the percentage of images; higher is
    better. No parameters.
    """

    name = "pic"
    citation = ADP_PIC_CITATION
    version = "1"
    higher_is_better = True
    requires: ClassVar[frozenset[str]] = frozenset()

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
        p, p_masked = masked_probabilities(model, images, targets, maps, batch_size)
        return self.result((p_masked > p).astype(np.float64) * 100.0)


@hookimpl
def register_quality_measures(register: Register) -> None:
    register(PositivePerturbation)
    register(NegativePerturbation)
    register(AverageDropPercentage)
    register(PercentageIncreaseInConfidence)
