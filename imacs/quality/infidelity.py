"""The ``"infidelity"`` and ``"max-sensitivity"`` measures (Yeh et al. 2019).

Yeh, Hsieh, Suggala, Inouye and Ravikumar. "On the (In)fidelity and Sensitivity of
Explanations". NeurIPS 2019. arXiv:1901.09392.

Infidelity asks whether the map predicts how the target score changes when the input is
perturbed: ``E_I[(I . map - (f(x) - f(x - I)))^2]`` over random perturbations ``I``
(lower is better). Max-sensitivity asks how much the map itself changes when the input
moves a little: ``max_y ||map(y) - map(x)|| / ||map(x)||`` over ``y`` drawn uniformly
from the L-infinity ball of radius ``r`` around ``x`` (lower is better).

Both copy Captum's ``captum.metrics`` (``infidelity`` and ``sensitivity_max``), the
reference a tester can run beside them, and its defaults rather than Quantus's:
``n_perturb_samples=10`` and ``normalize=False`` for infidelity, ``perturb_radius=0.02``,
``n_perturb_samples=10`` and the Frobenius norm, relative to the norm of the unperturbed
map (left unscaled when that is zero), for max-sensitivity. Quantus's MaxSensitivity
draws 200 samples in a radius of 0.2 by default. Captum leaves infidelity's perturbation
to the user; the default here is the Gaussian noise of its documentation's example,
``I ~ N(0, 0.003^2)`` per pixel and channel. ``f`` is the adapter's target score (the
logit by default), which is what Captum's ``forward_func`` with ``target`` returns.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_non_negative, check_positive_int
from imacs.quality.base import QualityMeasure, QualityResult, image_rng
from imacs.quality.curves import perturbation_curves

CITATION = (
    "Yeh, Hsieh, Suggala, Inouye and Ravikumar. On the (In)fidelity and Sensitivity of "
    "Explanations. NeurIPS 2019. arXiv:1901.09392"
)


def infidelity_noise(
    image_shape: tuple[int, ...], n_samples: int, scale: float, seed: int, index: int
) -> np.ndarray:
    """The perturbations ``I`` ``(n_samples, H, W, C)`` of the image at ``index``."""
    rng = image_rng(seed, index)
    return (scale * rng.standard_normal((n_samples, *image_shape))).astype(np.float32)


def sensitivity_noise(
    image_shape: tuple[int, ...], n_samples: int, radius: float, seed: int, index: int
) -> np.ndarray:
    """The offsets ``(n_samples, H, W, C)``, uniform in ``[-radius, radius]``, of one image."""
    rng = image_rng(seed, index)
    return rng.uniform(-radius, radius, (n_samples, *image_shape)).astype(np.float32)


class Infidelity(QualityMeasure):
    """Infidelity: the mean squared error of the map's prediction of score changes.

    Parameters: ``n_perturb_samples`` (10, Captum's), ``noise_scale`` (0.003: the standard
    deviation of the Gaussian perturbation, in the images' pixel units), ``normalize``
    (False, Captum's; True scales the map's predictions by the least-squares factor
    ``beta`` first, Captum's ``normalize=True``). Lower is better.
    """

    name = "infidelity"
    citation = CITATION
    version = "1"
    higher_is_better = False
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self, n_perturb_samples: int = 10, noise_scale: float = 0.003, normalize: bool = False
    ):
        check_positive_int(n_perturb_samples, "n_perturb_samples")
        check_non_negative(noise_scale, "noise_scale")
        self.n_perturb_samples = n_perturb_samples
        self.noise_scale = noise_scale
        self.normalize = normalize

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
        n_samples = self.n_perturb_samples
        shape = images.shape[1:]

        def noise(i: int) -> np.ndarray:
            return infidelity_noise(shape, n_samples, float(self.noise_scale), seed, i)

        def build(i: int, steps: np.ndarray, out: np.ndarray) -> None:
            # step 0 is the image itself, step k the image minus perturbation k - 1
            perturbed = np.concatenate([images[i][None], images[i][None] - noise(i)])
            out[...] = perturbed[steps]

        outputs = perturbation_curves(
            model,
            targets,
            n_samples + 1,
            build,
            score="target",
            batch_size=batch_size,
            image_shape=images.shape[1:],
        )
        differences = outputs[:, :1] - outputs[:, 1:]  # f(x) - f(x - I)
        predicted = np.stack(
            [
                np.einsum("shwc,hwc->s", noise(i).astype(np.float64), maps[i].astype(np.float64))
                if maps.shape[3] == images.shape[3]
                else np.einsum("shwc,hw->s", noise(i).astype(np.float64), maps[i, ..., 0])
                for i in range(len(images))
            ]
        )
        if self.normalize:
            denominator = (predicted * predicted).sum(axis=1)
            beta = np.divide(
                (predicted * differences).sum(axis=1),
                denominator,
                out=np.zeros(len(images)),
                where=denominator != 0,
            )
            predicted = beta[:, None] * predicted
        return self.result(((predicted - differences) ** 2).mean(axis=1))


class MaxSensitivity(QualityMeasure):
    """Max-sensitivity: the largest relative change of the map under small input noise.

    Parameters: ``n_perturb_samples`` (10, Captum's) and ``perturb_radius`` (0.02,
    Captum's, in the images' pixel units). Recomputes maps with the attribution method
    that made ``maps``, one call per image of its ``n_perturb_samples`` perturbed copies.
    Lower is better.
    """

    name = "max-sensitivity"
    citation = CITATION
    version = "1"
    higher_is_better = False
    needs_method = True
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, n_perturb_samples: int = 10, perturb_radius: float = 0.02):
        check_positive_int(n_perturb_samples, "n_perturb_samples")
        check_non_negative(perturb_radius, "perturb_radius")
        self.n_perturb_samples = n_perturb_samples
        self.perturb_radius = perturb_radius

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
        assert method is not None  # evaluate refuses to run without it
        n_samples = self.n_perturb_samples
        scores = np.empty(len(images))
        for i in range(len(images)):
            offsets = sensitivity_noise(
                images.shape[1:], n_samples, float(self.perturb_radius), seed, i
            )
            perturbed = images[i][None] + offsets
            again = method.attribute(
                model, perturbed, np.repeat(targets[i], n_samples), batch_size=batch_size
            ).maps
            original = maps[i].astype(np.float64)
            if again.shape[3] != original.shape[2]:
                again = again.sum(axis=3, keepdims=True)
            change = (again.astype(np.float64) - original[None]).reshape(n_samples, -1)
            norm = float(np.linalg.norm(original))
            scores[i] = np.linalg.norm(change, axis=1).max() / (norm if norm != 0 else 1.0)
        return self.result(scores)


@hookimpl
def register_quality_measures(register: Register) -> None:
    register(Infidelity)
    register(MaxSensitivity)
