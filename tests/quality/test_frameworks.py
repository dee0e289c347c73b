"""Every measure on a PyTorch and a Keras model; infidelity and max-sensitivity as Captum's.

The same small network is built in both frameworks with copied weights, so every measure
must give both the same scores; on the PyTorch one, ``captum.metrics.infidelity`` and
``sensitivity_max`` fed the same perturbations must give what ours give.
"""

from __future__ import annotations

import numpy as np
import pytest

import imacs

torch = pytest.importorskip("torch")
keras = pytest.importorskip("keras")
captum_metrics = pytest.importorskip("captum.metrics")

pytestmark = [pytest.mark.torch, pytest.mark.tensorflow]

SIZE = 16
#: measures and small parameters, so the table runs in seconds
MEASURES = {
    "insertion": {"n_steps": 8},
    "deletion": {"n_steps": 8},
    "road-morf": {"percentiles": [20, 50]},
    "road-lerf": {"percentiles": [20, 50]},
    "infidelity": {"n_perturb_samples": 4, "noise_scale": 0.05},
    "max-sensitivity": {"n_perturb_samples": 3},
    "positive-perturbation": {"score": "probability"},
    "negative-perturbation": {"score": "probability"},
    "adp": {},
    "pic": {},
}


@pytest.fixture(scope="module")
def twins():
    torch.manual_seed(0)
    torch_model = torch.nn.Sequential(
        torch.nn.Conv2d(3, 6, 3, padding=1),
        torch.nn.Softplus(),
        torch.nn.Conv2d(6, 8, 3, padding=1),
        torch.nn.Tanh(),
        torch.nn.AdaptiveAvgPool2d(1),
        torch.nn.Flatten(),
        torch.nn.Linear(8, 4),
    ).eval()
    keras_model = keras.Sequential(
        [
            keras.Input((SIZE, SIZE, 3)),
            keras.layers.Conv2D(6, 3, padding="same", activation="softplus"),
            keras.layers.Conv2D(8, 3, padding="same", activation="tanh"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(4),
        ]
    )
    torch_layers = [torch_model[i] for i in (0, 2, 6)]
    keras_layers = [layer for layer in keras_model.layers if layer.weights]
    for torch_layer, keras_layer in zip(torch_layers, keras_layers, strict=True):
        weight = torch_layer.weight.detach().numpy()
        kernel = weight.transpose(2, 3, 1, 0) if weight.ndim == 4 else weight.T
        keras_layer.set_weights([kernel, torch_layer.bias.detach().numpy()])
    return torch_model, keras_model


@pytest.fixture(scope="module")
def adapters(twins):
    torch_model, keras_model = twins
    return imacs.load_model(torch_model, device="cpu"), imacs.load_model(keras_model)


@pytest.fixture(scope="module")
def inputs(adapters):
    images = np.random.default_rng(0).random((6, SIZE, SIZE, 3)).astype(np.float32)
    targets = np.arange(6) % 4
    maps = imacs.attribute(adapters[0], images, targets, method="gradient").maps
    return images, targets, maps


@pytest.mark.parametrize("name", sorted(MEASURES))
def test_the_same_network_scores_alike_in_both_frameworks(name, adapters, inputs):
    images, targets, maps = inputs
    measure = imacs.get_component("measure", name, **MEASURES[name])
    method = imacs.get_method("gradient")
    torch_result, keras_result = (
        measure.evaluate(adapter, images, targets, maps, method=method, seed=1, batch_size=16)
        for adapter in adapters
    )
    scale = max(float(np.abs(torch_result.scores).max()), 1e-6)
    np.testing.assert_allclose(torch_result.scores, keras_result.scores, atol=2e-4 * scale)
    assert np.isfinite(torch_result.scores).all()


def _nhwc(torch_model):
    def forward(x):
        return torch_model(x.permute(0, 3, 1, 2))

    return forward


@pytest.mark.parametrize("normalize", [False, True])
def test_infidelity_equals_captums(normalize, twins, adapters, inputs):
    from imacs.quality.infidelity import infidelity_noise

    images, targets, maps = inputs
    n_samples, scale, seed = 5, 0.05, 2
    ours = imacs.get_component(
        "measure", "infidelity", n_perturb_samples=n_samples, noise_scale=scale, normalize=normalize
    ).evaluate(adapters[0], images, targets, maps, seed=seed)
    # Captum repeats each example n_samples times in a row, then asks for perturbations
    noise = np.concatenate(
        [infidelity_noise(images.shape[1:], n_samples, scale, seed, i) for i in range(len(images))]
    )

    def perturb(inputs_expanded):
        perturbation = torch.from_numpy(noise)
        return perturbation, inputs_expanded - perturbation

    theirs = captum_metrics.infidelity(
        _nhwc(twins[0]),
        perturb,
        torch.from_numpy(images),
        torch.from_numpy(maps),
        target=torch.from_numpy(targets),
        n_perturb_samples=n_samples,
        normalize=normalize,
    )
    np.testing.assert_allclose(ours.scores, theirs.detach().numpy(), rtol=2e-3, atol=1e-9)


def test_max_sensitivity_equals_captums(twins, adapters, inputs):
    from imacs.quality.infidelity import sensitivity_noise

    images, targets, maps = inputs
    n_samples, radius, seed = 4, 0.02, 3
    ours = imacs.get_component(
        "measure", "max-sensitivity", n_perturb_samples=n_samples, perturb_radius=radius
    ).evaluate(adapters[0], images, targets, maps, method=imacs.get_method("gradient"), seed=seed)
    offsets = np.concatenate(
        [
            sensitivity_noise(images.shape[1:], n_samples, radius, seed, i)
            for i in range(len(images))
        ]
    )
    forward = _nhwc(twins[0])

    def gradient(x, target):
        x = (x[0] if isinstance(x, tuple) else x).detach().clone().requires_grad_(True)
        with torch.enable_grad():  # captum computes explanations under no_grad
            scores = forward(x).gather(1, target[:, None]).sum()
            return torch.autograd.grad(scores, x)  # a tuple, as captum's explainers give

    def perturb(x, perturb_radius):
        return (x[0] if isinstance(x, tuple) else x) + torch.from_numpy(offsets)

    theirs = captum_metrics.sensitivity_max(
        gradient,
        torch.from_numpy(images),
        perturb_func=perturb,
        perturb_radius=radius,
        n_perturb_samples=n_samples,
        target=torch.from_numpy(targets),
    )
    np.testing.assert_allclose(ours.scores, theirs.detach().numpy(), rtol=1e-4)
