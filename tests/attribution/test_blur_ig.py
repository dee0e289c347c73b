"""Blur IG against PAIR saliency's reference implementation, scipy's blur and bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from imacs.adapters.base import ModelAdapter
from imacs.adapters.function import FunctionAdapter
from imacs.attribution.blur_ig import BlurIG, blur_matrix, gaussian_blur
from imacs.errors import InvalidInputError, MissingCapabilityError
from imacs.testing import RecordingAdapter, check_attribution_method, softplus_model

TARGETS = np.array([0, 1, 3])


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((3, 9, 7, 3), dtype=np.float32)


def pair_maps(
    model: ModelAdapter, images: np.ndarray, targets: np.ndarray, **params: Any
) -> np.ndarray:
    """PAIR's Blur IG on each image, given in float64 so that scipy blurs in float64 too
    (PAIR blurs in the image's dtype; a float32 image adds its rounding, amplified by the
    1 / grad_step of the finite difference, to PAIR's maps)."""
    blur_ig = pytest.importorskip("saliency.core.blur_ig")
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    def call_model(
        batch: np.ndarray, call_model_args: Any = None, expected_keys: Any = None
    ) -> Any:
        grads = model.gradients(batch, np.full(len(batch), call_model_args), batch_size=1)
        return {INPUT_OUTPUT_GRADIENTS: grads}

    params.setdefault("batch_size", 1)
    return np.stack(
        [
            blur_ig.BlurIG().GetMask(
                images[i].astype(np.float64), call_model, int(targets[i]), **params
            )
            for i in range(len(images))
        ]
    )


@pytest.mark.parametrize("sigma", [0.0, 0.005, 0.12, 0.13, 0.7, 1.0, 3.3, 12.0, 50.0])
def test_blur_equals_scipys_gaussian_filter_with_zero_padding(sigma: float) -> None:
    image = np.random.default_rng(1).random((9, 7, 2))
    expected = image if sigma == 0 else gaussian_filter(image, [sigma, sigma, 0], mode="constant")
    blurred = gaussian_blur(image[None], np.array([sigma]))[0]
    np.testing.assert_allclose(blurred, expected, rtol=0, atol=1e-14)


def test_blur_matrix_rows_are_scipys_kernel() -> None:
    matrix = blur_matrix(40, 2.0)
    impulse = np.zeros(40)
    impulse[20] = 1.0
    np.testing.assert_allclose(matrix @ impulse, gaussian_filter(impulse, 2.0, mode="constant"))
    assert matrix[20].sum() == pytest.approx(1.0)  # away from the edges nothing is lost


@pytest.mark.parametrize(
    "params",
    [
        {"steps": 40},
        {"steps": 25, "sqrt": True},
        {"max_sigma": 3, "steps": 20, "grad_step": 0.05},
        {},  # PAIR's defaults: max_sigma=50, steps=100, grad_step=0.01, sqrt=False
    ],
)
def test_equals_pair_on_the_analytic_model(images: np.ndarray, params: dict[str, Any]) -> None:
    model = softplus_model(images.shape[1:])
    expected = pair_maps(model, images, TARGETS, **params)
    # several images and steps per chunk, chunks straddling images
    maps = BlurIG(**params).attribute(model, images, TARGETS, batch_size=7).maps
    assert np.abs(maps - expected).max() <= 1e-5 * np.abs(expected).max()


def test_pair_batched_with_sqrt_spacing_applies_one_step_size_to_the_batch(
    images: np.ndarray,
) -> None:
    """Why the comparisons above run PAIR with batch_size=1: its batched mode multiplies
    a whole batch by the last point's step in sigma, which is wrong when steps differ."""
    model = softplus_model(images.shape[1:])
    ours = BlurIG(steps=20, sqrt=True).attribute(model, images, TARGETS, batch_size=20).maps
    one_at_a_time = pair_maps(model, images, TARGETS, steps=20, sqrt=True)
    batched = pair_maps(model, images, TARGETS, steps=20, sqrt=True, batch_size=20)
    scale = np.abs(one_at_a_time).max()
    assert np.abs(ours - one_at_a_time).max() <= 1e-5 * scale
    assert np.abs(batched - one_at_a_time).max() > 1e-2 * scale


def test_passes_the_conformance_suite_with_completeness() -> None:
    images = np.random.default_rng(3).random((3, 8, 8, 3), dtype=np.float32)
    method = BlurIG(max_sigma=2, steps=100)
    end = gaussian_blur(images.astype(np.float64), np.full(3, 2.0)).astype(np.float32)
    check_attribution_method(
        method, softplus_model(), images, [0, 2, 3], completeness=True, baselines=end
    )


def test_model_calls_hold_several_images_and_steps() -> None:
    images = np.random.default_rng(3).random((4, 8, 8, 3), dtype=np.float32)
    model = RecordingAdapter(softplus_model())
    BlurIG(steps=10).attribute(model, images, [0, 1, 2, 3], batch_size=16)
    # 40 gradient evaluations in three calls of at most 16, plus forward passes
    assert model.largest_batch == 16
    assert model.calls <= 3 + 3


def test_needs_gradients() -> None:
    forward_only = FunctionAdapter(softplus_model().predict_fn, image_shape=(8, 8, 3))
    with pytest.raises(MissingCapabilityError, match="gradients"):
        BlurIG().attribute(forward_only, np.zeros((1, 8, 8, 3), dtype=np.float32), 0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"max_sigma": 0}, "max_sigma"),
        ({"max_sigma": -1.0}, "max_sigma"),
        ({"max_sigma": float("inf")}, "max_sigma"),
        ({"steps": 0}, "steps"),
        ({"steps": 10.0}, "steps"),
        ({"grad_step": 0.0}, "grad_step"),
        ({"sqrt": "yes"}, "sqrt"),
    ],
)
def test_bad_parameters_are_refused(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        BlurIG(**params)


@pytest.mark.torch
def test_equals_pair_on_a_torch_cnn() -> None:
    torch = pytest.importorskip("torch")
    import imacs

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1),
        torch.nn.Softplus(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(6 * 5 * 4, 4),
    )
    model = imacs.load_model(net, device="cpu")
    images = np.random.default_rng(4).random((3, 10, 8, 3), dtype=np.float32)
    expected = pair_maps(model, images, TARGETS, steps=30, max_sigma=6)
    # float32 convolutions round slightly differently in batches: Blur IG is smooth in
    # the gradients, so that stays at the 1e-7 level
    maps = BlurIG(steps=30, max_sigma=6).attribute(model, images, TARGETS, batch_size=16).maps
    assert np.abs(maps - expected).max() <= 1e-5 * np.abs(expected).max()


def test_the_blurs_run_on_one_blas_thread_and_leave_the_setting_as_it_was(
    images: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    from threadpoolctl import threadpool_info, threadpool_limits

    import imacs.attribution.blur_ig as blur_module

    def blas_threads() -> set[int]:
        return {lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"}

    seen: list[set[int]] = []
    original = blur_module.blur_and_derivative

    def recording(*args: Any, **kwargs: Any) -> Any:
        seen.append(blas_threads())
        return original(*args, **kwargs)

    model = softplus_model(image_shape=(9, 7, 3))
    method = BlurIG(steps=6)
    with threadpool_limits(limits=2, user_api="blas"):
        before = blas_threads()
        expected = method.attribute(model, images, TARGETS, batch_size=4).maps
        monkeypatch.setattr(blur_module, "blur_and_derivative", recording)
        maps = method.attribute(model, images, TARGETS, batch_size=4).maps
        assert blas_threads() == before
    assert seen and all(threads == {1} for threads in seen)
    np.testing.assert_array_equal(maps, expected)
