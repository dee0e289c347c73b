"""Gradient times input against its definition, a linear model, and Captum."""

from __future__ import annotations

import numpy as np
import pytest

from imacs.adapters.function import FunctionAdapter
from imacs.attribution.gradient_times_input import GradientTimesInput
from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.testing import check_attribution_method, softplus_model


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((3, 8, 8, 3), dtype=np.float32)


TARGETS = np.array([2, 0, 1])


def test_is_the_gradient_times_the_input(images: np.ndarray) -> None:
    model = softplus_model()
    maps = GradientTimesInput().attribute(model, images, TARGETS, batch_size=2).maps
    np.testing.assert_array_equal(maps, model.gradients(images, TARGETS) * images)


def test_linear_model_gets_each_pixels_contribution(images: np.ndarray) -> None:
    w = np.random.default_rng(1).normal(size=(8, 8, 3)).astype(np.float32)
    model = FunctionAdapter(
        lambda x: (x * w).sum(axis=(1, 2, 3))[:, None],
        lambda x, t: np.broadcast_to(w, x.shape),
        fingerprint="linear",
    )
    result = GradientTimesInput().attribute(model, images, 0)
    np.testing.assert_allclose(result.maps, w * images, rtol=1e-6)
    np.testing.assert_allclose(result.maps.sum(axis=(1, 2, 3)), model.scores(images, 0), rtol=1e-5)


def test_equals_ig_from_zero_with_one_right_riemann_step(images: np.ndarray) -> None:
    model = softplus_model()
    ig = IntegratedGradients(n_steps=1, quadrature="riemann_right").attribute(
        model, images, TARGETS
    )
    gxi = GradientTimesInput().attribute(model, images, TARGETS)
    np.testing.assert_allclose(gxi.maps, ig.maps, rtol=1e-6, atol=1e-8)


def test_passes_the_conformance_suite(images: np.ndarray) -> None:
    check_attribution_method(GradientTimesInput(), softplus_model(), images, TARGETS)


@pytest.mark.torch
def test_equals_captum_input_x_gradient() -> None:
    torch = pytest.importorskip("torch")
    from captum.attr import InputXGradient

    import imacs

    torch.manual_seed(0)
    module = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3), torch.nn.Softplus(), torch.nn.Flatten(), torch.nn.Linear(144, 3)
    ).eval()
    images = np.random.default_rng(2).random((2, 8, 8, 3), dtype=np.float32)
    ours = GradientTimesInput().attribute(imacs.load_model(module, device="cpu"), images, [0, 2])
    x = torch.from_numpy(images).permute(0, 3, 1, 2).requires_grad_()
    theirs = InputXGradient(module).attribute(x, target=torch.tensor([0, 2]))
    theirs = theirs.detach().permute(0, 2, 3, 1).numpy()
    assert np.abs(ours.maps - theirs).max() <= 1e-6 * np.abs(theirs).max()


def test_registered_as_gradient_times_input(imacs_host, images: np.ndarray) -> None:  # type: ignore[no-untyped-def]
    import imacs

    model = softplus_model()
    result = imacs.attribute(model, images, TARGETS, method="gradient-times-input")
    np.testing.assert_array_equal(
        result.maps, GradientTimesInput().attribute(model, images, TARGETS).maps
    )
