"""DIX, IIA2 and IIA3: closed forms on a linear tail, PyTorch against Keras, conformance."""

from __future__ import annotations

import numpy as np
import pytest

import imacs
from imacs.attribution.dix import DIX
from imacs.attribution.iia import IIA2, IIA3
from imacs.attribution.layer_paths import channel_minimum, layer_maps_to_images
from imacs.errors import MissingCapabilityError
from imacs.testing import check_attribution_method, softplus_model

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]

IMAGES = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
TARGETS = np.array([0, 1, 2, 4])
N = 4  # steps: small keeps IIA3's n^3 tail passes cheap


def linear_tail_twins():
    """conv -> tanh ("1"/"c1") -> conv ("2"/"c2") -> mean -> dense: linear after the tanh."""
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(6, 5),
    )
    keras.utils.set_random_seed(0)
    keras_model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="c1"),
            keras.layers.Conv2D(6, 3, padding="same", name="c2"),
            keras.layers.GlobalAveragePooling2D(name="pool"),
            keras.layers.Dense(5, name="logits"),
        ]
    )
    for torch_layer, keras_layer in zip(
        (torch_model[0], torch_model[2], torch_model[5]),
        [layer for layer in keras_model.layers if layer.weights],
        strict=True,
    ):
        weight = torch_layer.weight.detach().numpy()
        kernel = weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T
        keras_layer.set_weights([kernel, torch_layer.bias.detach().numpy()])
    return (
        torch_model,
        imacs.load_model(torch_model, device="cpu"),
        imacs.load_model(keras_model),
    )


@pytest.fixture(scope="module")
def twins():
    return linear_tail_twins()


def _mean_of_path(reference: np.ndarray, end: np.ndarray) -> np.ndarray:
    # 1/n sum_{k=1..n} r + (k/n)(u - r)
    return reference + (N + 1) / (2 * N) * (end - reference)


def _tail_weights(torch_model, shape) -> np.ndarray:
    # d logit_c / d v for the mean-then-dense tail: W[c] / (h * w), per channel
    weight = torch_model[5].weight.detach().double().numpy()
    return weight[TARGETS][:, None, None, :] / (shape[1] * shape[2])


def test_dix_equals_its_closed_form_on_a_linear_tail(twins) -> None:
    torch_model, adapter, _ = twins
    u = adapter.layer_activations(IMAGES, "2").astype(np.float64)
    expected = layer_maps_to_images(
        _tail_weights(torch_model, u.shape) * _mean_of_path(channel_minimum(u), u), (16, 16, 3)
    )
    maps = DIX(layer="2", steps=N).attribute(adapter, IMAGES, TARGETS).maps
    np.testing.assert_allclose(maps, expected, rtol=1e-4, atol=1e-6 * np.abs(expected).max())


def test_iia2_and_iia3_equal_their_closed_forms_on_a_linear_tail(twins) -> None:
    torch_model, adapter, _ = twins
    x = IMAGES.astype(np.float64)
    r = channel_minimum(x)
    alphas = np.arange(1, N + 1) / N
    inputs = np.concatenate([r + a * (x - r) for a in alphas]).astype(np.float32)
    u = adapter.layer_activations(inputs, "2").astype(np.float64)  # (N * images, h, w, 6)
    per_point = _mean_of_path(channel_minimum(u), u).reshape(N, len(x), *u.shape[1:])
    w = _tail_weights(torch_model, u.shape)
    expected2 = layer_maps_to_images(w * per_point.mean(axis=0), (16, 16, 3))
    maps2 = IIA2(layer="2", steps=N).attribute(adapter, IMAGES, TARGETS).maps
    np.testing.assert_allclose(maps2, expected2, rtol=1e-4, atol=1e-6 * np.abs(expected2).max())

    # IIA3 over "1" then "2": conv2 is linear, so its activations along the inner path are
    # conv2 of the inner points, and the tail's gradient stays w
    inner = adapter.layer_activations(inputs, "1").astype(np.float64)
    inner_points = np.concatenate(
        [channel_minimum(inner) + a * (inner - channel_minimum(inner)) for a in alphas]
    )
    with torch.no_grad():
        conv2 = torch_model[2].double()
        carried = conv2(torch.from_numpy(inner_points).permute(0, 3, 1, 2)).permute(0, 2, 3, 1)
        torch_model[2].float()
    carried = carried.numpy()
    per_point = _mean_of_path(channel_minimum(carried), carried)
    per_point = per_point.reshape(N * N, len(x), *carried.shape[1:]).mean(axis=0)
    expected3 = layer_maps_to_images(w * per_point, (16, 16, 3))
    maps3 = IIA3(layer="2", inner_layer="1", steps=N).attribute(adapter, IMAGES, TARGETS).maps
    np.testing.assert_allclose(maps3, expected3, rtol=1e-4, atol=1e-5 * np.abs(expected3).max())


@pytest.mark.parametrize(
    ("method", "torch_params", "keras_params"),
    [
        (DIX, {"layer": "2"}, {"layer": "c2"}),
        (DIX, {"layer": "1", "reference": "released"}, {"layer": "c1", "reference": "released"}),
        (IIA2, {"layer": "2"}, {"layer": "c2"}),
        (IIA2, {"layer": "2", "reference": "released"}, {"layer": "c2", "reference": "released"}),
        (IIA3, {"layer": "2", "inner_layer": "1"}, {"layer": "c2", "inner_layer": "c1"}),
    ],
)
def test_pytorch_and_keras_give_the_same_maps(twins, method, torch_params, keras_params) -> None:
    _, torch_adapter, keras_adapter = twins
    a = method(steps=N, **torch_params).attribute(torch_adapter, IMAGES, TARGETS).maps
    b = method(steps=N, **keras_params).attribute(keras_adapter, IMAGES, TARGETS).maps
    assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


@pytest.mark.parametrize("method", [DIX(steps=N), IIA2(steps=N), IIA3(steps=N)])
def test_batch_size_does_not_change_the_maps(twins, method) -> None:
    _, adapter, _ = twins
    whole = method.attribute(adapter, IMAGES, TARGETS, batch_size=512).maps
    small = method.attribute(adapter, IMAGES, TARGETS, batch_size=3).maps
    assert np.abs(whole - small).max() <= 1e-5 * np.abs(whole).max()


@pytest.mark.parametrize("method", [DIX(steps=N), IIA2(steps=N), IIA3(steps=3)])
def test_conformance_kit_passes(twins, method) -> None:
    _, torch_adapter, keras_adapter = twins
    check_attribution_method(method, torch_adapter, IMAGES[:2], TARGETS[:2])
    check_attribution_method(method, keras_adapter, IMAGES[:2], TARGETS[:2])


def test_defaults_follow_the_papers_and_names_are_registered(twins) -> None:
    _, adapter, _ = twins
    assert DIX().steps == IIA2().steps == IIA3().steps == 10
    result = imacs.attribute(adapter, IMAGES[:2], TARGETS[:2], method="iia3", steps=2)
    assert result.params["layer"] == "2" and result.params["inner_layer"] == "1"
    assert imacs.attribute(adapter, IMAGES[:2], TARGETS[:2], method="dix").maps.shape == (
        2,
        16,
        16,
        3,
    )


def test_an_adapter_without_injection_is_refused_by_name() -> None:
    with pytest.raises(MissingCapabilityError, match="'injection' capability"):
        DIX().attribute(softplus_model(), IMAGES[:1, :8, :8], [0])
