"""Guided IG against PAIR saliency's reference implementation, the axioms and bad input."""

from __future__ import annotations

import types
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from imacs.adapters.base import ModelAdapter
from imacs.adapters.function import FunctionAdapter
from imacs.attribution.guided_ig import GuidedIG, guided_ig_paths
from imacs.errors import InvalidInputError, MissingCapabilityError
from imacs.testing import check_attribution_method, softplus_model

TARGETS = np.array([0, 1, 3, 2])


@pytest.fixture
def images() -> np.ndarray:
    x = np.random.default_rng(0).random((4, 6, 6, 3), dtype=np.float32)
    x[1, :2] = 0.0  # features equal to the zero baseline: PAIR treats them specially
    return x


@pytest.fixture
def pair_guided_ig() -> Iterator[Any]:
    """PAIR's module, its NumPy patched: 0.2.1 calls np.quantile(interpolation=...),
    which NumPy 2.4 removed; the shim maps the keyword to ``method=``."""
    module = pytest.importorskip("saliency.core.guided_ig")

    class NumpyWithOldQuantile(types.ModuleType):
        def __getattr__(self, name: str) -> Any:
            return getattr(np, name)

        @staticmethod
        def quantile(a: Any, q: Any, *args: Any, interpolation: Any = None, **kw: Any) -> Any:
            if interpolation is not None:
                kw["method"] = interpolation
            return np.quantile(a, q, *args, **kw)

    original = module.np
    module.np = NumpyWithOldQuantile("numpy")
    yield module
    module.np = original


def pair_maps(
    pair: Any, model: ModelAdapter, images: np.ndarray, targets: np.ndarray, **params: Any
) -> np.ndarray:
    """PAIR's Guided IG, one image and one gradient call per step at a time."""
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    def call_model(
        batch: np.ndarray, call_model_args: Any = None, expected_keys: Any = None
    ) -> Any:
        grads = model.gradients(batch, np.full(len(batch), call_model_args), batch_size=1)
        return {INPUT_OUTPUT_GRADIENTS: grads}

    baseline = params.pop("x_baseline", None)
    baselines = np.broadcast_to(0.0 if baseline is None else baseline, images.shape)
    return np.stack(
        [
            pair.GuidedIG().GetMask(
                images[i], call_model, int(targets[i]), x_baseline=baselines[i], **params
            )
            for i in range(len(images))
        ]
    )


CASES: list[dict[str, Any]] = [
    {},  # PAIR's defaults: x_steps=200, fraction=0.25, max_dist=0.02, zero baseline
    {"max_dist": 0.0, "x_steps": 30},
    {"max_dist": 1.0, "x_steps": 30},
    {"fraction": 1.0, "x_steps": 30},
    {"fraction": 0.01, "x_steps": 17, "x_baseline": 0.5},
    {"fraction": 0.5, "max_dist": 0.1, "x_steps": 7, "x_baseline": "per-image"},
]


@pytest.mark.parametrize("params", CASES)
def test_equals_pair_on_the_analytic_model(
    pair_guided_ig: Any, images: np.ndarray, params: dict[str, Any]
) -> None:
    params = dict(params)
    if isinstance(params.get("x_baseline"), str):
        params["x_baseline"] = np.random.default_rng(1).random(images.shape, dtype=np.float32)
    model = softplus_model(images.shape[1:])
    expected = pair_maps(pair_guided_ig, model, images, TARGETS, **params)
    result = GuidedIG(**params).attribute(model, images, TARGETS, batch_size=3)
    scale = np.abs(expected).max()
    assert np.abs(result.maps - expected).max() <= 1e-6 * scale  # float32 output rounding
    # before the float32 cast the paths are PAIR's bit for bit; the maps differ only in
    # the order the float64 products are added (a step's sub-moves summed first)
    baselines = np.broadcast_to(np.asarray(params.get("x_baseline", 0.0)), images.shape)
    raw = guided_ig_paths(
        model,
        images,
        np.ascontiguousarray(baselines, dtype=np.float32),
        TARGETS,
        steps=params.get("x_steps", 200),
        fraction=params.get("fraction", 0.25),
        max_dist=params.get("max_dist", 0.02),
        batch_size=4,
    )
    assert np.abs(raw - expected).max() <= 1e-12 * scale


def gradient_recorder(model: FunctionAdapter) -> tuple[FunctionAdapter, list[int]]:
    """The model again, recording how many images each gradient call received."""
    sizes: list[int] = []
    gradient_fn = model.gradient_fn
    assert gradient_fn is not None

    def gradients(images: np.ndarray, targets: np.ndarray) -> Any:
        sizes.append(len(images))
        return gradient_fn(images, targets)

    return FunctionAdapter(model.predict_fn, gradients, image_shape=(8, 8, 3)), sizes


def test_an_image_equal_to_its_baseline_gets_zeros_without_gradient_calls() -> None:
    model, sizes = gradient_recorder(softplus_model())
    images = np.zeros((2, 8, 8, 3), dtype=np.float32)
    images[1] = 0.5
    maps = GuidedIG(x_steps=10).attribute(model, images, [0, 1], batch_size=8).maps
    assert np.array_equal(maps[0], np.zeros_like(maps[0]))
    assert np.abs(maps[1]).max() > 0
    # PAIR skips such an image; here the other image's steps go alone
    assert sizes == [1] * 10


def test_max_dist_zero_is_integrated_gradients_with_left_riemann_sums(images: np.ndarray) -> None:
    model = softplus_model(images.shape[1:])
    steps = 20
    maps = GuidedIG(x_steps=steps, max_dist=0.0).attribute(model, images, TARGETS).maps
    alphas = np.arange(steps) / steps
    points = alphas[:, None, None, None, None] * images[None]  # zero baseline
    grads = np.stack([model.gradients(p, TARGETS) for p in points])
    expected = grads.mean(axis=0) * images
    np.testing.assert_allclose(maps, expected, atol=1e-6 * np.abs(expected).max())


def test_one_gradient_call_per_step_serves_every_image() -> None:
    images = np.random.default_rng(2).random((5, 8, 8, 3), dtype=np.float32)
    model, sizes = gradient_recorder(softplus_model())
    GuidedIG(x_steps=12).attribute(model, images, [0, 1, 2, 3, 0], batch_size=8)
    assert sizes == [5] * 12  # PAIR makes 60 calls of one image
    sizes.clear()
    # batch_size bounds the group of images walking their paths together
    GuidedIG(x_steps=12).attribute(model, images, [0, 1, 2, 3, 0], batch_size=2)
    assert sizes == [2] * 12 + [2] * 12 + [1] * 12


def test_passes_the_conformance_suite_with_completeness() -> None:
    images = np.random.default_rng(3).random((3, 8, 8, 3), dtype=np.float32)
    check_attribution_method(
        GuidedIG(x_steps=100), softplus_model(), images, [0, 2, 3], completeness=True
    )


def test_completeness_improves_with_steps(images: np.ndarray) -> None:
    model = softplus_model(images.shape[1:])
    coarse, fine = (
        np.abs(GuidedIG(x_steps=n).attribute(model, images, TARGETS).convergence_delta)
        for n in (10, 200)
    )
    gain = np.abs(model.scores(images, TARGETS) - model.scores(np.zeros_like(images), TARGETS))
    assert fine.sum() < coarse.sum() / 5
    assert (fine <= 0.03 * gain).all()


def test_needs_gradients() -> None:
    forward_only = FunctionAdapter(softplus_model().predict_fn, image_shape=(8, 8, 3))
    images = np.zeros((1, 8, 8, 3), dtype=np.float32)
    with pytest.raises(MissingCapabilityError, match="gradients"):
        GuidedIG().attribute(forward_only, images, 0)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fraction": 0.0}, "fraction in"),
        ({"fraction": 1.5}, "fraction in"),
        ({"fraction": "0.2"}, "fraction in"),
        ({"max_dist": -0.1}, "max_dist in"),
        ({"max_dist": 2}, "max_dist in"),
        ({"x_steps": 0}, "x_steps to be a positive int"),
        ({"x_steps": 2.5}, "x_steps to be a positive int"),
        ({"x_steps": True}, "x_steps to be a positive int"),
    ],
)
def test_bad_parameters_are_refused_when_constructed(params: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidInputError, match=message):
        GuidedIG(**params)


@pytest.mark.parametrize(
    "baseline", [np.zeros((4, 4, 3)), np.zeros((2, 8, 8, 3)), [0.0, 0.0, 0.0], np.array([np.nan])]
)
def test_bad_baselines_are_refused(baseline: Any) -> None:
    images = np.zeros((3, 8, 8, 3), dtype=np.float32)
    with pytest.raises(InvalidInputError, match="x_baseline"):
        GuidedIG(x_baseline=baseline).attribute(softplus_model(), images, 0)


# -- on a torch CNN through the torch adapter ----------------------------------------


def tiny_cnn(dtype: Any) -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1),
        torch.nn.Softplus(),
        torch.nn.MaxPool2d(2),
        torch.nn.Conv2d(6, 8, 3, padding=1),
        torch.nn.Softplus(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 4 * 4, 5),
    ).to(dtype)


@pytest.mark.torch
def test_equals_pair_on_a_torch_cnn_in_float64(pair_guided_ig: Any) -> None:
    torch = pytest.importorskip("torch")
    import imacs

    model = imacs.load_model(tiny_cnn(torch.float64), device="cpu")
    images = np.random.default_rng(4).random((4, 8, 8, 3), dtype=np.float32)
    targets = np.array([0, 1, 2, 4])
    expected = pair_maps(pair_guided_ig, model, images, targets, x_steps=60)
    maps = GuidedIG(x_steps=60).attribute(model, images, targets, batch_size=4).maps
    assert np.abs(maps - expected).max() <= 1e-5 * np.abs(expected).max()


@pytest.mark.torch
def test_equals_pair_on_a_torch_cnn_in_float32_one_image_per_call(pair_guided_ig: Any) -> None:
    """In float32 a convolution's rounding can depend on how many images share the call,
    and Guided IG is discontinuous in the gradients: a 1e-7 change can swap which
    features fall under the |gradient| quantile, after which the paths part ways (maps
    then differ by a few percent on some pixels). The float64 test above shows the batched
    paths are PAIR's once gradients do not depend on the batch; here one image per call
    gives PAIR's gradients exactly."""
    torch = pytest.importorskip("torch")
    import imacs

    model = imacs.load_model(tiny_cnn(torch.float32), device="cpu")
    images = np.random.default_rng(4).random((3, 8, 8, 3), dtype=np.float32)
    targets = np.array([0, 1, 2])
    expected = pair_maps(pair_guided_ig, model, images, targets, x_steps=60)
    maps = GuidedIG(x_steps=60).attribute(model, images, targets, batch_size=1).maps
    assert np.abs(maps - expected).max() <= 1e-5 * np.abs(expected).max()
