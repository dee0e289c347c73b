"""The imacs-captum plugin: found through its entry point, equal to Captum called directly.

The references call Captum on a module that does the preprocessing itself, with Captum's
own ``target=``: nothing of the plugin's forward function is shared with them.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
captum_attr = pytest.importorskip("captum.attr")
nn = torch.nn

from imacs_captum.captum_method import CaptumMethod  # noqa: E402

import imacs  # noqa: E402
from imacs import plugins  # noqa: E402
from imacs.attribution.seeds import image_entropy  # noqa: E402
from imacs.errors import InvalidInputError, MissingCapabilityError  # noqa: E402
from imacs.testing import softplus_model  # noqa: E402
from imacs.testing.attribution_checks import (  # noqa: E402
    ATTRIBUTION_CHECKS,
    check_completeness,
    check_requirements_are_used,
    check_respects_batch_size,
)

pytestmark = pytest.mark.torch

N_CLASSES = 3
SCALE, MEAN, STD = 1 / 255, (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
PREPROCESSING = {"scale": SCALE, "mean": MEAN, "std": STD}
TARGETS = np.array([0, 2, 1])

METHOD_NAMES = [
    "captum-deep-lift",
    "captum-gradient-shap",
    "captum-input-x-gradient",
    "captum-integrated-gradients",
    "captum-layer-grad-cam",
    "captum-noise-tunnel",
    "captum-occlusion",
    "captum-saliency",
]


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread() -> Iterator[None]:
    # Captum makes many small calls; on a loaded machine torch's thread pool spins for
    # tens of milliseconds on each. One thread keeps this file fast.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# -- tiny models ----------------------------------------------------------------------------


def relu_cnn() -> nn.Module:
    """ReLU networks: DeepLift's Rescale rule sums exactly to F(x) - F(baseline)."""
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.ReLU(),
        nn.AvgPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 4 * 4, N_CLASSES),
    ).eval()


def smooth_cnn() -> nn.Module:
    """Softplus and tanh only: IG's quadrature converges fast, completeness is tight."""
    torch.manual_seed(1)
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.Softplus(),
        nn.Conv2d(4, 6, 3, padding=1),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(6 * 4, N_CLASSES),
    ).eval()


class Preprocessed(nn.Module):
    """The reference: preprocessing written out, channel-last pixels in NCHW order."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        mean = torch.tensor(MEAN)[:, None, None]
        std = torch.tensor(STD)[:, None, None]
        return self.model((pixels * SCALE - mean) / std)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, size=(3, 8, 8, 3)).astype(np.float32)


def nchw(images: np.ndarray) -> torch.Tensor:
    return torch.tensor(images).permute(0, 3, 1, 2).contiguous()


def nhwc(tensor: torch.Tensor) -> np.ndarray:
    return tensor.detach().permute(0, 2, 3, 1).numpy()


def assert_close(actual: np.ndarray, expected: np.ndarray, rtol: float = 1e-6) -> None:
    """Equal within ``rtol`` of the largest value (float32 rounding)."""
    expected = np.asarray(expected)
    scale = max(float(np.abs(expected).max()), 1e-12)
    error = float(np.abs(np.asarray(actual) - expected).max())
    assert error <= rtol * scale, f"differ by {error:.3g}, {error / scale:.3g} of the largest"


# -- the plugin is found by name ------------------------------------------------------------


def test_plugin_lists_every_method_and_the_registry_creates_them() -> None:
    plugins.reset()
    info = {p.name: p for p in imacs.get_plugins()}["captum"]
    assert info.status == "loaded"
    assert info.distribution == "imacs-captum"
    assert info.components == {"attribution_method": METHOD_NAMES}
    for name in METHOD_NAMES:
        method = imacs.get_method(name)
        assert isinstance(method, CaptumMethod)
        assert method.name == name
        assert method.citation


def test_unknown_parameters_are_refused_by_the_registry() -> None:
    with pytest.raises(InvalidInputError, match=r"does not take parameter\(s\) steps.*n_steps"):
        imacs.get_method("captum-integrated-gradients", steps=4)


def test_listing_methods_imports_neither_torch_nor_captum() -> None:
    code = textwrap.dedent(
        """
        import sys
        import imacs
        from imacs.plugins import get_host
        names = get_host().registry.names("attribution_method")
        assert "captum-integrated-gradients" in names, names
        print(sorted(m for m in ("torch", "captum") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- against Captum called directly --------------------------------------------------------


def test_integrated_gradients_equals_captum_with_the_same_preprocessing(images) -> None:
    module = smooth_cnn()
    model = imacs.load_model(module, preprocessing=PREPROCESSING)
    result = imacs.attribute(
        model, images, TARGETS, method="captum-integrated-gradients", n_steps=16, batch_size=5
    )
    reference, delta = captum_attr.IntegratedGradients(Preprocessed(module)).attribute(
        nchw(images),
        target=torch.tensor(TARGETS),
        n_steps=16,
        return_convergence_delta=True,
    )
    assert_close(result.maps, nhwc(reference))
    # deltas are rounding-sized here: compare them with the score change they measure
    change = model.scores(images, TARGETS) - model.scores(np.zeros_like(images), TARGETS)
    error = np.abs(result.convergence_delta - delta.numpy())
    assert (error <= 1e-5 * np.abs(change)).all()


def test_integrated_gradients_without_preprocessing_equals_captum_on_the_module(images) -> None:
    module = smooth_cnn()
    model = imacs.load_model(module)
    x = images / 255
    baseline = np.full((8, 8, 3), 0.5, dtype=np.float32)
    result = imacs.get_method(
        "captum-integrated-gradients", n_steps=12, quadrature="riemann_middle", baselines=baseline
    ).attribute(model, x, TARGETS, batch_size=4096)
    reference = captum_attr.IntegratedGradients(module).attribute(
        nchw(x),
        baselines=nchw(baseline[None]),
        target=torch.tensor(TARGETS),
        n_steps=12,
        method="riemann_middle",
    )
    assert_close(result.maps, nhwc(reference))


def reference_cases() -> list[tuple[str, dict[str, Any], Any, dict[str, Any]]]:
    """(method, params, Captum class on the reference module, Captum's arguments)."""
    return [
        ("captum-saliency", {}, captum_attr.Saliency, {}),
        ("captum-saliency", {"abs": False}, captum_attr.Saliency, {"abs": False}),
        ("captum-input-x-gradient", {}, captum_attr.InputXGradient, {}),
        ("captum-deep-lift", {}, captum_attr.DeepLift, {}),
        (
            "captum-deep-lift",
            {"baselines": 128.0},
            captum_attr.DeepLift,
            {"baselines": 128.0},
        ),
        # the default window, 15 x 15, is cut to these 8 x 8 images
        ("captum-occlusion", {}, captum_attr.Occlusion, {"sliding_window_shapes": (3, 8, 8)}),
        (
            "captum-occlusion",
            {"sliding_window_shapes": (3, 3), "strides": (2, 2), "baselines": 100.0},
            captum_attr.Occlusion,
            {"sliding_window_shapes": (3, 3, 3), "strides": (1, 2, 2), "baselines": 100.0},
        ),
    ]


@pytest.mark.filterwarnings("ignore:Setting forward, backward hooks:UserWarning")
@pytest.mark.parametrize(
    ("name", "params", "captum_class", "arguments"),
    reference_cases(),
    ids=lambda v: v if isinstance(v, str) else None,
)
def test_method_equals_captum_called_directly(
    images, name: str, params: dict[str, Any], captum_class: Any, arguments: dict[str, Any]
) -> None:
    module = relu_cnn()
    model = imacs.load_model(module, preprocessing=PREPROCESSING)
    result = imacs.attribute(model, images, TARGETS, method=name, batch_size=2, **params)
    reference = captum_class(Preprocessed(module)).attribute(
        nchw(images).requires_grad_(), target=torch.tensor(TARGETS), **arguments
    )
    if isinstance(reference, tuple):
        reference = reference[0]
    assert_close(result.maps, nhwc(reference), rtol=1e-5)


def test_layer_grad_cam_equals_captum_upsampled_and_repeated_over_channels(images) -> None:
    module = relu_cnn()
    model = imacs.load_model(module, preprocessing=PREPROCESSING)
    assert model.default_layer(images) == "4"  # the last spatial feature map
    result = imacs.attribute(
        model, images, TARGETS, method="captum-layer-grad-cam", interpolate_mode="bilinear"
    )
    reference = captum_attr.LayerGradCam(Preprocessed(module), module[4]).attribute(
        nchw(images), target=torch.tensor(TARGETS)
    )
    upsampled = captum_attr.LayerAttribution.interpolate(reference, (8, 8), "bilinear")
    expected = nhwc(upsampled)
    assert result.maps.shape == images.shape
    for channel in range(3):
        assert_close(result.maps[..., channel : channel + 1], expected, rtol=1e-5)


def seeded_draws(seed: int, image: np.ndarray) -> None:
    value = int(np.random.SeedSequence([seed, image_entropy(image)]).generate_state(1)[0])
    torch.manual_seed(value)
    np.random.seed(value)  # noqa: NPY002 - the generator Captum draws from


def test_gradient_shap_is_captums_with_draws_seeded_per_image(images) -> None:
    module = relu_cnn()
    model = imacs.load_model(module, preprocessing=PREPROCESSING)
    distribution = np.stack([np.zeros((8, 8, 3)), np.full((8, 8, 3), 255.0)]).astype(np.float32)
    params = {"baselines": distribution, "n_samples": 4, "stdevs": 2.0, "seed": 3}
    result = imacs.attribute(
        model, images, TARGETS, method="captum-gradient-shap", batch_size=16, **params
    )
    shap = captum_attr.GradientShap(Preprocessed(module))
    for i in range(len(images)):
        seeded_draws(3, images[i])
        expected, delta = shap.attribute(
            nchw(images[i : i + 1]),
            baselines=nchw(distribution),
            n_samples=4,
            stdevs=2.0,
            target=torch.tensor(TARGETS[i : i + 1]),
            return_convergence_delta=True,
        )
        assert_close(result.maps[i : i + 1], nhwc(expected), rtol=1e-5)
        assert result.convergence_delta[i] == pytest.approx(float(delta.mean()), rel=1e-4)
    # an image's draws do not depend on its place in the call
    last = imacs.attribute(
        model, images[-1:], TARGETS[-1:], method="captum-gradient-shap", batch_size=16, **params
    )
    np.testing.assert_array_equal(last.maps[0], result.maps[-1])


def test_noise_tunnel_is_captums_one_sample_at_a_time(images) -> None:
    module = smooth_cnn()
    model = imacs.load_model(module, preprocessing=PREPROCESSING)
    params = {
        "attribution_method": "captum-integrated-gradients",
        "attribution_params": {"n_steps": 6},
        "nt_type": "smoothgrad_sq",
        "nt_samples": 3,
        "stdevs": 5.0,
    }
    result = imacs.attribute(model, images, TARGETS, method="captum-noise-tunnel", **params)
    tunnel = captum_attr.NoiseTunnel(captum_attr.IntegratedGradients(Preprocessed(module)))
    for i in range(len(images)):
        seeded_draws(0, images[i])
        expected = tunnel.attribute(
            nchw(images[i : i + 1]),
            nt_type="smoothgrad_sq",
            nt_samples=3,
            nt_samples_batch_size=1,
            stdevs=5.0,
            target=torch.tensor(TARGETS[i : i + 1]),
            n_steps=6,
        )
        assert_close(result.maps[i : i + 1], nhwc(expected), rtol=1e-5)


def test_random_methods_leave_the_callers_generators_alone(images) -> None:
    model = imacs.load_model(relu_cnn(), preprocessing=PREPROCESSING)
    np.random.seed(7)  # noqa: NPY002 - the generator Captum draws from
    torch.manual_seed(7)
    numpy_before = np.random.get_state()[1].copy()  # noqa: NPY002
    torch_before = torch.get_rng_state()
    first = imacs.attribute(model, images, TARGETS, method="captum-gradient-shap", seed=1)
    other = imacs.attribute(model, images, TARGETS, method="captum-gradient-shap", seed=2)
    np.testing.assert_array_equal(np.random.get_state()[1], numpy_before)  # noqa: NPY002
    assert torch.equal(torch.get_rng_state(), torch_before)
    assert not np.allclose(first.maps, other.maps)


# -- the conformance suite ----------------------------------------------------------------


def conformance_cases() -> list[tuple[str, dict[str, Any], str, bool]]:
    """(method, params, model, completeness)."""
    return [
        ("captum-integrated-gradients", {"n_steps": 24}, "smooth", True),
        ("captum-saliency", {}, "relu", False),
        ("captum-input-x-gradient", {}, "relu", False),
        ("captum-deep-lift", {}, "relu", True),  # DeepLift's summation-to-delta
        ("captum-gradient-shap", {"n_samples": 3, "stdevs": 1.0}, "relu", False),
        ("captum-occlusion", {"sliding_window_shapes": (4, 4), "strides": 2}, "relu", False),
        ("captum-layer-grad-cam", {}, "relu", False),
        (
            "captum-noise-tunnel",
            {"nt_type": "vargrad", "nt_samples": 3, "stdevs": 3.0},
            "smooth",
            False,
        ),
        (
            "captum-noise-tunnel",
            {
                "attribution_method": "captum-occlusion",
                "attribution_params": {"sliding_window_shapes": (4, 4), "strides": 4},
                "nt_type": "smoothgrad_sq",
                "nt_samples": 2,
                "stdevs": 3.0,
            },
            "relu",
            False,
        ),
    ]


def run_conformance(
    method: imacs.AttributionMethod,
    model: imacs.ModelAdapter,
    images: np.ndarray,
    completeness: bool,
) -> None:
    # imacs.testing.check_attribution_method, less the two checks that wrap the model in a
    # RecordingAdapter: it is not a TorchAdapter, so Captum methods refuse it;
    # test_model_calls_stay_within_batch_size counts the module's inputs instead.
    failures = []
    for check in ATTRIBUTION_CHECKS:
        if check in (check_respects_batch_size, check_requirements_are_used):
            continue
        try:
            check(method, model, images, TARGETS)
        except AssertionError as exc:
            failures.append(f"{check.__name__}: {exc}")
    if completeness:
        try:
            check_completeness(method, model, images, TARGETS, baselines=0.0)
        except AssertionError as exc:
            failures.append(f"check_completeness: {exc}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize(
    ("name", "params", "network", "completeness"),
    conformance_cases(),
    ids=lambda v: v if isinstance(v, str) and v.startswith("captum") else None,
)
def test_method_passes_the_conformance_checks(
    images, name: str, params: dict[str, Any], network: str, completeness: bool
) -> None:
    module = smooth_cnn() if network == "smooth" else relu_cnn()
    model = imacs.load_model(module, preprocessing=PREPROCESSING)
    run_conformance(imacs.get_method(name, **params), model, images, completeness)


class CountInputs:
    """A forward pre-hook on the module: the most inputs one call received."""

    def __init__(self, module: nn.Module) -> None:
        self.largest = 0
        self.handle = module.register_forward_pre_hook(self)

    def __call__(self, module: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        self.largest = max(self.largest, len(args[0]))


@pytest.mark.parametrize(
    ("name", "params", "network", "completeness"),
    conformance_cases(),
    ids=lambda v: v if isinstance(v, str) and v.startswith("captum") else None,
)
def test_model_calls_stay_within_batch_size(
    images, name: str, params: dict[str, Any], network: str, completeness: bool
) -> None:
    module = smooth_cnn() if network == "smooth" else relu_cnn()
    model = imacs.load_model(module, preprocessing=PREPROCESSING)
    method = imacs.get_method(name, **params)
    # DeepLift sends image and baseline together, GradientShap all samples of an image
    least = method.inputs_per_image()
    counter = CountInputs(module)
    for batch_size in (1, 2, 5):
        counter.largest = 0
        method.attribute(model, images, TARGETS, batch_size=batch_size)
        assert 0 < counter.largest <= max(batch_size, least), (batch_size, counter.largest)
    counter.handle.remove()


def test_integrated_gradients_fills_the_batch_with_path_steps(images) -> None:
    module = smooth_cnn()
    model = imacs.load_model(module)
    counter = CountInputs(module)
    imacs.attribute(
        model, images / 255, TARGETS, method="captum-integrated-gradients", batch_size=12
    )
    assert counter.largest == 12  # 3 images x 4 steps per call


# -- errors -------------------------------------------------------------------------------


def test_a_non_torch_adapter_is_refused_with_the_adapter_named(images) -> None:
    model = softplus_model()
    for name in METHOD_NAMES:
        method = imacs.get_method(name)
        with pytest.raises((InvalidInputError, MissingCapabilityError)) as info:
            method.attribute(model, images / 255, TARGETS)
        if isinstance(info.value, InvalidInputError):
            assert f"{name} needs a PyTorch model loaded through imacs-torch" in str(info.value)
            assert "got adapter 'function'" in str(info.value)


def test_a_keras_adapter_is_refused_with_the_adapter_named(images) -> None:
    keras = pytest.importorskip("keras")
    pytest.importorskip("imacs_tensorflow")
    inputs = keras.Input((8, 8, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = imacs.load_model(keras.Model(inputs, keras.layers.Dense(N_CLASSES)(pooled)))
    method = imacs.get_method("captum-integrated-gradients")
    with pytest.raises(InvalidInputError) as info:
        method.attribute(model, images, TARGETS)
    message = str(info.value)
    assert "captum-integrated-gradients needs a PyTorch model loaded through imacs-torch" in message
    assert "got adapter 'tensorflow'" in message
    assert "'integrated-gradients'" in message  # the built-in that works on any adapter


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("captum-integrated-gradients", {"n_steps": 0}, "n_steps to be an int >= 1"),
        ("captum-integrated-gradients", {"quadrature": "simpson"}, "unknown quadrature"),
        ("captum-integrated-gradients", {"baselines": "black"}, "expected baselines"),
        ("captum-gradient-shap", {"stdevs": -1.0}, "stdevs to be a number >= 0"),
        ("captum-occlusion", {"sliding_window_shapes": (0, 2)}, "tuple of positive ints"),
        ("captum-layer-grad-cam", {"interpolate_mode": "cubic"}, "unknown interpolate_mode"),
        ("captum-noise-tunnel", {"attribution_method": "saliency"}, "cannot wrap 'saliency'"),
        ("captum-noise-tunnel", {"nt_type": "mean"}, "unknown nt_type"),
        (
            "captum-noise-tunnel",
            {"attribution_params": {"steps": 3}},
            r"captum-saliency does not take parameter\(s\) steps",
        ),
    ],
)
def test_bad_parameters_are_refused(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        imacs.get_method(name, **params)


def test_bad_inputs_at_attribution_time_are_refused(images) -> None:
    model = imacs.load_model(relu_cnn(), preprocessing=PREPROCESSING)
    cases = [
        ("captum-integrated-gradients", {"baselines": np.zeros((2, 2))}, "broadcastable"),
        ("captum-occlusion", {"sliding_window_shapes": (9, 9)}, "no larger than the image"),
        ("captum-layer-grad-cam", {"layer": "7.weight"}, "no layer '7.weight'"),
        ("captum-layer-grad-cam", {"layer": "6"}, "needs a layer with a spatial output"),
    ]
    for name, params, match in cases:
        with pytest.raises(InvalidInputError, match=match):
            imacs.attribute(model, images, TARGETS, method=name, **params)
