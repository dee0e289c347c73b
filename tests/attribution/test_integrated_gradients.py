"""Integrated Gradients, its quadratures and baselines, against Captum, PAIR and the axioms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from imacs.adapters.function import FunctionAdapter
from imacs.attribution.baselines import make_baselines
from imacs.attribution.integrated_gradients import IntegratedGradients
from imacs.attribution.quadrature import QUADRATURES, float32_linspace, quadrature
from imacs.errors import InvalidInputError
from imacs.testing import RecordingAdapter, check_attribution_method, softplus_model

CAPTUM_QUADRATURES = [
    "riemann_left",
    "riemann_right",
    "riemann_middle",
    "riemann_trapezoid",
    "gausslegendre",
]


@pytest.fixture
def images() -> np.ndarray:
    return np.random.default_rng(0).random((3, 8, 8, 3), dtype=np.float32)


TARGETS = np.array([0, 1, 3])


# -- quadratures ---------------------------------------------------------------------


@pytest.mark.parametrize("name", list(QUADRATURES))
@pytest.mark.parametrize("n", [2, 7, 50])
def test_quadrature_points_lie_in_unit_interval_and_integrate_constants(name: str, n: int) -> None:
    alphas, weights = quadrature(name, n)
    assert alphas.shape == weights.shape == (n,)
    assert (alphas >= 0).all() and (alphas <= 1).all()
    expected_total = 1 - 1 / n if name == "riemann_trapezoid" else 1.0  # Captum's weights
    assert weights.sum() == pytest.approx(expected_total)


def test_gausslegendre_is_exact_for_polynomials_of_degree_2n_minus_1() -> None:
    alphas, weights = quadrature("gausslegendre", 4)
    for degree in range(8):
        assert np.sum(weights * alphas**degree) == pytest.approx(1 / (degree + 1), rel=1e-12)


def test_captums_trapezoid_is_the_trapezoid_rule_scaled_by_one_minus_one_over_n() -> None:
    alphas, weights = quadrature("riemann_trapezoid", 10)
    exact_alphas, exact_weights = quadrature("trapezoid", 10)
    np.testing.assert_array_equal(alphas, exact_alphas)
    np.testing.assert_allclose(weights, exact_weights * (1 - 1 / 10))
    # the exact rule integrates linear functions exactly
    assert np.sum(exact_weights * exact_alphas) == pytest.approx(0.5)


def test_pair_rule_is_linspace_with_equal_weights() -> None:
    alphas, weights = quadrature("riemann_include_endpoints", 25)
    np.testing.assert_array_equal(alphas, np.linspace(0, 1, 25))
    np.testing.assert_array_equal(weights, np.full(25, 1 / 25))


def test_unknown_quadrature_lists_the_known_ones() -> None:
    with pytest.raises(InvalidInputError, match=r"riemann_middle.*gausslegendre"):
        quadrature("simpson", 10)
    with pytest.raises(InvalidInputError, match="unknown quadrature 'simpson'"):
        IntegratedGradients(quadrature="simpson")


@pytest.mark.parametrize("n_steps", [0, -3, 2.5, True])
def test_bad_step_counts_are_refused(n_steps: object) -> None:
    with pytest.raises(InvalidInputError, match="n_steps"):
        IntegratedGradients(n_steps=n_steps)  # type: ignore[arg-type]


def test_trapezoid_needs_two_steps() -> None:
    with pytest.raises(InvalidInputError, match=">= 2"):
        IntegratedGradients(n_steps=1, quadrature="riemann_trapezoid")
    assert IntegratedGradients(n_steps=1, quadrature="riemann_right").n_steps == 1


@pytest.mark.torch
def test_quadratures_equal_captums_bit_for_bit() -> None:
    pytest.importorskip("torch")
    from captum.attr._utils.approximation_methods import approximation_parameters

    for name in CAPTUM_QUADRATURES:
        step_sizes, alphas_of = approximation_parameters(name)
        for n in (2, 3, 16, 25, 50, 64, 100, 200, 301):
            alphas, weights = quadrature(name, n)
            np.testing.assert_array_equal(alphas, alphas_of(n), err_msg=f"{name} n={n}")
            np.testing.assert_array_equal(weights, step_sizes(n), err_msg=f"{name} n={n}")


@pytest.mark.torch
def test_float32_linspace_equals_torch_linspace() -> None:
    torch = pytest.importorskip("torch")
    for n in range(1, 400):
        for start, end in ((0.0, 1.0), (1 / n, 1.0), (0.0, 1 - 1 / n), (0.5 / n, 1 - 0.5 / n)):
            expected = torch.linspace(start, end, n).tolist()
            np.testing.assert_array_equal(float32_linspace(start, end, n), expected)


# -- baselines -----------------------------------------------------------------------


def test_black_and_white_follow_the_pixel_range(images: np.ndarray) -> None:
    black, white = make_baselines(["black", "white"], images, pixel_range=(-1.0, 2.0))
    assert (black == -1).all() and (white == 2).all()
    black, white = make_baselines(["black", "white"], images, pixel_range="image")
    np.testing.assert_array_equal(black[:, 0, 0, 0], images.min(axis=(1, 2, 3)))
    np.testing.assert_array_equal(white[:, 0, 0, 0], images.max(axis=(1, 2, 3)))


def test_uniform_baseline_is_seeded_shared_and_in_range(images: np.ndarray) -> None:
    (first,) = make_baselines("uniform", images, pixel_range=(2.0, 3.0), seed=1)
    (again,) = make_baselines("uniform", images[:1], pixel_range=(2.0, 3.0), seed=1)
    (other,) = make_baselines("uniform", images, pixel_range=(2.0, 3.0), seed=2)
    assert first.min() >= 2 and first.max() <= 3 and first.std() > 0.2
    np.testing.assert_array_equal(first[0], first[2])  # one draw for all images
    np.testing.assert_array_equal(first[0], again[0])  # whatever shares the batch
    assert not np.array_equal(first, other)
    two = make_baselines(["uniform", "uniform"], images, seed=1)
    assert not np.array_equal(two[0], two[1])  # several uniform baselines differ


def test_blurred_baseline_blurs_space_not_channels(images: np.ndarray) -> None:
    (blurred,) = make_baselines("blurred", images, blur_sigma=1.5)
    for i in range(len(images)):
        for c in range(3):
            expected = gaussian_filter(images[i, :, :, c], sigma=1.5, mode="reflect")
            np.testing.assert_allclose(blurred[i, :, :, c], expected, rtol=1e-6)


def test_user_arrays_broadcast_to_one_image_or_the_batch(images: np.ndarray) -> None:
    one = np.full((8, 8, 3), 0.25)
    per_image = np.arange(3, dtype=np.float32)[:, None, None, None] * np.ones((3, 8, 8, 3))
    per_channel = np.array([0.1, 0.2, 0.3])
    made = make_baselines([one, per_image, per_channel, 0.5], images)
    assert made.shape == (4, *images.shape) and made.dtype == np.float32
    assert (made[0] == 0.25).all() and (made[3] == 0.5).all()
    np.testing.assert_array_equal(made[1][:, 0, 0, 0], [0, 1, 2])
    np.testing.assert_allclose(made[2][1, 4, 4], per_channel)


@pytest.mark.parametrize("shape", [(7, 8, 3), (8, 8, 4), (2, 8, 8, 3), (1, 1, 8, 8, 3)])
def test_wrong_baseline_shape_says_the_expected_shape(images: np.ndarray, shape: tuple) -> None:
    model = softplus_model()
    with pytest.raises(InvalidInputError, match=r"\(H, W, C\) = \(8, 8, 3\).*got shape"):
        IntegratedGradients(baselines=np.zeros(shape)).attribute(model, images, TARGETS)


@pytest.mark.parametrize(
    ("baselines", "match"),
    [
        ("grey", "unknown baseline 'grey'"),
        ([], "at least one baseline"),
        ({"a": 1}, "expected a baseline name"),
    ],
)
def test_bad_baseline_specs_are_refused(baselines: object, match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        IntegratedGradients(baselines=baselines)


@pytest.mark.parametrize("pixel_range", [(1.0, 0.0), (0.0,), "per-image", (0, float("nan"))])
def test_bad_pixel_ranges_are_refused(pixel_range: object) -> None:
    with pytest.raises(InvalidInputError, match="pixel_range"):
        IntegratedGradients(pixel_range=pixel_range)


# -- IG: axioms ----------------------------------------------------------------------


@pytest.mark.parametrize("quadrature_name", ["gausslegendre", "riemann_middle"])
def test_completeness_within_one_percent_and_delta_reports_the_error(
    images: np.ndarray, quadrature_name: str
) -> None:
    model = softplus_model()
    result = IntegratedGradients(n_steps=32, quadrature=quadrature_name).attribute(
        model, images, TARGETS, batch_size=10
    )
    change = model.scores(images, TARGETS) - model.scores(np.zeros_like(images), TARGETS)
    error = result.maps.reshape(3, -1).sum(axis=1, dtype=np.float64) - change
    assert (np.abs(error) <= 0.01 * np.abs(change)).all()
    np.testing.assert_allclose(result.convergence_delta, error, atol=1e-5 * np.abs(change).max())


def test_several_baselines_average_the_single_baseline_maps(images: np.ndarray) -> None:
    model = softplus_model()
    both = IntegratedGradients(n_steps=8, baselines=["black", "white"]).attribute(
        model, images, TARGETS, batch_size=5
    )
    black = IntegratedGradients(n_steps=8, baselines="black").attribute(model, images, TARGETS)
    white = IntegratedGradients(n_steps=8, baselines="white").attribute(model, images, TARGETS)
    np.testing.assert_allclose(both.maps, (black.maps + white.maps) / 2, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(
        both.convergence_delta,
        (black.convergence_delta + white.convergence_delta) / 2,  # type: ignore[operator]
        atol=1e-6,
    )


def test_linear_model_gets_exact_contributions_with_any_rule(images: np.ndarray) -> None:
    w = np.random.default_rng(1).normal(size=(8, 8, 3)).astype(np.float32)
    model = FunctionAdapter(
        lambda x: np.stack([(x * w).sum(axis=(1, 2, 3)), -(x * w).sum(axis=(1, 2, 3))], 1),
        lambda x, t: np.where(t[:, None, None, None] == 0, w, -w),
        fingerprint="linear",
    )
    baseline = np.full((8, 8, 3), 0.3, dtype=np.float32)
    for name in ("riemann_left", "gausslegendre", "riemann_include_endpoints"):
        maps = IntegratedGradients(n_steps=3, quadrature=name, baselines=baseline).attribute(
            model, images, [0, 1, 0]
        )
        sign = np.array([1, -1, 1])[:, None, None, None]
        np.testing.assert_allclose(maps, sign * w * (images - baseline), rtol=1e-5, atol=1e-6)


class _CallCounter(FunctionAdapter):
    def __init__(self, inner: FunctionAdapter) -> None:
        super().__init__(inner.predict_fn, inner.gradient_fn, fingerprint="counted")
        self.score_calls = 0
        self.gradient_inputs = 0

    def scores(self, images: object, targets: object, *, batch_size: int | None = None) -> object:
        self.score_calls += 1
        return super().scores(images, targets, batch_size=batch_size)

    def _value_and_gradients(self, images: np.ndarray, targets: np.ndarray) -> tuple:
        self.gradient_inputs += len(images)
        return super()._value_and_gradients(images, targets)


@pytest.mark.parametrize(
    ("name", "score_calls"),
    [("trapezoid", 0), ("riemann_include_endpoints", 0), ("gausslegendre", 1)],
)
def test_no_redundant_model_calls(images: np.ndarray, name: str, score_calls: int) -> None:
    model = _CallCounter(softplus_model())
    model.predict(images[:1])  # learn the class count first
    IntegratedGradients(n_steps=10, quadrature=name, baselines=["black", "white"]).attribute(
        model, images, TARGETS, batch_size=1000
    )
    assert model.gradient_inputs == 3 * 2 * 10  # images x baselines x steps, once each
    assert model.score_calls == score_calls  # end points from the path when it has them


def test_ig_passes_the_conformance_suite(images: np.ndarray) -> None:
    model = softplus_model()
    check_attribution_method(
        IntegratedGradients(n_steps=24), model, images, TARGETS, completeness=True
    )
    check_attribution_method(
        IntegratedGradients(n_steps=24, quadrature="trapezoid", baselines=[0.0, 1.0]),
        model,
        images,
        TARGETS,
        completeness=True,
        baselines=[0.0, 1.0],
    )
    check_attribution_method(
        IntegratedGradients(n_steps=6, baselines=["uniform", "blurred"], blur_sigma=2.0),
        model,
        images,
        TARGETS,
    )


def test_ig_model_calls_stay_within_batch_size(images: np.ndarray) -> None:
    recorder = RecordingAdapter(softplus_model())
    IntegratedGradients(n_steps=10, baselines=["black", "white"]).attribute(
        recorder, images, TARGETS, batch_size=4
    )
    assert recorder.largest_batch == 4
    assert recorder.calls >= 3 * 2 * 10 // 4


# -- IG against the reference implementations ----------------------------------------


def _pair_call_model_function(model: FunctionAdapter, target: int):  # type: ignore[no-untyped-def]
    from saliency.core.base import INPUT_OUTPUT_GRADIENTS

    def call_model_function(x_batch, call_model_args=None, expected_keys=None):  # type: ignore[no-untyped-def]
        grads = model.gradients(np.asarray(x_batch, np.float32), np.full(len(x_batch), target))
        return {INPUT_OUTPUT_GRADIENTS: grads}

    return call_model_function


@pytest.mark.parametrize("x_steps", [2, 25])
def test_ig_equals_pair_saliency(images: np.ndarray, x_steps: int) -> None:
    saliency = pytest.importorskip("saliency.core")
    model = softplus_model()
    baseline = np.random.default_rng(5).random((8, 8, 3), dtype=np.float32) * 0.5
    ours = IntegratedGradients(
        n_steps=x_steps, quadrature="riemann_include_endpoints", baselines=baseline
    ).attribute(model, images, TARGETS)
    for i, target in enumerate(TARGETS):
        theirs = saliency.IntegratedGradients().GetMask(
            images[i],
            _pair_call_model_function(model, int(target)),
            x_baseline=baseline,
            x_steps=x_steps,
            batch_size=7,
        )
        scale = np.abs(theirs).max()
        assert np.abs(ours.maps[i] - theirs).max() <= 1e-5 * scale


def _tiny_softplus_cnn():  # type: ignore[no-untyped-def]
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1),
        torch.nn.Softplus(),
        torch.nn.Conv2d(6, 8, 3, stride=2),
        torch.nn.Softplus(),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 4 * 4, 5),
    ).eval()


@pytest.mark.torch
@pytest.mark.parametrize("name", CAPTUM_QUADRATURES)
def test_ig_equals_captum_for_every_quadrature(name: str) -> None:
    torch = pytest.importorskip("torch")
    from captum.attr import IntegratedGradients as CaptumIG

    import imacs

    module = _tiny_softplus_cnn()
    rng = np.random.default_rng(1)
    images = rng.random((3, 10, 10, 3), dtype=np.float32)
    baseline = rng.random((10, 10, 3), dtype=np.float32) * 0.3
    targets = np.array([0, 3, 4])
    model = imacs.load_model(module, device="cpu")

    ours = IntegratedGradients(n_steps=20, quadrature=name, baselines=baseline).attribute(
        model, images, targets, batch_size=16
    )
    x = torch.from_numpy(images).permute(0, 3, 1, 2)
    b = torch.from_numpy(np.broadcast_to(baseline, images.shape).copy()).permute(0, 3, 1, 2)
    theirs, delta = CaptumIG(module).attribute(
        x,
        baselines=b,
        target=torch.from_numpy(targets),
        n_steps=20,
        method=name,
        return_convergence_delta=True,
    )
    theirs = theirs.permute(0, 2, 3, 1).detach().numpy()
    assert np.abs(ours.maps - theirs).max() <= 1e-5 * np.abs(theirs).max()
    scale = np.abs(ours.maps.reshape(3, -1).sum(axis=1)).max()
    np.testing.assert_allclose(ours.convergence_delta, delta.numpy(), atol=1e-5 * scale)


@pytest.mark.torch
def test_channels_last_gives_the_contiguous_layouts_maps() -> None:
    """The PyTorch adapter's channels-last option (``None``: convolutions on the CPU)
    changes the passes' memory layout only: on a network without kinks the maps equal the
    contiguous layout's within 1e-5 of their largest value."""
    torch = pytest.importorskip("torch")
    import imacs

    torch.manual_seed(0)
    nn = torch.nn
    module = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1),
        nn.Softplus(beta=10),
        nn.Conv2d(8, 16, 3, stride=2, padding=1),
        nn.Softplus(beta=10),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(16, 4),
    )
    images = np.random.default_rng(2).random((4, 16, 16, 3), dtype=np.float32)
    fast = imacs.load_model(module, device="cpu", channels_last=None)
    plain = imacs.load_model(module, device="cpu")
    assert fast.channels_last and not plain.channels_last
    targets = plain.predict(images).argmax(axis=1)
    method = IntegratedGradients(n_steps=16, baselines="black")
    expected = method.attribute(plain, images, targets).maps
    maps = method.attribute(fast, images, targets).maps
    assert np.abs(maps - expected).max() <= 1e-5 * np.abs(expected).max()
