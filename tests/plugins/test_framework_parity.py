"""The same network in PyTorch and in Keras gives the same numbers through imacs.

This is what lets a user compare a PyTorch model with a Keras one: the adapters hide
the frameworks' layouts (NCHW vs NHWC) and run preprocessing inside the model call, so
equal weights must give equal logits and equal input gradients.
"""

from __future__ import annotations

import numpy as np
import pytest

import imacs

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]

PREPROCESSING = imacs.Preprocessing(scale=1 / 255, mean=(0.5, 0.4, 0.3), std=(0.25, 0.2, 0.3))


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


@pytest.fixture(scope="module")
def twin_models():
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 8, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.Conv2d(8, 16, 3, padding=1),
        torch.nn.Softplus(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(16, 5),
    )
    keras_model = keras.Sequential(
        [
            keras.Input((12, 12, 3)),
            keras.layers.Conv2D(8, 3, padding="same", activation="tanh"),
            keras.layers.Conv2D(16, 3, padding="same", activation="softplus"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(5),
        ]
    )
    conv1, conv2, dense = (torch_model[i] for i in (0, 2, 6))
    keras_layers = [layer for layer in keras_model.layers if layer.weights]
    for torch_layer, keras_layer in zip((conv1, conv2, dense), keras_layers, strict=True):
        weight = torch_layer.weight.detach().numpy()
        # torch: conv (out, in, kh, kw), dense (out, in); keras: (kh, kw, in, out), (in, out)
        kernel = weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T
        keras_layer.set_weights([kernel, torch_layer.bias.detach().numpy()])
    return torch_model, keras_model


def _load(models, target: str = "logit"):
    torch_model, keras_model = models
    return (
        imacs.load_model(torch_model, preprocessing=PREPROCESSING, device="cpu", target=target),
        imacs.load_model(keras_model, preprocessing=PREPROCESSING, target=target),
    )


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, (6, 12, 12, 3)).astype(np.float32)


def test_models_are_claimed_by_their_own_plugins(twin_models) -> None:
    torch_adapter, keras_adapter = _load(twin_models)
    assert (torch_adapter.name, keras_adapter.name) == ("torch", "tensorflow")


def test_logits_agree(twin_models, images) -> None:
    torch_adapter, keras_adapter = _load(twin_models)
    assert _relative_error(torch_adapter.predict(images), keras_adapter.predict(images)) <= 1e-5


@pytest.mark.parametrize("target", ["logit", "probability", "log_probability"])
def test_input_gradients_agree(twin_models, images, target) -> None:
    torch_adapter, keras_adapter = _load(twin_models, target)
    targets = np.arange(len(images)) % 5
    g_torch = torch_adapter.gradients(images, targets)
    g_keras = keras_adapter.gradients(images, targets)
    assert g_torch.shape == images.shape
    assert _relative_error(g_torch, g_keras) <= 1e-5


#: built-in methods with parameters small enough for a test; Grad-CAM uses each adapter's
#: default layer, the last spatial feature map, which is the same layer in both twins.
#: Guided IG is left out on purpose: its per-step cut-off on |gradient| turns the 1e-7
#: float32 differences between two frameworks' convolutions into different paths (it is
#: compared with PAIR saliency in float64 in tests/attribution/test_guided_ig.py).
METHOD_CASES: dict[str, dict] = {
    "grad-cam": {},
    "xrai": {"steps": 4},
    "gradient": {},
    "gradient-times-input": {},
    "integrated-gradients": {"n_steps": 8, "pixel_range": (0.0, 255.0)},
    "smoothgrad": {"n_samples": 3},
    "split-ig": {"n_steps": 8},
    "blur-ig": {"steps": 8},
    "occlusion": {"window": 4},
    "pami": {"shifts": (), "segmentations": [("slic", {"n_segments": 6, "compactness": 20})]},
}


@pytest.mark.parametrize("method", sorted(METHOD_CASES))
def test_attribution_maps_agree(twin_models, images, method) -> None:
    targets = np.arange(len(images)) % 5
    maps = [
        imacs.attribute(m, images, targets, method=method, batch_size=4, **METHOD_CASES[method])
        for m in _load(twin_models)
    ]
    assert _relative_error(maps[0].maps, maps[1].maps) <= 1e-5
