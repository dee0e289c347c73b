"""Randomised copies (capability "randomise") and the smooth surrogate, in both frameworks.

The same small CNN is built in PyTorch and in Keras; re-initialising every layer gives both
the same weights, so both copies must compute the same function. The conformance suite's
check of randomised copies is shown failing on an adapter that changes its original.
"""

from __future__ import annotations

import numpy as np
import pytest

from imacs.adapters.base import ModelAdapter
from imacs.errors import InvalidInputError
from imacs.testing import check_model_adapter

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

from imacs_tensorflow import TensorFlowAdapter  # noqa: E402
from imacs_torch import TorchAdapter  # noqa: E402

IMAGES = np.random.default_rng(0).random((4, 16, 16, 3), dtype=np.float32)
TARGETS = np.array([0, 1, 2, 3])


def torch_cnn() -> torch.nn.Module:
    torch.manual_seed(0)
    nn = torch.nn
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1),
        nn.ReLU(),
        nn.MaxPool2d(2),
        nn.Conv2d(4, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 5),
    ).eval()


def keras_cnn() -> keras.Model:
    keras.utils.set_random_seed(1)
    layers = keras.layers
    return keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            layers.Conv2D(4, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(8, 3, padding="same"),
            layers.ReLU(),
            layers.GlobalAveragePooling2D(),
            layers.Dense(5),
        ]
    )


def keras_from_torch(module: torch.nn.Module) -> keras.Model:
    """``keras_cnn`` with the weights of the PyTorch network ``module``."""
    model = keras_cnn()
    params = [p.detach().numpy() for p in module.parameters()]
    converted = []
    for value in params:
        if value.ndim == 4:
            value = value.transpose(2, 3, 1, 0)
        elif value.ndim == 2:
            value = value.T
        converted.append(value)
    model.set_weights(converted)
    return model


@pytest.fixture(params=["torch", "keras"])
def adapter(request) -> ModelAdapter:
    return TorchAdapter(torch_cnn()) if request.param == "torch" else TensorFlowAdapter(keras_cnn())


def test_parameter_layers_are_listed_input_to_output() -> None:
    assert TorchAdapter(torch_cnn()).parameter_layers() == ["0", "3", "7"]
    names = TensorFlowAdapter(keras_cnn()).parameter_layers()
    assert len(names) == 3 and names[-1].startswith("dense")


def test_cascading_copies_share_the_weights_of_the_layers_they_have_in_common(adapter) -> None:
    layers = adapter.parameter_layers()
    top = adapter.randomised_copy(layers[-1:], seed=3)
    two = adapter.randomised_copy(layers[-2:], seed=3)
    # randomising one more layer below the top changes the outputs, but the top layer's
    # new weights are the same in both copies: with the layer below also the original's
    # (independent), the copy equals `top`
    assert not np.allclose(two.predict(IMAGES), top.predict(IMAGES))
    again = adapter.randomised_copy(list(reversed(layers[-1:])), seed=3)
    np.testing.assert_array_equal(again.predict(IMAGES), top.predict(IMAGES))


def test_options_are_kept_and_names_marked(adapter) -> None:
    adapter.model_name = "net"
    adapter.batch_size = 3
    copy = adapter.randomised_copy(adapter.parameter_layers()[:1], seed=0)
    assert copy.batch_size == 3 and copy.target == adapter.target
    assert copy.model_name == "net (randomised)"
    with pytest.raises(InvalidInputError, match="parameter_layers"):
        adapter.randomised_copy(["nope"])


def test_the_same_network_in_both_frameworks_gets_the_same_new_weights() -> None:
    torch_adapter = TorchAdapter(torch_cnn())
    keras_adapter = TensorFlowAdapter(keras_from_torch(torch_adapter.model))
    np.testing.assert_allclose(
        torch_adapter.predict(IMAGES), keras_adapter.predict(IMAGES), atol=1e-5
    )
    for k in (1, 2, 3):
        t = torch_adapter.randomised_copy(torch_adapter.parameter_layers()[-k:], seed=7)
        k_ = keras_adapter.randomised_copy(keras_adapter.parameter_layers()[-k:], seed=7)
        np.testing.assert_allclose(t.predict(IMAGES), k_.predict(IMAGES), atol=1e-5)
        g_t, g_k = t.gradients(IMAGES, TARGETS), k_.gradients(IMAGES, TARGETS)
        np.testing.assert_allclose(g_t, g_k, atol=1e-5 * np.abs(g_t).max())


def test_the_smooth_surrogate_is_the_same_in_both_frameworks() -> None:
    torch_model = torch_cnn()
    options = {"beta": 5.0, "temperature": 0.3}
    torch_adapter = TorchAdapter(torch_model, smooth_surrogate=options)
    keras_adapter = TensorFlowAdapter(keras_from_torch(torch_model), smooth_surrogate=options)
    plain = TorchAdapter(torch_model)
    # predictions stay the model's; gradients are the surrogate's
    np.testing.assert_array_equal(torch_adapter.predict(IMAGES), plain.predict(IMAGES))
    g_t = torch_adapter.gradients(IMAGES, TARGETS)
    g_k = keras_adapter.gradients(IMAGES, TARGETS)
    np.testing.assert_allclose(g_t, g_k, atol=1e-4 * np.abs(g_t).max())
    assert not np.allclose(g_t, plain.gradients(IMAGES, TARGETS), atol=1e-3 * np.abs(g_t).max())
    assert torch_adapter.fingerprint() != plain.fingerprint()
    assert torch_adapter.describe()["smooth_surrogate"] == options


def test_the_surrogate_tends_to_the_model_as_beta_grows() -> None:
    model = torch_cnn()
    exact = TorchAdapter(model).gradients(IMAGES, TARGETS)
    # relative L2 error; not the largest one, which a near-tie in a pooling window keeps
    errors = [
        np.linalg.norm(TorchAdapter(model, smooth_surrogate=b).gradients(IMAGES, TARGETS) - exact)
        / np.linalg.norm(exact)
        for b in (3.0, 30.0, 3000.0)
    ]
    assert errors[0] > errors[1] > errors[2]
    assert errors[2] < 0.1, errors


def test_the_conformance_suite_passes_with_a_surrogate(adapter) -> None:
    surrogate = type(adapter)(adapter.model, smooth_surrogate=10)
    check_model_adapter(surrogate, IMAGES[:3], TARGETS[:3], finite_differences=False)


@pytest.mark.parametrize("value", [0, -1.0, "ten", {"beta": 1, "tau": 2}, {"temperature": 0}])
def test_bad_surrogate_options_are_explained(value) -> None:
    with pytest.raises(InvalidInputError, match="smooth_surrogate"):
        TorchAdapter(torch_cnn(), smooth_surrogate=value)


def test_a_model_without_relu_or_max_pooling_has_no_surrogate() -> None:
    with pytest.raises(InvalidInputError, match=r"no nn\.ReLU or nn\.MaxPool2d"):
        TorchAdapter(
            torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(768, 2)), smooth_surrogate=1
        )


class _Linear(ModelAdapter):
    """A linear model over NumPy weights whose randomised copy can be broken on purpose."""

    name = "linear-test"
    capabilities = frozenset({"randomise"})

    def __init__(self, weights: np.ndarray, *, break_original: bool = False):
        super().__init__()
        self.weights = weights
        self.break_original = break_original

    def _predict(self, images):
        return images.reshape(len(images), -1) @ self.weights

    def _scores(self, images, targets):
        return self._predict(images)[np.arange(len(images)), targets]

    def _value_and_gradients(self, images, targets):
        raise NotImplementedError

    def fingerprint(self) -> str:
        return str(hash(self.weights.tobytes()))

    def parameter_layers(self):
        return ["linear"]

    def randomised_copy(self, layers, *, seed=0):
        self._checked_layer_positions(layers)
        new = np.random.default_rng(seed + 100).normal(size=self.weights.shape)
        if self.break_original:
            self.weights[:] = new
            return _Linear(self.weights)
        return _Linear(new)


def test_the_conformance_suite_catches_a_copy_that_changes_its_original() -> None:
    weights = np.random.default_rng(0).normal(size=(16 * 16 * 3, 5))
    check_model_adapter(_Linear(weights.copy()), IMAGES, TARGETS, finite_differences=False)
    with pytest.raises(AssertionError, match="changed the original model"):
        check_model_adapter(
            _Linear(weights.copy(), break_original=True), IMAGES, TARGETS, finite_differences=False
        )
