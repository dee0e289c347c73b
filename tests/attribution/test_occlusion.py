"""Occlusion against Captum's Occlusion, a direct loop, a forward-only model and bad input."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from imacs.adapters.base import ModelAdapter
from imacs.adapters.function import FunctionAdapter
from imacs.attribution.occlusion import Occlusion
from imacs.errors import InvalidInputError
from imacs.testing import RecordingAdapter, check_attribution_method, softplus_model

TARGETS = np.array([0, 2, 3])


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((3, 12, 10, 3), dtype=np.float32)


def forward_only(model: FunctionAdapter) -> FunctionAdapter:
    """The same model without its gradient function."""
    return FunctionAdapter(model.predict_fn, image_shape=model._image_shape)


def occlusion_loop(
    model: ModelAdapter,
    images: np.ndarray,
    targets: np.ndarray,
    window: tuple[int, int],
    stride: tuple[int, int],
    baseline: Any,
) -> np.ndarray:
    """Zeiler & Fergus one window at a time, Captum's way: windows start at multiples of
    the stride until one reaches the edge; a pixel gets the mean drop of its windows."""
    h, w = images.shape[1:3]
    fill = np.broadcast_to(np.asarray(baseline, dtype=np.float32), images.shape)
    total = np.zeros(images.shape)
    count = np.zeros(images.shape)
    original = model.scores(images, targets)
    for top in range(0, max(h - window[0], 0) + stride[0], stride[0]):
        for left in range(0, max(w - window[1], 0) + stride[1], stride[1]):
            patch = (slice(None), slice(top, top + window[0]), slice(left, left + window[1]))
            occluded = images.copy()
            occluded[patch] = fill[patch]
            drop = original - model.scores(occluded, targets)
            total[patch] += drop[:, None, None, None]
            count[patch] += 1
    return total / count


@pytest.mark.parametrize(
    ("window", "stride", "baseline"),
    [
        ((3, 3), (2, 2), 0.0),
        ((4, 3), (3, 1), 0.5),
        ((12, 2), (5, 2), 0.25),  # a window spanning every row: any stride is fine
        ((5, 5), (5, 5), np.array([0.1, 0.5, 0.9])),  # one value per channel
        ((5, 4), None, 0.0),  # the default stride: half the window
    ],
)
def test_equals_a_direct_loop(
    images: np.ndarray, window: tuple[int, int], stride: tuple[int, int] | None, baseline: Any
) -> None:
    model = softplus_model(images.shape[1:])
    loop_stride = stride or (window[0] // 2, window[1] // 2)
    expected = occlusion_loop(model, images, TARGETS, window, loop_stride, baseline)
    method = Occlusion(window=window, stride=stride, baseline=baseline)
    maps = method.attribute(forward_only(model), images, TARGETS, batch_size=5).maps
    np.testing.assert_allclose(maps, expected, rtol=0, atol=1e-6 * np.abs(expected).max())


@pytest.mark.torch
@pytest.mark.parametrize(
    ("window", "stride", "baseline"),
    [((3, 3), (2, 2), 0.0), ((4, 3), (3, 1), 0.5), ((12, 2), (5, 2), 0.25), ((2, 2), (1, 1), 0.0)],
)
def test_equals_captum(
    images: np.ndarray, window: tuple[int, int], stride: tuple[int, int], baseline: float
) -> None:
    torch = pytest.importorskip("torch")
    captum = pytest.importorskip("captum.attr")
    import imacs

    torch.manual_seed(0)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 5, 4),
    ).eval()
    model = imacs.load_model(net, device="cpu")
    method = Occlusion(window=window, stride=stride, baseline=baseline)
    maps = method.attribute(model, images, TARGETS, batch_size=7).maps
    # Captum's window covers every channel too: (C, rows, cols) on NCHW tensors
    expected = captum.Occlusion(net).attribute(
        torch.tensor(images).permute(0, 3, 1, 2),
        sliding_window_shapes=(3, *window),
        strides=(3, *stride),
        baselines=baseline,
        target=torch.tensor(TARGETS),
        perturbations_per_eval=4,
    )
    expected = expected.permute(0, 2, 3, 1).numpy()
    np.testing.assert_allclose(maps, expected, rtol=0, atol=1e-5 * np.abs(expected).max())


def test_only_windows_covering_the_one_pixel_a_model_reads_get_credit() -> None:
    def predict(x: np.ndarray) -> np.ndarray:
        return np.stack([x[:, 5, 6, 1], -x[:, 5, 6, 1]], axis=1)

    model = FunctionAdapter(predict, image_shape=(12, 10, 3))
    images = np.ones((1, 12, 10, 3), dtype=np.float32)
    maps = Occlusion(window=3, stride=1).attribute(model, images, 0).maps[0, ..., 0]
    # every window covering (5, 6) drops the score by 1; the others by 0
    assert maps[5, 6] == pytest.approx(1.0)
    assert maps[4:7, 5:8].min() > 0
    assert maps[:3].max() == 0 and maps[8:].max() == 0
    assert maps[:, :4].max() == 0 and maps[:, 9:].max() == 0


def test_passes_the_conformance_suite_on_a_forward_only_model() -> None:
    images = np.random.default_rng(3).random((3, 8, 8, 3), dtype=np.float32)
    model = forward_only(softplus_model())
    check_attribution_method(Occlusion(window=3, stride=2), model, images, [0, 2, 3])


def test_occluded_copies_of_several_images_share_model_calls(images: np.ndarray) -> None:
    model = RecordingAdapter(forward_only(softplus_model(images.shape[1:])))
    Occlusion(window=4, stride=4).attribute(model, images, TARGETS, batch_size=8)
    # 3 x 3 windows x 3 images = 27 copies in 4 calls, plus the unoccluded images
    assert model.largest_batch == 8
    assert model.calls <= 4 + 2


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": 13}, "window to fit the image"),
        ({"window": (4, 11)}, "window to fit the image"),
        ({"window": 3, "stride": 4}, "stride <= window"),
        ({"window": 0}, "window to be a positive int"),
        ({"stride": (1, 2, 3)}, "stride to be a positive int"),
        ({"window": 2.5}, "window to be a positive int"),
        ({"window": 3, "baseline": np.zeros((5, 5, 3))}, "baseline"),
        ({"window": 3, "baseline": np.zeros((2, 12, 10, 3))}, "baseline"),
        ({"window": 3, "baseline": "black"}, "baseline"),
    ],
)
def test_bad_parameters_are_refused(
    images: np.ndarray, params: dict[str, Any], message: str
) -> None:
    model = forward_only(softplus_model(images.shape[1:]))
    with pytest.raises(InvalidInputError, match=message):
        Occlusion(**params).attribute(model, images, TARGETS)
