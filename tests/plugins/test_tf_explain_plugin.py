"""The imacs-tf-explain plugin: found through its entry point, equal to tf-explain called
directly on a Keras model that does the preprocessing itself, and clear about what
tf-explain 0.3.1 cannot do on Keras 3.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from typing import Any

import numpy as np
import pytest

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")
tf_explain_core = pytest.importorskip("tf_explain.core")
cv2 = pytest.importorskip("cv2")
pytest.importorskip("imacs_tensorflow")

from imacs_tf_explain.tf_explain_method import TfExplainMethod  # noqa: E402

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

pytestmark = pytest.mark.tensorflow

N_CLASSES = 3
SCALE, MEAN, STD = 1 / 255, (0.4, 0.5, 0.6), (0.2, 0.3, 0.25)
PREPROCESSING = {"scale": SCALE, "mean": MEAN, "std": STD}
TARGETS = np.array([0, 2, 1])

METHOD_NAMES = [
    "tf-explain-grad-cam",
    "tf-explain-gradients-inputs",
    "tf-explain-integrated-gradients",
    "tf-explain-occlusion-sensitivity",
    "tf-explain-smoothgrad",
    "tf-explain-vanilla-gradients",
]


# -- tiny models ----------------------------------------------------------------------------


def conv_layers() -> list[Any]:
    return [
        keras.layers.Conv2D(4, 3, padding="same", activation="softplus", name="conv1"),
        keras.layers.Conv2D(6, 3, padding="same", activation="tanh", name="conv2"),
        keras.layers.GlobalAveragePooling2D(name="pool"),
        keras.layers.Dense(N_CLASSES, name="head"),
    ]


@pytest.fixture(scope="module")
def network() -> Any:
    """A functional model with smooth activations, returning logits."""
    keras.utils.set_random_seed(0)
    x = inputs = keras.Input((8, 8, 3))
    for layer in conv_layers():
        x = layer(x)
    return keras.Model(inputs, x)


def preprocessed(network: Any, *, softmax: bool = False) -> Any:
    """The reference: preprocessing written out as a layer in front of the model."""
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Lambda(lambda p: (p * SCALE - np.array(MEAN)) / np.array(STD))(inputs)
    x = network(x)
    if softmax:
        x = keras.layers.Softmax()(x)
    return keras.Model(inputs, x)


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    return np.random.default_rng(0).uniform(0, 255, size=(3, 8, 8, 3)).astype(np.float32)


def assert_close(actual: np.ndarray, expected: Any, rtol: float = 1e-5) -> None:
    """Equal within ``rtol`` of the largest value (float32 rounding)."""
    expected = np.asarray(expected)
    scale = max(float(np.abs(expected).max()), 1e-12)
    error = float(np.abs(np.asarray(actual) - expected).max())
    assert error <= rtol * scale, f"differ by {error:.3g}, {error / scale:.3g} of the largest"


def seed_numpy(seed: int, image: np.ndarray) -> None:
    value = int(np.random.SeedSequence([seed, image_entropy(image)]).generate_state(1)[0])
    np.random.seed(value)  # noqa: NPY002 - the generator tf-explain draws from


# -- the plugin is found by name ------------------------------------------------------------


def test_plugin_lists_every_method_and_the_registry_creates_them() -> None:
    plugins.reset()
    info = {p.name: p for p in imacs.get_plugins()}["tf-explain"]
    assert info.status == "loaded"
    assert info.distribution == "imacs-tf-explain"
    assert info.components == {"attribution_method": METHOD_NAMES}
    for name in METHOD_NAMES:
        method = imacs.get_method(name)
        assert isinstance(method, TfExplainMethod)
        assert method.name == name


def test_listing_methods_imports_neither_tensorflow_nor_tf_explain() -> None:
    code = textwrap.dedent(
        """
        import sys
        from imacs.plugins import get_host
        names = get_host().registry.names("attribution_method")
        assert "tf-explain-smoothgrad" in names, names
        print(sorted(m for m in ("tensorflow", "keras", "tf_explain") if m in sys.modules))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


# -- against tf-explain called directly ---------------------------------------------------


def test_vanilla_gradients_and_gradients_inputs_equal_tf_explain(network, images) -> None:
    model = imacs.load_model(network, preprocessing=PREPROCESSING)
    reference_model = preprocessed(network)
    for name, helper in [
        ("tf-explain-vanilla-gradients", tf_explain_core.VanillaGradients.compute_gradients),
        ("tf-explain-gradients-inputs", tf_explain_core.GradientsInputs.compute_gradients),
    ]:
        maps = imacs.attribute(model, images, TARGETS, method=name, batch_size=2).maps
        for i, k in enumerate(TARGETS):
            expected = helper(images[i : i + 1], reference_model, int(k)).numpy()
            assert_close(maps[i : i + 1], expected)


def test_integrated_gradients_is_tf_explains_times_the_input(network, images) -> None:
    model = imacs.load_model(network, preprocessing=PREPROCESSING)
    result = imacs.attribute(
        model, images, TARGETS, method="tf-explain-integrated-gradients", n_steps=6
    )
    ig = tf_explain_core.IntegratedGradients
    reference_model = preprocessed(network)
    for i, k in enumerate(TARGETS):
        path = ig.generate_interpolations(images[i : i + 1], 6)
        mean_gradients = ig.get_integrated_gradients(path, reference_model, int(k), 6).numpy()
        assert_close(result.maps[i : i + 1], images[i : i + 1] * mean_gradients)
    change = model.scores(images, TARGETS) - model.scores(np.zeros_like(images), TARGETS)
    sums = result.maps.reshape(3, -1).sum(axis=1)
    np.testing.assert_allclose(result.convergence_delta, sums - change, rtol=1e-4, atol=1e-7)


def test_integrated_gradients_split_paths_agree_with_whole_paths(network, images) -> None:
    model = imacs.load_model(network, preprocessing=PREPROCESSING)
    method = imacs.get_method("tf-explain-integrated-gradients", n_steps=9)
    whole = method.attribute(model, images, TARGETS, batch_size=27).maps
    split = method.attribute(model, images, TARGETS, batch_size=4).maps  # 4 + 4 + 1 points
    assert_close(split, whole, rtol=1e-5)


def test_integrated_gradients_is_complete_with_enough_steps(network, images) -> None:
    # tf-explain's rule (a plain mean including both ends) converges as 1 / n_steps
    model = imacs.load_model(network, preprocessing=PREPROCESSING)
    method = imacs.get_method("tf-explain-integrated-gradients", n_steps=600)
    check_completeness(method, model, images, TARGETS, baselines=0.0, completeness_rtol=0.01)
    coarse = imacs.get_method("tf-explain-integrated-gradients", n_steps=4)
    with pytest.raises(AssertionError, match="F\\(x\\) - F\\(x'\\)"):
        check_completeness(coarse, model, images, TARGETS, baselines=0.0)


def test_smoothgrad_is_minus_tf_explains_averaged_gradients(network, images) -> None:
    model = imacs.load_model(network, preprocessing=PREPROCESSING, target="probability")
    result = imacs.attribute(
        model, images, TARGETS, method="tf-explain-smoothgrad", num_samples=4, noise=3.0, seed=5
    )
    sg = tf_explain_core.SmoothGrad
    reference_model = preprocessed(network, softmax=True)
    for i, k in enumerate(TARGETS):
        seed_numpy(5, images[i])
        noisy = sg.generate_noisy_images(images[i : i + 1], 4, 3.0)
        expected = sg.get_averaged_gradients(noisy, reference_model, int(k), 4).numpy()
        assert_close(result.maps[i : i + 1], -expected)


def test_occlusion_sensitivity_is_tf_explains_map_on_every_channel(network, images) -> None:
    model = imacs.load_model(network, preprocessing=PREPROCESSING, target="probability")
    maps = imacs.attribute(
        model, images[:2], TARGETS[:2], method="tf-explain-occlusion-sensitivity", patch_size=3
    ).maps
    explainer = tf_explain_core.OcclusionSensitivity()
    reference_model = preprocessed(network, softmax=True)
    for i, k in enumerate(TARGETS[:2]):
        expected = explainer.get_sensitivity_map(reference_model, images[i], int(k), 3)
        for channel in range(3):
            assert_close(maps[i, ..., channel], expected)


def test_grad_cam_is_tf_explains_resized_to_the_image(network, images) -> None:
    model = imacs.load_model(network)  # no preprocessing: the reference is the plain model
    x = images / 255
    maps = imacs.attribute(model, x, TARGETS, method="tf-explain-grad-cam").maps
    gc = tf_explain_core.GradCAM
    for i, k in enumerate(TARGETS):
        with pytest.warns(UserWarning, match="structure of `inputs`"):
            outputs, grads = gc.get_gradients_and_filters(
                network, x[i : i + 1], "conv2", int(k), True
            )
        (cam,) = gc.generate_ponderated_output(outputs, grads)
        import cv2

        expected = cv2.resize(cam.numpy(), (8, 8))
        assert_close(maps[i, ..., 0], expected)
        assert_close(maps[i, ..., 2], expected)


# -- what tf-explain 0.3.1 cannot do on Keras 3, and the wrappers' answer --------------------


def test_tf_explains_own_layer_inference_fails_on_keras_3(network) -> None:
    with pytest.raises(AttributeError, match="output_shape"):
        tf_explain_core.GradCAM.infer_grad_cam_target_layer(network)


def test_grad_cam_works_on_sequential_models_where_tf_explain_fails(images) -> None:
    keras.utils.set_random_seed(0)
    sequential = keras.Sequential([keras.Input((8, 8, 3)), *conv_layers()])
    with pytest.raises(AttributeError, match="no defined output"):
        tf_explain_core.GradCAM.get_gradients_and_filters(sequential, images, "conv2", 0, True)
    model = imacs.load_model(sequential)
    maps = imacs.attribute(model, images / 255, TARGETS, method="tf-explain-grad-cam").maps
    assert maps.shape == images.shape and np.abs(maps).max() > 0


def test_grad_cam_refuses_a_subclassed_model_clearly(images) -> None:
    class Subclassed(keras.Model):
        def __init__(self) -> None:
            super().__init__()
            self.stack = conv_layers()

        def call(self, x: Any) -> Any:
            for layer in self.stack:
                x = layer(x)
            return x

    model = imacs.load_model(Subclassed())
    with pytest.raises(MissingCapabilityError, match="only functional and Sequential Keras"):
        imacs.attribute(model, images, TARGETS, method="tf-explain-grad-cam")


def test_smoothgrad_refuses_scores_that_are_not_probabilities(network, images) -> None:
    model = imacs.load_model(network, preprocessing=PREPROCESSING)  # logits
    with pytest.raises(InvalidInputError, match="reads the model's target scores as prob"):
        imacs.attribute(model, images, TARGETS, method="tf-explain-smoothgrad")


def test_occlusion_sensitivity_refuses_non_square_images(network) -> None:
    inputs = keras.Input((8, 12, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(inputs)
    model = imacs.load_model(keras.Model(inputs, keras.layers.Dense(N_CLASSES)(pooled)))
    with pytest.raises(InvalidInputError, match="needs square images; got 8x12"):
        imacs.attribute(
            model,
            np.zeros((1, 8, 12, 3), np.float32),
            [0],
            method="tf-explain-occlusion-sensitivity",
        )


def test_a_non_tensorflow_adapter_is_refused_with_the_adapter_named(images) -> None:
    for name in METHOD_NAMES:
        with pytest.raises(InvalidInputError) as info:
            imacs.get_method(name).attribute(softplus_model(), images, TARGETS)
        assert f"{name} needs a Keras or TensorFlow model loaded through imacs-tensorflow" in str(
            info.value
        )
        assert "got adapter 'function'" in str(info.value)


@pytest.mark.parametrize(
    ("name", "params", "match"),
    [
        ("tf-explain-integrated-gradients", {"n_steps": 1}, "n_steps to be an int >= 2"),
        ("tf-explain-smoothgrad", {"noise": -1.0}, "noise to be a number >= 0"),
        ("tf-explain-occlusion-sensitivity", {"patch_size": 0}, "patch_size to be an int"),
        ("tf-explain-grad-cam", {"layer_name": 3}, "layer_name to be a Keras layer name"),
    ],
)
def test_bad_parameters_are_refused(name: str, params: dict[str, Any], match: str) -> None:
    with pytest.raises(InvalidInputError, match=match):
        imacs.get_method(name, **params)


def test_grad_cam_names_the_layers_when_one_is_unknown(network, images) -> None:
    model = imacs.load_model(network)
    with pytest.raises(InvalidInputError, match=r"no layer 'conv3'.*Did you mean"):
        imacs.attribute(model, images, TARGETS, method="tf-explain-grad-cam", layer_name="conv3")
    with pytest.raises(InvalidInputError, match="4-D output"):
        imacs.attribute(model, images, TARGETS, method="tf-explain-grad-cam", layer_name="head")


# -- the conformance suite ----------------------------------------------------------------


def conformance_cases() -> list[tuple[str, dict[str, Any], str]]:
    """(method, params, adapter target)."""
    return [
        ("tf-explain-vanilla-gradients", {}, "logit"),
        ("tf-explain-gradients-inputs", {}, "log_probability"),
        ("tf-explain-integrated-gradients", {"n_steps": 8}, "logit"),
        ("tf-explain-smoothgrad", {"num_samples": 3, "noise": 5.0}, "probability"),
        ("tf-explain-occlusion-sensitivity", {"patch_size": 4}, "probability"),
        ("tf-explain-grad-cam", {"use_guided_grads": False}, "logit"),
    ]


@pytest.mark.parametrize(
    ("name", "params", "target"),
    conformance_cases(),
    ids=lambda v: v if isinstance(v, str) and v.startswith("tf-") else None,
)
def test_method_passes_the_conformance_checks(
    network, images, name: str, params: dict[str, Any], target: str
) -> None:
    # imacs.testing.check_attribution_method, less the two checks that wrap the model in a
    # RecordingAdapter: it is not a TensorFlowAdapter, so tf-explain methods refuse it.
    model = imacs.load_model(network, preprocessing=PREPROCESSING, target=target)
    method = imacs.get_method(name, **params)
    failures = []
    for check in ATTRIBUTION_CHECKS:
        if check in (check_respects_batch_size, check_requirements_are_used):
            continue
        try:
            check(method, model, images, TARGETS)
        except AssertionError as exc:
            failures.append(f"{check.__name__}: {exc}")
    assert not failures, "\n".join(failures)


def test_a_target_function_is_explained_like_the_adapter_scores_it(network, images) -> None:
    def margin(outputs: Any, targets: Any) -> Any:
        chosen = tf.gather(outputs, targets, axis=1, batch_dims=1)
        return 2 * chosen - tf.reduce_mean(outputs, axis=1)

    model = imacs.load_model(network, preprocessing=PREPROCESSING, target=margin)
    maps = imacs.attribute(model, images, TARGETS, method="tf-explain-vanilla-gradients").maps
    assert_close(maps, model.gradients(images, TARGETS))
