"""Grad-CAM against Captum's LayerGradCam, a hand computation, and the adapter contract."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from imacs.adapters.base import ModelAdapter
from imacs.attribution.grad_cam import GradCAM, interpolate_maps, register_attribution_methods
from imacs.errors import InvalidInputError, MissingCapabilityError
from imacs.testing import check_attribution_method, softplus_model

TARGETS = np.array([0, 2, 4])


def images(shape: tuple[int, ...] = (3, 13, 11, 3)) -> np.ndarray:
    return np.random.default_rng(0).random(shape, dtype=np.float32)


class PooledSoftplusModel(ModelAdapter):
    """Layer ``"pool"``: 2x2 average pooling; outputs ``sum_hw softplus(pool) @ V``.

    The gradient with respect to the layer is ``sigmoid(pool) * V[:, target]``, so
    Grad-CAM has a closed form. It names its layers but offers no default layer.
    """

    name = "pooled-softplus"
    capabilities = frozenset({"gradients", "layers"})

    def __init__(self, channels: int = 3, n_classes: int = 5):
        super().__init__()
        self.v = np.random.default_rng(1).normal(size=(channels, n_classes))

    def pool(self, x: np.ndarray) -> np.ndarray:
        n, h, w, c = x.shape
        return x[:, : h // 2 * 2, : w // 2 * 2].reshape(n, h // 2, 2, w // 2, 2, c).mean((2, 4))

    def _predict(self, images: np.ndarray) -> np.ndarray:
        return np.logaddexp(0.0, self.pool(images)).sum((1, 2)) @ self.v

    def _scores(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        return self._predict(images)[np.arange(len(images)), targets]

    def _value_and_gradients(self, images: np.ndarray, targets: np.ndarray) -> Any:
        raise NotImplementedError  # Grad-CAM never asks for input gradients

    def layer_names(self) -> list[str]:
        return ["pool"]

    def layer_gradients(
        self, images: Any, targets: Any, layer: str, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        if layer != "pool":
            raise InvalidInputError(f"no layer {layer!r}")
        x, t = self._check_images_and_targets(images, targets)
        a = self.pool(x)
        grads = 0.5 * (1 + np.tanh(0.5 * a)) * self.v[:, t].T[:, None, None, :]
        return a.astype(np.float32), grads.astype(np.float32)

    def fingerprint(self) -> str:
        return "pooled-softplus"


def test_grad_cam_is_the_papers_formula() -> None:
    model = PooledSoftplusModel()
    x = images((3, 8, 10, 3))
    maps = GradCAM(layer="pool", interpolate_mode="nearest").attribute(model, x, TARGETS).maps
    a = model.pool(x.astype(np.float64))
    weights = (0.5 * (1 + np.tanh(0.5 * a)) * model.v[:, TARGETS].T[:, None, None, :]).mean((1, 2))
    cam = np.maximum(np.einsum("nhwc,nc->nhw", a, weights), 0.0)
    expected = cam.repeat(2, axis=1).repeat(2, axis=2)  # nearest, exact factor 2
    for c in range(3):
        np.testing.assert_allclose(maps[..., c], expected, rtol=1e-5, atol=1e-7)
    assert (maps >= 0).all() and maps.max() > 0


def test_without_relu_the_map_keeps_its_sign() -> None:
    model = PooledSoftplusModel()
    x = images((3, 8, 10, 3)) - 0.5
    # nearest upsampling commutes with the ReLU; bilinear would not
    signed = GradCAM(layer="pool", relu_attributions=False, interpolate_mode="nearest")
    relu = GradCAM(layer="pool", interpolate_mode="nearest")
    signed_maps = signed.attribute(model, x, TARGETS).maps
    relu_maps = relu.attribute(model, x, TARGETS).maps
    assert (signed_maps < 0).any()
    np.testing.assert_allclose(np.maximum(signed_maps, 0), relu_maps, atol=1e-6)


def test_adapter_without_default_layer_needs_layer() -> None:
    with pytest.raises(InvalidInputError, match="needs layer="):
        GradCAM().attribute(PooledSoftplusModel(), images((2, 8, 8, 3)), [0, 1])


def test_unknown_layer_raises() -> None:
    with pytest.raises(InvalidInputError, match="no layer"):
        GradCAM(layer="conv9").attribute(PooledSoftplusModel(), images((2, 8, 8, 3)), [0, 1])


def test_adapter_without_layers_raises_missing_capability() -> None:
    model = softplus_model((8, 8, 3))
    with pytest.raises(MissingCapabilityError, match="'layers'"):
        GradCAM(layer="x").attribute(model, images((2, 8, 8, 3)), [0, 1])


def test_conformance_suite_on_the_numpy_model() -> None:
    check_attribution_method(GradCAM(layer="pool"), PooledSoftplusModel(), images(), TARGETS)


@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_interpolation_keeps_constants_and_identity(mode: str) -> None:
    maps = np.random.default_rng(0).normal(size=(2, 5, 7))
    assert np.allclose(interpolate_maps(maps, (5, 7), mode), maps)
    constant = interpolate_maps(np.full((1, 3, 4), 2.5), (11, 6), mode)
    assert constant.shape == (1, 11, 6) and np.allclose(constant, 2.5)


def test_bad_parameters_raise() -> None:
    with pytest.raises(InvalidInputError, match="interpolate_mode"):
        GradCAM(interpolate_mode="bicubic")
    with pytest.raises(InvalidInputError, match="layer"):
        GradCAM(layer=3)  # type: ignore[arg-type]


def test_registered_with_its_requirements() -> None:
    registered: list[type] = []
    register_attribution_methods(registered.append)
    assert registered == [GradCAM]
    assert GradCAM.name == "grad-cam" and GradCAM.requires == {"layers"}


# -- against Captum, through the torch adapter -------------------------------------------


@pytest.fixture
def torch_cnn() -> Any:
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(4, 6, 3, stride=2),
        nn.Tanh(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(6, 5),
    ).eval()


@pytest.mark.torch
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
@pytest.mark.parametrize("relu", [True, False])
@pytest.mark.parametrize("layer", ["1", "3", None])
def test_equals_captum_layer_grad_cam(torch_cnn: Any, mode: str, relu: bool, layer: Any) -> None:
    import torch
    from captum.attr import LayerAttribution, LayerGradCam

    import imacs

    model = imacs.load_model(torch_cnn)
    x = images()
    method = GradCAM(layer=layer, relu_attributions=relu, interpolate_mode=mode)
    result = method.attribute(model, x, TARGETS, batch_size=2)
    assert result.params["layer"] == (layer or "3")  # the default: the last spatial map
    module = torch_cnn[int(layer or "3")]
    inputs = torch.from_numpy(x).permute(0, 3, 1, 2)
    cam = LayerGradCam(torch_cnn, module).attribute(
        inputs, target=torch.from_numpy(TARGETS), relu_attributions=relu
    )
    expected = LayerAttribution.interpolate(cam, (13, 11), interpolate_mode=mode)[:, 0]
    expected = expected.detach().numpy()
    scale = np.abs(expected).max()
    assert scale > 0
    for c in range(3):
        assert np.abs(result.maps[..., c] - expected).max() <= 1e-5 * scale


@pytest.mark.torch
@pytest.mark.parametrize("size", [(13, 11), (4, 3), (32, 20), (7, 7)])
@pytest.mark.parametrize("mode", ["bilinear", "nearest"])
def test_interpolation_equals_torch(size: tuple[int, int], mode: str) -> None:
    torch = pytest.importorskip("torch")
    maps = np.random.default_rng(0).normal(size=(2, 6, 5)).astype(np.float32)
    expected = torch.nn.functional.interpolate(torch.from_numpy(maps)[:, None], size, mode=mode)
    np.testing.assert_allclose(
        interpolate_maps(maps, size, mode), expected[:, 0].numpy(), rtol=1e-5, atol=1e-6
    )


@pytest.mark.torch
def test_torch_conformance_and_errors(torch_cnn: Any) -> None:
    import imacs

    model = imacs.load_model(torch_cnn)
    check_attribution_method(GradCAM(layer="3"), model, images(), TARGETS)
    with pytest.raises(InvalidInputError, match="no layer named"):
        GradCAM(layer="conv9").attribute(model, images(), TARGETS)
    with pytest.raises(InvalidInputError, match="spatial output"):
        GradCAM(layer="6").attribute(model, images(), TARGETS)
