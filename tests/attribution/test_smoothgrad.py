"""SmoothGrad and VarGrad: exact cases, noise statistics, PAIR saliency and Captum."""

from __future__ import annotations

import numpy as np
import pytest

from imacs.adapters.function import FunctionAdapter
from imacs.attribution.gradient import Gradient
from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.attribution.smoothgrad import SmoothGrad, VarGrad
from imacs.errors import InvalidInputError, UnknownComponentError
from imacs.testing import RecordingAdapter, check_attribution_method, softplus_model

SHAPE = (6, 6, 3)
TARGETS = np.array([0, 1, 0])


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((3, *SHAPE), dtype=np.float32)


def linear_model() -> FunctionAdapter:
    w = np.random.default_rng(1).normal(size=SHAPE).astype(np.float32)
    return FunctionAdapter(
        lambda x: np.stack([(x * w).sum(axis=(1, 2, 3)), -(x * w).sum(axis=(1, 2, 3))], 1),
        lambda x, t: np.where(t[:, None, None, None] == 0, w, -w),
        fingerprint="linear",
    )


A = np.random.default_rng(2).uniform(0.5, 2.0, size=SHAPE)


def quadratic_model() -> FunctionAdapter:
    """``F(x) = sum(A x^2) / 2``: gradient ``A x``, so noise statistics are known exactly."""

    def predict(x: np.ndarray) -> np.ndarray:
        f = 0.5 * (A * x.astype(np.float64) ** 2).sum(axis=(1, 2, 3))
        return np.stack([f, -f], 1).astype(np.float32)

    def gradients(x: np.ndarray, t: np.ndarray) -> np.ndarray:
        sign = np.where(t == 0, 1.0, -1.0)[:, None, None, None]
        return (sign * A * x).astype(np.float32)

    return FunctionAdapter(predict, gradients, fingerprint="quadratic")


def spiked_images(n: int = 2) -> np.ndarray:
    """Zero images with one pixel at 1: spread 1, so sigma = stdev_spread."""
    x = np.zeros((n, *SHAPE), dtype=np.float32)
    x[:, 0, 0, 0] = 1.0
    return x


# -- exact cases ---------------------------------------------------------------------


@pytest.mark.parametrize("magnitude", [False, True])
def test_no_noise_gives_the_base_method_exactly(images: np.ndarray, magnitude: bool) -> None:
    model = softplus_model(image_shape=SHAPE)
    base = Gradient().attribute(model, images, TARGETS).maps
    smooth = SmoothGrad(base_method=Gradient(), n_samples=5, stdev_spread=0.0, magnitude=magnitude)
    expected = base * base if magnitude else base
    np.testing.assert_array_equal(smooth.attribute(model, images, TARGETS).maps, expected)
    var = VarGrad(base_method=Gradient(), n_samples=5, stdev_spread=0.0)
    np.testing.assert_array_equal(var.attribute(model, images, TARGETS).maps, 0)


def test_linear_model_smoothgrad_is_the_gradient_and_vargrad_zero(images: np.ndarray) -> None:
    model = linear_model()
    gradient = model.gradients(images, TARGETS)
    smooth = SmoothGrad(base_method=Gradient(), n_samples=7).attribute(
        model, images, TARGETS, batch_size=4
    )
    np.testing.assert_array_equal(smooth.maps, gradient)
    var = VarGrad(base_method=Gradient(), n_samples=7).attribute(
        model, images, TARGETS, batch_size=4
    )
    np.testing.assert_array_equal(var.maps, 0)


# -- noise statistics ----------------------------------------------------------------


def test_noise_scale_follows_pair_stdev_spread() -> None:
    """VarGrad of ``A x`` is ``A^2 sigma^2``, with sigma = stdev_spread * (max - min)."""
    x = spiked_images() * 2.0  # spread 2
    n = 400
    var = VarGrad(base_method=Gradient(), n_samples=n, stdev_spread=0.1).attribute(
        quadratic_model(), x, [0, 1], batch_size=64
    )
    ratio = var.maps / (A**2 * (0.1 * 2.0) ** 2)
    # the mean over 2 x 108 pixels of a sample variance ratio has standard error sqrt(2/n/216)
    assert abs(ratio.mean() - 1) <= 5 * np.sqrt(2 / n / ratio.size)
    assert abs(ratio.mean() - 1) < 0.05


def test_smoothgrad_of_quadratic_model_is_unbiased() -> None:
    x = spiked_images(1)
    n = 400
    sigma = 0.15
    smooth = SmoothGrad(base_method=Gradient(), n_samples=n).attribute(quadratic_model(), x, 0)
    # E[A (x + noise)] = A x; the estimate's standard error is A sigma / sqrt(n)
    z = (smooth.maps - A * x) / (A * sigma / np.sqrt(n))
    assert np.abs(z).max() < 5
    assert abs(z.mean()) < 5 / np.sqrt(z.size)


def test_magnitude_and_pair_get_smoothed_mask_estimate_the_same_thing() -> None:
    saliency = pytest.importorskip("saliency.core")
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    model = quadratic_model()
    x = spiked_images(1)
    n = 300

    def call_model_function(batch, call_model_args=None, expected_keys=None):  # type: ignore[no-untyped-def]
        grads = model.gradients(np.asarray(batch, np.float32), np.zeros(len(batch), np.int64))
        return {INPUT_OUTPUT_GRADIENTS: grads}

    np.random.seed(0)  # noqa: NPY002 (PAIR draws from NumPy's global generator)
    theirs = saliency.GradientSaliency().GetSmoothedMask(
        x[0], call_model_function, stdev_spread=0.15, nsamples=n, magnitude=True
    )
    ours = SmoothGrad(base_method=Gradient(), n_samples=n, magnitude=True).attribute(model, x, 0)
    expected = A**2 * (x[0] ** 2 + 0.15**2)  # E[(A (x + noise))^2]
    zero = x[0] == 0  # where the expectation is A^2 sigma^2: a sharp test of sigma
    for estimate in (ours.maps[0], theirs):
        ratio = estimate[zero] / expected[zero]
        assert abs(ratio.mean() - 1) <= 5 * np.sqrt(2 / n / ratio.size)
    assert abs((ours.maps[0][zero] / theirs[zero]).mean() - 1) < 0.05


def test_noise_of_an_image_does_not_depend_on_its_batch_or_its_place(images: np.ndarray) -> None:
    model = softplus_model(image_shape=SHAPE)
    method = SmoothGrad(base_method=Gradient(), n_samples=6, seed=3)
    together = method.attribute(model, images, TARGETS, batch_size=5).maps
    for i in range(len(images)):
        # alone, as a comparison's task of one image after a resume would have it
        alone = method.attribute(model, images[i : i + 1], TARGETS[i : i + 1], batch_size=2)
        np.testing.assert_array_equal(together[i], alone.maps[0])
    reordered = method.attribute(model, images[::-1], TARGETS[::-1]).maps
    np.testing.assert_array_equal(reordered[::-1], together)
    other_seed = SmoothGrad(base_method=Gradient(), n_samples=6, seed=4)
    assert not np.array_equal(other_seed.attribute(model, images, TARGETS).maps, together)


# -- wrapping ------------------------------------------------------------------------


def test_wraps_a_registered_method_by_name(images: np.ndarray) -> None:
    model = softplus_model(image_shape=SHAPE)
    by_name = SmoothGrad(base_method="gradient", base_params={"absolute": True}, n_samples=4)
    by_instance = SmoothGrad(base_method=Gradient(absolute=True), n_samples=4)
    np.testing.assert_array_equal(
        by_name.attribute(model, images, TARGETS).maps,
        by_instance.attribute(model, images, TARGETS).maps,
    )
    with pytest.raises(UnknownComponentError):
        SmoothGrad(base_method="no-such-method").attribute(model, images, TARGETS)
    with pytest.raises(InvalidInputError, match="already an instance"):
        SmoothGrad(base_method=Gradient(), base_params={"absolute": True}).attribute(
            model, images, TARGETS
        )


def test_wrapped_path_method_shares_one_batch_size(images: np.ndarray) -> None:
    recorder = RecordingAdapter(softplus_model(image_shape=SHAPE))
    method = SmoothGrad(base_method=IntegratedGradients(n_steps=5), n_samples=3)
    method.attribute(recorder, images, TARGETS, batch_size=4)
    assert recorder.largest_batch <= 4
    assert recorder.calls >= 3 * 3 * 5 // 4  # copies x steps, 4 at a time


@pytest.mark.parametrize(
    "method",
    [
        SmoothGrad(base_method=Gradient(), n_samples=5),
        SmoothGrad(base_method=Gradient(), n_samples=5, magnitude=True),
        VarGrad(base_method=Gradient(), n_samples=5),
        SmoothGrad(base_method=IntegratedGradients(n_steps=4), n_samples=3),
        VarGrad(
            base_method=IntegratedGradients(n_steps=4, quadrature="riemann_middle"), n_samples=3
        ),
    ],
    ids=repr,
)
def test_passes_the_conformance_suite(images: np.ndarray, method: SmoothGrad) -> None:
    check_attribution_method(method, softplus_model(image_shape=SHAPE), images, TARGETS)


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"n_samples": 0}, "n_samples"),
        ({"n_samples": 2.5}, "n_samples"),
        ({"stdev_spread": -0.1}, "stdev_spread"),
        ({"seed": -1}, "seed"),
        ({"base_method": 42}, "base_method"),
        ({"base_params": ["absolute"]}, "base_params"),
    ],
)
def test_bad_parameters_are_refused(params: dict, match: str) -> None:
    for cls in (SmoothGrad, VarGrad):
        with pytest.raises(InvalidInputError, match=match):
            cls(**params)


# -- Captum's NoiseTunnel ------------------------------------------------------------


@pytest.mark.torch
def test_matches_captum_noise_tunnel_semantics() -> None:
    """Same model and noise scale: equal on a linear model, equal statistics on a quadratic."""
    torch = pytest.importorskip("torch")
    from captum.attr import NoiseTunnel, Saliency

    import imacs

    class Quadratic(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.a = torch.nn.Parameter(torch.from_numpy(A.transpose(2, 0, 1)).float())

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            f = 0.5 * (self.a * x**2).sum(dim=(1, 2, 3))
            return torch.stack([f, -f], 1)

    module = Quadratic().eval()
    x = spiked_images(1)
    model = imacs.load_model(module, device="cpu")
    n, sigma = 300, 0.15
    torch.manual_seed(0)
    tunnel = NoiseTunnel(Saliency(module))
    x_t = torch.from_numpy(x).permute(0, 3, 1, 2)
    theirs = {
        kind: tunnel.attribute(x_t, nt_type=kind, nt_samples=n, stdevs=sigma, target=0, abs=False)
        .permute(0, 2, 3, 1)
        .detach()
        .numpy()[0]
        for kind in ("smoothgrad_sq", "vargrad")
    }
    ours = {
        "smoothgrad_sq": SmoothGrad(base_method=Gradient(), n_samples=n, magnitude=True),
        "vargrad": VarGrad(base_method=Gradient(), n_samples=n),
    }
    zero = x[0] == 0
    for kind, method in ours.items():
        mine = method.attribute(model, x, 0, batch_size=64).maps[0]
        expected = A**2 * sigma**2  # on zero pixels, both kinds estimate A^2 sigma^2
        for estimate in (mine, theirs[kind]):
            assert abs((estimate[zero] / expected[zero]).mean() - 1) <= 5 * np.sqrt(
                2 / n / zero.sum()
            )


def test_registered_names_wrap_each_other(imacs_host, images: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    """Through the registry, as users call it: SmoothGrad of IG, both by name."""
    import imacs

    model = softplus_model(image_shape=SHAPE)
    by_name = imacs.attribute(
        model,
        images,
        TARGETS,
        method="smoothgrad",
        base_method="integrated-gradients",
        base_params={"n_steps": 4, "quadrature": "riemann_middle"},
        n_samples=3,
        batch_size=5,
    )
    direct = SmoothGrad(
        base_method=IntegratedGradients(n_steps=4, quadrature="riemann_middle"), n_samples=3
    ).attribute(model, images, TARGETS, batch_size=5)
    assert by_name.method == "smoothgrad"
    np.testing.assert_allclose(by_name.maps, direct.maps, rtol=1e-5, atol=1e-7)
    vargrad = imacs.attribute(model, images, TARGETS, method="vargrad", n_samples=3)
    assert vargrad.method == "vargrad" and (vargrad.maps >= 0).all()
