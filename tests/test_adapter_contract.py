"""The adapter base class and the conformance suite in imacs.testing.

The suite is only worth running on third-party adapters if it catches broken ones, so
each check here is also shown failing on an adapter broken in the way it looks for.
"""

from __future__ import annotations

import numpy as np
import pytest

import imacs
from imacs.adapters.function import FunctionAdapter
from imacs.errors import InvalidInputError, MissingCapabilityError, ModelLoadError
from imacs.testing import check_model_adapter, softplus_model

IMAGES = np.random.default_rng(0).random((3, 8, 8, 3), dtype=np.float32)
TARGETS = np.array([0, 1, 3])


def test_analytic_model_passes_the_conformance_suite() -> None:
    check_model_adapter(softplus_model(), IMAGES, TARGETS)


def _variant(**overrides) -> FunctionAdapter:
    base = softplus_model()
    predict, gradient = base.predict_fn, base.gradient_fn
    return FunctionAdapter(
        overrides.get("predict", predict),
        overrides.get("gradient", gradient),
        fingerprint="variant",
        image_shape=(8, 8, 3),
    )


@pytest.mark.parametrize(
    ("broken", "failing_check"),
    [
        (
            lambda: _variant(gradient=lambda x, t: 2 * softplus_model().gradient_fn(x, t)),
            "check_finite_differences",
        ),
        (lambda: _variant(gradient=lambda x, t: np.zeros_like(x)), "check_gradients"),
        (
            lambda: _variant(gradient=lambda x, t: softplus_model().gradient_fn(x, t)[:, :, :4]),
            "check_gradients",
        ),
        (
            lambda: _variant(
                predict=lambda x: softplus_model().predict_fn(x) + np.random.default_rng().random()
            ),
            "check_determinism",
        ),
        (
            lambda: _variant(predict=lambda x: softplus_model().predict_fn(x) + len(x)),
            "check_batch_size_invariance",
        ),
        (
            lambda: _variant(
                predict=lambda x: softplus_model().predict_fn(x).astype(np.float64)[:, :, None]
            ),
            "check_predict",
        ),
    ],
)
def test_conformance_suite_catches_broken_adapters(broken, failing_check) -> None:
    with pytest.raises(AssertionError, match=failing_check):
        check_model_adapter(broken(), IMAGES, TARGETS)


def test_adapter_that_mutates_inputs_is_caught() -> None:
    def predict(x):
        out = softplus_model().predict_fn(x.copy())
        x *= 1.0000001
        return out

    with pytest.raises(AssertionError, match="modified the caller's images"):
        check_model_adapter(_variant(predict=predict), IMAGES, TARGETS, finite_differences=False)


def test_output_that_is_not_n_by_k_is_explained() -> None:
    model = FunctionAdapter(lambda x: np.zeros((len(x), 3, 1)), fingerprint="bad")
    with pytest.raises(InvalidInputError, match=r"shape \(N, K\).*returned shape \(3, 3, 1\)"):
        model.predict(IMAGES)


def test_batches_are_split_by_batch_size() -> None:
    seen = []
    model = FunctionAdapter(lambda x: seen.append(len(x)) or np.zeros((len(x), 2)), fingerprint="f")
    model.predict(np.zeros((7, 2, 2, 1), np.float32), batch_size=3)
    assert seen == [3, 3, 1]
    model.batch_size = 5
    seen.clear()
    model.predict(np.zeros((7, 2, 2, 1), np.float32))
    assert seen == [5, 2]


def test_wrong_image_size_is_explained() -> None:
    with pytest.raises(InvalidInputError, match=r"expects images of shape \(N, 8, 8, 3\)"):
        softplus_model().predict(np.zeros((1, 9, 9, 3), np.float32))


def test_forward_only_adapter_says_it_cannot_give_gradients() -> None:
    model = FunctionAdapter(softplus_model().predict_fn, fingerprint="forward-only")
    assert model.predict(IMAGES).shape == (3, 4)
    with pytest.raises(MissingCapabilityError, match=r"'gradients' capability.*'function'"):
        imacs.attribute(model, IMAGES, TARGETS, method="gradient")


def test_gradient_method_returns_the_adapter_gradients() -> None:
    model = softplus_model()
    result = imacs.attribute(model, IMAGES, TARGETS, method="gradient", batch_size=2)
    np.testing.assert_array_equal(result.maps, model.gradients(IMAGES, TARGETS))
    assert result.method == "gradient" and result.params == {"absolute": False}
    absolute = imacs.attribute(model, IMAGES, TARGETS, method="gradient", absolute=True)
    np.testing.assert_array_equal(np.asarray(absolute), np.abs(result.maps))


def test_load_model_errors() -> None:
    with pytest.raises(ModelLoadError, match="does not exist"):
        imacs.load_model("/no/such/model.pt")
    with pytest.raises(ModelLoadError, match=r"no installed adapter recognises a model of type"):
        imacs.load_model(object())
    model = softplus_model()
    assert imacs.load_model(model) is model
    with pytest.raises(InvalidInputError, match="already an adapter"):
        imacs.load_model(model, target="probability")


def test_unknown_target_is_explained() -> None:
    with pytest.raises(InvalidInputError, match=r"unknown target 'prob'.*logit, probability"):
        FunctionAdapter(lambda x: x, target="prob")


def test_named_targets_of_the_function_adapter() -> None:
    logits = softplus_model().predict(IMAGES).astype(np.float64)
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    for target, expected in [
        ("probability", probs[np.arange(3), TARGETS]),
        ("log_probability", np.log(probs[np.arange(3), TARGETS])),
    ]:
        model = FunctionAdapter(softplus_model().predict_fn, target=target, fingerprint="t")
        np.testing.assert_allclose(model.scores(IMAGES, TARGETS), expected, rtol=1e-5)


def test_preprocessing_reference() -> None:
    pre = imacs.Preprocessing(scale=1 / 255, mean=(0.5, 0.4, 0.3), std=(0.2,), channel_order="bgr")
    x = np.full((1, 1, 1, 3), 255.0, np.float32)
    expected = ((1.0 - np.array([0.5, 0.4, 0.3])) / 0.2)[::-1]
    np.testing.assert_allclose(pre.apply(x)[0, 0, 0], expected, rtol=1e-6)
    with pytest.raises(InvalidInputError, match="2 values but the images have 3 channels"):
        imacs.Preprocessing(mean=(0.1, 0.2)).check_channels(3)
    with pytest.raises(InvalidInputError, match="unknown preprocessing keys"):
        imacs.Preprocessing.coerce({"scale": 1.0, "mu": 0})


def test_wrong_channel_count_is_explained() -> None:
    with pytest.raises(InvalidInputError, match=r"expects images with 3 channel\(s\); got 1"):
        softplus_model().predict(np.zeros((1, 8, 8, 1), np.float32))


@pytest.mark.parametrize("method", ["integrated-gradients", "guided-ig", "split-ig"])
def test_gradient_methods_refuse_a_forward_only_adapter_up_front(method) -> None:
    calls = []

    def predict(x):
        calls.append(len(x))
        return softplus_model().predict_fn(x)

    model = FunctionAdapter(predict, fingerprint="forward-only", image_shape=(8, 8, 3))
    with pytest.raises(MissingCapabilityError, match=rf"attribution method '{method}' needs"):
        imacs.attribute(model, IMAGES, TARGETS, method=method)
    assert calls == []  # refused before any work was done


def test_forward_only_methods_run_on_a_forward_only_adapter() -> None:
    model = FunctionAdapter(softplus_model().predict_fn, fingerprint="forward-only")
    maps = imacs.attribute(model, IMAGES, TARGETS, method="occlusion", window=4).maps
    assert maps.shape == IMAGES.shape and np.abs(maps).max() > 0
