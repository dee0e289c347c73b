"""Layer injection and vector-Jacobian products of the outputs, in PyTorch and Keras.

Derivatives are checked against central finite differences taken in float64 on a
float64 copy of the model: float32 differences keep too few bits, and which bits
depends on the CPU's kernels.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

import imacs
from imacs.errors import InvalidInputError, MissingCapabilityError
from imacs.testing import check_model_adapter, softplus_model

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
tf = pytest.importorskip("tensorflow")

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]

IMAGES = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
TARGETS = np.array([0, 1, 2, 4])
K = 5


def torch_net() -> torch.nn.Sequential:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 4, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.Conv2d(4, 6, 3, padding=1),
        torch.nn.Softplus(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(6, K),
    )


def keras_net(dtype: str = "float32") -> keras.Model:
    keras.utils.set_random_seed(0)
    return keras.Sequential(
        [
            keras.Input((16, 16, 3), dtype=dtype),
            keras.layers.Conv2D(4, 3, padding="same", activation="tanh", name="c1", dtype=dtype),
            keras.layers.Conv2D(
                6, 3, padding="same", activation="softplus", name="c2", dtype=dtype
            ),
            keras.layers.GlobalAveragePooling2D(name="pool", dtype=dtype),
            keras.layers.Dense(K, name="logits", dtype=dtype),
        ]
    )


def _directional_check(analytic: np.ndarray, function, point: np.ndarray, seed: int) -> None:
    """<analytic, v> against (f(p + h v) - f(p - h v)) / 2h in float64, per row."""
    rng = np.random.default_rng(seed)
    h = 1e-4
    for i in range(len(point)):
        g = analytic[i].astype(np.float64)
        for _ in range(2):
            v = rng.normal(size=g.shape)
            v /= np.linalg.norm(v)
            probes = np.stack([point[i] + h * v, point[i] - h * v]).astype(np.float64)
            f = function(probes, i)
            numeric = (f[0] - f[1]) / (2 * h)
            assert numeric == pytest.approx(
                float(np.sum(g * v)), rel=1e-4, abs=1e-5 * np.linalg.norm(g)
            )


def test_torch_injection_and_vjp_match_float64_finite_differences() -> None:
    model = torch_net()
    adapter = imacs.load_model(model, device="cpu")
    activations = adapter.layer_activations(IMAGES, "1")
    _, grads = adapter.injected_gradients(activations, TARGETS, "1")
    tail = copy.deepcopy(model[2:]).double()

    def injected_score(a: np.ndarray, i: int) -> np.ndarray:
        with torch.no_grad():
            out = tail(torch.from_numpy(a).permute(0, 3, 1, 2))
        return out[:, TARGETS[i]].numpy()

    _directional_check(grads, injected_score, activations.astype(np.float64), seed=1)

    weights = np.random.default_rng(3).normal(size=(len(IMAGES), K)).astype(np.float32)
    _, vjp = adapter.output_vjp(IMAGES, weights)
    whole = copy.deepcopy(model).double()

    def weighted_outputs(x: np.ndarray, i: int) -> np.ndarray:
        with torch.no_grad():
            out = whole(torch.from_numpy(x).permute(0, 3, 1, 2)).numpy()
        return out @ weights[i].astype(np.float64)

    _directional_check(vjp, weighted_outputs, IMAGES.astype(np.float64), seed=2)


def test_keras_injection_and_vjp_match_float64_finite_differences() -> None:
    model = keras_net("float64")
    adapter = imacs.load_model(model)
    activations = adapter.layer_activations(IMAGES, "c1")
    _, grads = adapter.injected_gradients(activations, TARGETS, "c1")
    tail_layers = model.layers[1:]

    def injected_score(a: np.ndarray, i: int) -> np.ndarray:
        out = tf.constant(a)
        for layer in tail_layers:
            out = layer(out)
        return out.numpy()[:, TARGETS[i]]

    # the injected activations reach the model in float32, as the contract passes them
    _directional_check(grads, injected_score, activations.astype(np.float64), seed=1)

    weights = np.random.default_rng(3).normal(size=(len(IMAGES), K)).astype(np.float32)
    _, vjp = adapter.output_vjp(IMAGES, weights)

    def weighted_outputs(x: np.ndarray, i: int) -> np.ndarray:
        return model(tf.constant(x)).numpy() @ weights[i].astype(np.float64)

    _directional_check(vjp, weighted_outputs, IMAGES.astype(np.float64), seed=2)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_adapters_pass_the_conformance_suite_with_both_capabilities(framework) -> None:
    model = torch_net() if framework == "torch" else keras_net()
    adapter = imacs.load_model(model, **({"device": "cpu"} if framework == "torch" else {}))
    assert {"injection", "vjp"} <= adapter.capabilities
    check_model_adapter(adapter, IMAGES[:3], TARGETS[:3], finite_differences=False)


def test_injection_between_layers_and_across_frameworks_agree() -> None:
    torch_model, keras_model = torch_net(), keras_net()
    for torch_layer, keras_layer in zip(
        (torch_model[0], torch_model[2], torch_model[6]),
        [layer for layer in keras_model.layers if layer.weights],
        strict=True,
    ):
        weight = torch_layer.weight.detach().numpy()
        kernel = weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T
        keras_layer.set_weights([kernel, torch_layer.bias.detach().numpy()])
    t_adapter, k_adapter = (
        imacs.load_model(torch_model, device="cpu"),
        imacs.load_model(keras_model),
    )
    for adapter, first, second in ((t_adapter, "1", "3"), (k_adapter, "c1", "c2")):
        inner = adapter.layer_activations(IMAGES, first)
        carried = adapter.layer_activations(inner, second, from_layer=first)
        np.testing.assert_allclose(carried, adapter.layer_activations(IMAGES, second), atol=1e-6)
    t_scores, t_grads = t_adapter.injected_gradients(
        t_adapter.layer_activations(IMAGES, "3"), TARGETS, "3"
    )
    k_scores, k_grads = k_adapter.injected_gradients(
        k_adapter.layer_activations(IMAGES, "c2"), TARGETS, "c2"
    )
    np.testing.assert_allclose(t_scores, k_scores, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(t_grads, k_grads, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("framework", ["torch", "keras"])
def test_unknown_layer_lists_the_models_layers(framework) -> None:
    model = torch_net() if framework == "torch" else keras_net()
    adapter = imacs.load_model(model, **({"device": "cpu"} if framework == "torch" else {}))
    activations = adapter.layer_activations(IMAGES, adapter.layer_names()[1])
    with pytest.raises(InvalidInputError, match="no layer named 'conv9'") as error:
        adapter.injected_gradients(activations, TARGETS, "conv9")
    assert all(name in str(error.value) for name in adapter.layer_names())
    with pytest.raises(InvalidInputError, match="no layer named"):
        adapter.layer_activations(IMAGES, "conv9")


def test_torch_refuses_a_layer_crossed_by_a_skip_connection() -> None:
    class Residual(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)
            self.head = torch.nn.Linear(3, K)

        def forward(self, x):
            return self.head((x + torch.tanh(self.conv(x))).mean(dim=(2, 3)))

    adapter = imacs.load_model(Residual(), device="cpu")
    activations = adapter.layer_activations(IMAGES, "conv")
    with pytest.raises(InvalidInputError, match="not a cut"):
        adapter.injected_gradients(activations, TARGETS, "conv")


def test_adapter_without_the_capabilities_names_them() -> None:
    adapter = softplus_model()
    with pytest.raises(MissingCapabilityError, match="'injection' capability"):
        adapter.injected_gradients(np.zeros((1, 4, 4, 2), np.float32), [0], "layer")
    with pytest.raises(MissingCapabilityError, match="'vjp' capability"):
        adapter.output_vjp(IMAGES[:1, :8, :8], np.zeros((1, 4), np.float32))
