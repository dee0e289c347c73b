"""SmoothGrad and VarGrad: statistics of any attribution method over noisy copies.

SmoothGrad: Smilkov, Thorat, Kim, Viegas, Wattenberg. "SmoothGrad: removing noise by
adding noise". ICML 2017 workshop. arXiv:1706.03825.

VarGrad: Adebayo, Gilmer, Goodfellow, Kim. "Local Explanation Methods for Deep Neural
Networks Lack Sensitivity to Parameter Values". ICLR 2018 workshop. arXiv:1810.03292.

Both draw ``n_samples`` copies ``x + N(0, sigma^2)`` of each image, with PAIR saliency's
noise scale ``sigma = stdev_spread * (max(x) - min(x))`` per image
(``CoreSaliency.GetSmoothedMask``), run the wrapped method on them, and return the mean
(SmoothGrad) or the variance (VarGrad, population variance as in Captum's
``NoiseTunnel``) of the maps. Captum's ``NoiseTunnel`` takes an absolute ``stdevs``
instead; ``stdev_spread = stdevs / (max - min)`` converts.

The noisy copies of all images go through the wrapped method ``batch_size`` copies per
call with the same ``batch_size``, so the wrapped method's own chunking bounds memory and
model calls; the statistics are folded in as each call returns (a running sum, or Chan's
parallel variance update), never holding ``n_samples`` maps per image. The noise of each
image comes from its own generator seeded by ``seed`` and the image's content
(:mod:`imacs.attribution.seeds`), drawn in sample order, so it depends neither on
``batch_size`` nor on which other images share the call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from imacs.adapters.base import ModelAdapter
from imacs.attribution.base import (
    DEFAULT_BATCH_SIZE,
    AttributionMethod,
    AttributionResult,
    DatasetView,
)
from imacs.attribution.paths import point_grid
from imacs.attribution.seeds import image_rng
from imacs.errors import InvalidInputError
from imacs.hookspecs import Register, hookimpl
from imacs.parameters import check_non_negative, check_positive_int, check_seed

if TYPE_CHECKING:
    from imacs.store import Store


def noisy_sample_moments(
    method: AttributionMethod,
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    *,
    n_samples: int,
    stdev_spread: float,
    seed: int,
    batch_size: int,
    squared: bool = False,
    variance: bool = False,
) -> tuple[np.ndarray, np.ndarray | None]:
    """Mean (and population variance) over noisy samples of ``method``'s maps, per image.

    ``squared`` takes the moments of the squared maps (PAIR's ``magnitude=True``). Returns
    float64 ``(mean, variance)``; ``variance`` is ``None`` unless asked for.
    """
    n_images = len(images)
    spread = images.max(axis=(1, 2, 3)) - images.min(axis=(1, 2, 3))
    sigmas = (stdev_spread * spread).astype(np.float32)
    generators = [image_rng(seed, image) for image in images]
    count = np.zeros(n_images)
    mean = np.zeros(images.shape)
    m2 = np.zeros(images.shape) if variance else None

    image_index, _ = point_grid(n_images, n_samples)
    for start in range(0, len(image_index), batch_size):
        owners_of_rows = image_index[start : start + batch_size]
        owners, run_starts, run_lengths = np.unique(
            owners_of_rows, return_index=True, return_counts=True
        )
        noise = np.concatenate(
            [
                generators[i].standard_normal((k, *images.shape[1:]), dtype=np.float32)
                for i, k in zip(owners, run_lengths, strict=True)
            ]
        )
        noise *= sigmas[owners_of_rows, None, None, None]
        noise += images[owners_of_rows]
        maps = method.attribute(
            model, noise, targets[owners_of_rows], batch_size=batch_size
        ).maps.astype(np.float64)
        if squared:
            maps *= maps
        run_mean = np.add.reduceat(maps, run_starts, axis=0) / run_lengths[:, None, None, None]
        # Chan et al.'s update: merge each run's count, mean and M2 into the image's
        total = count[owners] + run_lengths
        delta = run_mean - mean[owners]
        share = (run_lengths / total)[:, None, None, None]
        mean[owners] += delta * share
        if m2 is not None:
            maps -= np.repeat(run_mean, run_lengths, axis=0)
            maps *= maps
            run_m2 = np.add.reduceat(maps, run_starts, axis=0)
            m2[owners] += run_m2 + delta * delta * (count[owners][:, None, None, None] * share)
        count[owners] = total
    return mean, (m2 / n_samples if m2 is not None else None)


class _NoisySamples(AttributionMethod):
    """What SmoothGrad and VarGrad share: the wrapped method and the noise."""

    #: 2: each image's noise is seeded by its content, no longer by its place in the call
    version = "2"

    base_method: str | AttributionMethod
    base_params: dict[str, Any] | None
    #: the wrapped method, with the base_method and base_params it was built from
    _wrapped: tuple[Any, Any, AttributionMethod]

    def _check_common(
        self, base_method: Any, base_params: Any, n_samples: Any, stdev_spread: Any, seed: Any
    ) -> None:
        if not isinstance(base_method, str | AttributionMethod):
            raise InvalidInputError(
                "expected base_method to be an attribution method name or instance; got "
                f"{type(base_method).__name__}"
            )
        if base_params is not None and not isinstance(base_params, dict):
            raise InvalidInputError(
                f"expected base_params to be a dict or None; got {type(base_params).__name__}"
            )
        check_positive_int(n_samples, "n_samples")
        check_non_negative(stdev_spread, "stdev_spread")
        check_seed(seed)

    def wrapped_method(self) -> AttributionMethod:
        """The method whose maps are averaged: the instance given, or one built from its
        name and parameters on first use and kept, so what :meth:`prepare` taught it
        serves every later :meth:`attribute` call (and travels with this method to an
        executor's workers). Built again if ``base_method`` or ``base_params`` is
        replaced."""
        from imacs.api import get_method  # the registry imports this module's package

        kept = getattr(self, "_wrapped", None)
        if kept is None or kept[0] is not self.base_method or kept[1] is not self.base_params:
            method = get_method(self.base_method, **(self.base_params or {}))
            kept = self._wrapped = (self.base_method, self.base_params, method)
        return kept[2]

    def prepare(
        self,
        model: ModelAdapter,
        data: DatasetView,
        *,
        batch_size: int = DEFAULT_BATCH_SIZE,
        store: Store | None = None,
    ) -> str | None:
        """Prepare the wrapped method on the dataset (its own :meth:`prepare`).

        The wrapped method learns from the images as they are, not from noisy copies, and
        the noisy copies are then attributed with what it learnt. Returns the wrapped
        method's key, or ``None`` when it learns nothing.
        """
        return self.wrapped_method().prepare(model, data, batch_size=batch_size, store=store)


class SmoothGrad(_NoisySamples):
    """The mean of a method's maps over Gaussian-noised copies of each image.

    Parameters
    ----------
    base_method:
        The method to smooth: a registered name (default ``"gradient"``, the paper's
        SmoothGrad) or an :class:`~imacs.attribution.base.AttributionMethod` instance.
        Captum's ``NoiseTunnel`` calls it ``attribution_method``; ``method`` would clash
        with ``imacs.attribute(method="smoothgrad", ...)``. A method that learns from the
        dataset first (LTX) learns through this one: :meth:`prepare`, which
        ``imacs.compare`` and ``imacs attribute`` call once with the whole dataset, hands
        the images to the wrapped method's ``prepare`` and returns its key, and the
        prepared instance then attributes every noisy copy.
    base_params:
        Parameters for ``base_method`` when it is a name.
    n_samples:
        Noisy copies per image. Default 25, PAIR saliency's ``nsamples`` (the paper
        suggests 50; the maps change little beyond).
    stdev_spread:
        Noise standard deviation as a fraction of each image's ``max - min``. Default
        0.15, PAIR's, inside the paper's recommended 10-20%.
    magnitude:
        Average the squared maps instead (PAIR's ``magnitude``). Default ``False``, the
        paper's signed mean, which keeps the maps' sign for comparing models; PAIR
        defaults to ``True``.
    seed:
        Seeds the noise.
    """

    name = "smoothgrad"
    # the wrapped method checks its own needs
    requires: ClassVar[frozenset[str]] = frozenset()
    citation = "Smilkov et al., ICML 2017 workshop, arXiv:1706.03825"

    def __init__(
        self,
        *,
        base_method: str | AttributionMethod = "gradient",
        base_params: dict[str, Any] | None = None,
        n_samples: int = 25,
        stdev_spread: float = 0.15,
        magnitude: bool = False,
        seed: int = 0,
    ):
        self._check_common(base_method, base_params, n_samples, stdev_spread, seed)
        self.base_method = base_method
        self.base_params = base_params
        self.n_samples = n_samples
        self.stdev_spread = stdev_spread
        self.magnitude = magnitude
        self.seed = seed

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        mean, _ = noisy_sample_moments(
            self.wrapped_method(),
            model,
            images,
            targets,
            n_samples=self.n_samples,
            stdev_spread=self.stdev_spread,
            seed=self.seed,
            batch_size=batch_size,
            squared=bool(self.magnitude),
        )
        return AttributionResult(mean, self.name, self.get_params())


class VarGrad(_NoisySamples):
    """The variance of a method's maps over Gaussian-noised copies of each image.

    Parameters are SmoothGrad's (without ``magnitude``): ``base_method`` (default
    ``"gradient"``, as in the paper), ``base_params``, ``n_samples`` (25),
    ``stdev_spread`` (0.15), ``seed``. The variance is the population variance
    (divided by ``n_samples``), as Captum's ``NoiseTunnel(nt_type="vargrad")`` computes it.
    :meth:`prepare` prepares the wrapped method, as SmoothGrad's does.
    """

    name = "vargrad"
    # the wrapped method checks its own needs
    requires: ClassVar[frozenset[str]] = frozenset()
    citation = "Adebayo et al., ICLR 2018 workshop, arXiv:1810.03292"

    def __init__(
        self,
        *,
        base_method: str | AttributionMethod = "gradient",
        base_params: dict[str, Any] | None = None,
        n_samples: int = 25,
        stdev_spread: float = 0.15,
        seed: int = 0,
    ):
        self._check_common(base_method, base_params, n_samples, stdev_spread, seed)
        self.base_method = base_method
        self.base_params = base_params
        self.n_samples = n_samples
        self.stdev_spread = stdev_spread
        self.seed = seed

    def _attribute(
        self, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, batch_size: int
    ) -> AttributionResult:
        _, var = noisy_sample_moments(
            self.wrapped_method(),
            model,
            images,
            targets,
            n_samples=self.n_samples,
            stdev_spread=self.stdev_spread,
            seed=self.seed,
            batch_size=batch_size,
            variance=True,
        )
        assert var is not None
        return AttributionResult(var, self.name, self.get_params())


@hookimpl
def register_attribution_methods(register: Register) -> None:
    register(SmoothGrad)
    register(VarGrad)
