"""The ``"insertion"`` and ``"deletion"`` measures (Petsiuk et al. 2018).

Petsiuk, Das and Saenko. "RISE: Randomized Input Sampling for Explanation of Black-box
Models". BMVC 2018. arXiv:1806.07421.

Deletion removes the pixels a map ranks highest first, a step at a time, and records the
target's probability after each step: a faithful map makes it fall fast (low area under
the curve is better). Insertion starts from a blurred image and puts the original pixels
back in the same order: a faithful map makes the probability rise fast (high area is
better). Defaults are RISE's (``evaluation.py`` of eclique/RISE): deletion replaces pixels
with zero, insertion starts from the image blurred by an 11x11 Gaussian kernel of sigma 5
(zero padding at the border), the score is the softmax probability of the target, and
the area is the trapezoid rule over the ``n_steps + 1`` points, spread evenly over
``[0, 1]``. RISE moves 224 pixels per step on 224x224 images, one image row's worth; the
default ``n_steps=None`` does the same on any size (``H`` steps of ``W`` pixels).

Pixels are ranked by the map summed over channels; all channels of a pixel move together.
Each image costs ``n_steps + 1`` forward passes, sent to the model in calls of
``batch_size`` images that mix steps and images (:mod:`imacs.quality.curves`).
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy import ndimage

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import AttributionMethod
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_non_negative, check_positive_int
from imacs.quality.base import QualityMeasure, QualityResult, pixel_relevance
from imacs.quality.curves import (
    check_score,
    perturbation_curves,
    relevance_order,
    trapezoid_auc,
)

CITATION = (
    "Petsiuk, Das and Saenko. RISE: Randomized Input Sampling for Explanation of Black-box "
    "Models. BMVC 2018. arXiv:1806.07421"
)


def rise_blur(images: np.ndarray, kernel_size: int = 11, sigma: float = 5.0) -> np.ndarray:
    """RISE's insertion substrate: each channel convolved with a ``kernel_size`` Gaussian.

    The kernel is RISE's ``gkern``: a unit impulse in a ``kernel_size`` square smoothed by
    ``scipy.ndimage.gaussian_filter(sigma)``; the image is zero-padded at its border, as
    RISE's ``conv2d(padding=kernel_size // 2)`` does.
    """
    impulse = np.zeros((kernel_size, kernel_size))
    impulse[kernel_size // 2, kernel_size // 2] = 1.0
    kernel = ndimage.gaussian_filter(impulse, sigma)
    blurred = np.empty(images.shape, dtype=np.float64)
    for i, image in enumerate(images):
        for c in range(image.shape[-1]):
            blurred[i, ..., c] = ndimage.correlate(
                image[..., c].astype(np.float64), kernel, mode="constant", cval=0.0
            )
    return blurred.astype(np.float32)


class _PixelTransfer(QualityMeasure):
    """Moves pixels from a start image to a finish image in the order a map ranks them."""

    citation = CITATION
    version = "1"
    requires: ClassVar[frozenset[str]] = frozenset()

    def __init__(
        self,
        n_steps: int | None = None,
        score: str = "probability",
        blur_kernel_size: int = 11,
        blur_sigma: float = 5.0,
    ):
        if n_steps is not None:
            check_positive_int(n_steps, "n_steps")
        check_score(score)
        check_positive_int(blur_kernel_size, "blur_kernel_size")
        check_non_negative(blur_sigma, "blur_sigma")
        self.n_steps = n_steps
        self.score = score
        self.blur_kernel_size = blur_kernel_size
        self.blur_sigma = blur_sigma

    def _start_and_finish(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        raise NotImplementedError

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
        n, h, w, c = images.shape
        pixels = h * w
        n_steps = min(self.n_steps or h, pixels)
        per_step = -(-pixels // n_steps)  # RISE: ceil(HW / step) steps of `step` pixels
        n_steps = -(-pixels // per_step)
        start, finish = self._start_and_finish(images)
        start = start.reshape(n, pixels, c)
        finish = finish.reshape(n, pixels, c)
        place = relevance_order(pixel_relevance(maps))
        moved = np.minimum(np.arange(n_steps + 1) * per_step, pixels)

        def build(i: int, steps: np.ndarray, out: np.ndarray) -> None:
            changed = place[i][None, :] < moved[steps][:, None]  # (k, HW)
            flat = out.reshape(len(steps), pixels, c)
            np.copyto(flat, start[i][None])
            np.copyto(flat, finish[i][None], where=changed[..., None])

        curves = perturbation_curves(
            model,
            targets,
            n_steps + 1,
            build,
            score=self.score,
            batch_size=batch_size,
            image_shape=images.shape[1:],
        )
        return self.result(trapezoid_auc(curves), curves=curves, curve_x=moved / pixels)


class Deletion(_PixelTransfer):
    """Deletion AUC: the target's probability as the most relevant pixels are set to zero.

    Lower is better. Parameters: ``n_steps`` (default ``None``: one image row's worth of
    pixels per step, RISE's 224 on 224x224), ``score`` (``"probability"``, RISE's;
    ``"output"`` for models whose outputs are already probabilities; ``"correct"``). The
    blur parameters are unused here and kept so both measures take the same parameters.
    """

    name = "deletion"
    higher_is_better = False

    def _start_and_finish(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return images, np.zeros_like(images)


class Insertion(_PixelTransfer):
    """Insertion AUC: the target's probability as the most relevant pixels are restored.

    Starts from the image blurred by ``blur_kernel_size`` x ``blur_kernel_size`` Gaussian
    of ``blur_sigma`` (RISE's 11 and 5). Higher is better. Other parameters as
    :class:`Deletion`.
    """

    name = "insertion"
    higher_is_better = True

    def _start_and_finish(self, images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return rise_blur(images, self.blur_kernel_size, self.blur_sigma), images


@hookimpl
def register_quality_measures(register: Register) -> None:
    register(Insertion)
    register(Deletion)
