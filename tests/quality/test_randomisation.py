"""The model-parameter randomisation and random-logit tests (Adebayo et al. 2018).

On the demo's trained CNN: plain gradients and IG change sign pattern completely after the
full cascade, and the input multiplier keeps gradient x input (and IG) maps far more
similar in absolute value than plain gradients (Kokhlikyan et al. 2021). The same network
in PyTorch and Keras, given the same weights, gives the same similarities.
"""

from __future__ import annotations

import numpy as np
import pytest

import imacs
from imacs.errors import InvalidInputError
from imacs.quality.randomisation import (
    SIMILARITIES,
    ModelRandomisation,
    RandomLogit,
    map_similarity,
    model_randomisation,
    random_other_classes,
    randomisation_steps,
)
from imacs.testing import check_quality_measure

torch = pytest.importorskip("torch")
from imacs_torch import TorchAdapter  # noqa: E402


def test_similarities_of_a_map_with_itself_its_negation_and_noise() -> None:
    rng = np.random.default_rng(0)
    maps = rng.normal(size=(4, 16, 16, 3))
    for similarity in SIMILARITIES:
        np.testing.assert_allclose(map_similarity(maps, maps, similarity), 1.0, atol=1e-9)
    np.testing.assert_allclose(map_similarity(maps, -maps, "spearman"), -1.0)
    np.testing.assert_allclose(map_similarity(maps, -maps, "spearman_abs"), 1.0)
    noise = rng.normal(size=maps.shape)
    assert np.abs(map_similarity(maps, noise, "spearman")).max() < 0.25
    with pytest.raises(InvalidInputError, match="unknown similarity"):
        map_similarity(maps, maps, "pearson")


def test_steps_cascade_from_the_logits_down_or_take_one_layer_at_a_time() -> None:
    layers = ["conv1", "conv2", "fc"]
    assert randomisation_steps(layers, "cascading") == [
        ["fc"],
        ["conv2", "fc"],
        ["conv1", "conv2", "fc"],
    ]
    assert randomisation_steps(layers, "independent") == [["fc"], ["conv2"], ["conv1"]]


def test_random_other_classes_are_never_the_target() -> None:
    targets = np.arange(40) % 10
    others = random_other_classes(targets, 10, seed=42)
    assert (others != targets).all() and others.min() >= 0 and others.max() < 10
    np.testing.assert_array_equal(others, random_other_classes(targets, 10, seed=42))


@pytest.fixture(scope="module")
def demo() -> tuple[TorchAdapter, np.ndarray, np.ndarray]:
    """The demo's CNN trained on 600 clean digits, and 12 held-out images."""
    from imacs.demo.data import shortcut_digits
    from imacs.demo.models import train_torch_cnn

    train = shortcut_digits(slice(0, 600), shortcut=False, seed=0)
    test = shortcut_digits(slice(600, 612), shortcut=False, seed=1)
    module = train_torch_cnn(train.images, train.labels, seed=0, epochs=8)
    return TorchAdapter(module, device="cpu"), test.images, test.labels


def _cascade(demo, method_name: str, **params) -> dict[str, float]:
    model, images, targets = demo
    method = imacs.get_method(method_name, **params)
    result = model_randomisation(model, images, targets, method, seed=42)
    return {s: float(result.final(s).mean()) for s in ("spearman", "spearman_abs")}


def test_trained_maps_differ_from_the_randomised_models_and_the_input_multiplier_fails(
    demo,
) -> None:
    gradient = _cascade(demo, "gradient")
    times_input = _cascade(demo, "gradient-times-input")
    ig = _cascade(demo, "integrated-gradients", n_steps=16)
    # signed maps of the fully randomised network are unrelated to the trained one's
    # (docs/quality.md: |mean r| <= 0.02 on 64 images)
    for result in (gradient, times_input, ig):
        assert abs(result["spearman"]) < 0.15
    # in absolute value, plain gradients change (0.09 on 64 images) while the input
    # multiplier keeps the digit's shape in the maps (0.54)
    assert gradient["spearman_abs"] < 0.25
    assert times_input["spearman_abs"] > gradient["spearman_abs"] + 0.25
    assert ig["spearman_abs"] > gradient["spearman_abs"] + 0.25


def test_the_model_itself_is_untouched(demo) -> None:
    model, images, targets = demo
    before = model.fingerprint()
    model_randomisation(
        model, images[:2], targets[:2], imacs.get_method("gradient"), similarities=["ssim"]
    )
    assert model.fingerprint() == before


@pytest.mark.parametrize(
    "measure",
    [
        ModelRandomisation(),
        ModelRandomisation(mode="independent", similarity="hog"),
        RandomLogit(),
    ],
    ids=["cascading", "independent-hog", "random-logit"],
)
def test_measures_pass_the_quality_measure_checks(demo, measure) -> None:
    model, images, targets = demo
    method = imacs.get_method("gradient")
    maps = method.attribute(model, images[:4], targets[:4]).maps
    check_quality_measure(
        measure, model, images[:4], targets[:4], maps, method=method, rtol=1e-4, atol=1e-5
    )


def test_measures_are_registered_and_read_lower_as_better(demo) -> None:
    model, images, targets = demo
    measure = imacs.get_component("measure", "model-randomisation", similarity="ssim")
    method = imacs.get_method("gradient")
    maps = method.attribute(model, images[:3], targets[:3]).maps
    result = measure.evaluate(model, images[:3], targets[:3], maps, method=method, seed=42)
    assert not result.higher_is_better
    assert result.curves is not None and result.curves.shape == (3, 4)
    np.testing.assert_array_equal(result.scores, result.curves[:, -1])
    with pytest.raises(InvalidInputError, match="needs the attribution"):
        measure.evaluate(model, images[:3], targets[:3], maps)


def test_the_same_network_in_keras_gives_the_same_similarities(demo) -> None:
    pytest.importorskip("keras")
    from imacs_tensorflow import TensorFlowAdapter

    from imacs.demo.models import keras_cnn

    model, images, targets = demo
    twin = keras_cnn(images.shape[1:])
    weights = [p.detach().numpy() for p in model.model.parameters()]
    twin.set_weights([w.transpose(2, 3, 1, 0) if w.ndim == 4 else w.T for w in weights])
    method = imacs.get_method("gradient")
    results = [
        model_randomisation(adapter, images[:4], targets[:4], method, seed=3)
        for adapter in (model, TensorFlowAdapter(twin))
    ]
    for similarity in SIMILARITIES:
        np.testing.assert_allclose(
            results[0].similarity[similarity], results[1].similarity[similarity], atol=1e-4
        )
