"""The imacs-tensorflow plugin: Keras 3 models and SavedModels behind the adapter contract.

Models are tiny (8x8 images, a few filters) so the whole file runs in seconds after
TensorFlow's import. Gradients are checked against hand-written ``tf.GradientTape``
code and against finite differences of the adapter's own scores.
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import zipfile

import numpy as np
import pytest
from click.testing import CliRunner

tf = pytest.importorskip("tensorflow")
keras = pytest.importorskip("keras")

from imacs_tensorflow import TensorFlowAdapter, claim_model  # noqa: E402

import imacs  # noqa: E402
from imacs.adapters.options import OptionText  # noqa: E402
from imacs.cli import cli  # noqa: E402
from imacs.errors import (  # noqa: E402
    InvalidInputError,
    MissingCapabilityError,
    ModelLoadError,
    UntrustedModelError,
)

#: every capability a model of layers offers through this adapter
ALL_CAPABILITIES = {"embedding", "geometry", "gradients", "injection", "layers", "randomise", "vjp"}

pytestmark = [
    pytest.mark.tensorflow,
    # Keras's own saving code converts variables with np.array(copy=False) (Keras 3.15)
    pytest.mark.filterwarnings("ignore:__array__ implementation:DeprecationWarning"),
]

H, W, C, K = 8, 8, 3, 5
PREPROCESSING = {"scale": 1 / 255, "mean": (0.5, 0.4, 0.3), "std": (0.2, 0.25, 0.3)}


def smooth_cnn(seed: int = 0, dtype: str = "float32") -> keras.Model:
    """Two smooth convolutions, pooling and a dense head: differentiable everywhere."""
    keras.utils.set_random_seed(seed)
    return keras.Sequential(
        [
            keras.Input((H, W, C), dtype=dtype),
            keras.layers.Conv2D(4, 3, activation="tanh", name="conv1", dtype=dtype),
            keras.layers.Conv2D(6, 3, activation="softplus", name="conv2", dtype=dtype),
            keras.layers.GlobalAveragePooling2D(name="pool", dtype=dtype),
            keras.layers.Dense(K, name="logits", dtype=dtype),
        ]
    )


def functional_cnn(seed: int = 1) -> keras.Model:
    keras.utils.set_random_seed(seed)
    inputs = keras.Input((H, W, C))
    x = keras.layers.Conv2D(4, 3, activation="tanh")(inputs)
    x = keras.layers.Flatten()(x)
    return keras.Model(inputs, keras.layers.Dense(K)(x))


class SubclassedCNN(keras.Model):
    def __init__(self) -> None:
        super().__init__()
        self.conv = keras.layers.Conv2D(3, 3, activation="tanh")
        self.pool = keras.layers.GlobalAveragePooling2D()
        self.head = keras.layers.Dense(K)

    def call(self, x):
        return self.head(self.pool(self.conv(x)))


@pytest.fixture(scope="module")
def images() -> np.ndarray:
    """Pixels in [0, 255], as a dataset stored as bytes would give them."""
    return (np.random.default_rng(0).random((6, H, W, C)) * 255).astype(np.float32)


@pytest.fixture(scope="module")
def targets() -> np.ndarray:
    return np.array([0, 1, 2, 3, 4, 0])


@pytest.fixture(scope="module")
def model() -> keras.Model:
    return smooth_cnn()


@pytest.fixture(scope="module")
def adapter(model) -> TensorFlowAdapter:
    return TensorFlowAdapter(model, preprocessing=PREPROCESSING)


def reference_preprocess(x: tf.Tensor, preprocessing: imacs.Preprocessing) -> tf.Tensor:
    """The NumPy reference (Preprocessing.apply) written again with TF ops, by hand."""
    x = x * preprocessing.scale
    if preprocessing.mean is not None:
        x = x - np.asarray(preprocessing.mean, np.float32)
    if preprocessing.std is not None:
        x = x / np.asarray(preprocessing.std, np.float32)
    return x[..., ::-1] if preprocessing.channel_order == "bgr" else x


def tape_gradients(model, images, targets, preprocessing, score):
    x = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(x)
        outputs = model(reference_preprocess(x, preprocessing), training=False)
        scores = score(outputs, tf.constant(targets))
    return scores.numpy(), tape.gradient(scores, x).numpy()


# -- discovery, shapes, description -----------------------------------------------------


def test_load_model_finds_the_plugin_through_its_entry_point(model, images, targets):
    adapter = imacs.load_model(model, preprocessing=PREPROCESSING, batch_size=4)
    assert isinstance(adapter, TensorFlowAdapter)
    info = {p.name: p for p in imacs.get_plugins()}["tensorflow"]
    assert (info.source, info.status) == ("entry-point", "loaded")
    assert info.components == {"model_adapter": ["tensorflow"]}

    outputs = adapter.predict(images)
    values, grads = adapter.value_and_gradients(images, targets)
    assert outputs.shape == (6, K) and outputs.dtype == np.float32
    assert values.shape == (6,) and values.dtype == np.float32
    assert grads.shape == images.shape and grads.dtype == np.float32
    np.testing.assert_allclose(values, outputs[np.arange(6), targets], rtol=1e-6)

    described = adapter.describe()
    assert described["adapter"] == "tensorflow" and described["num_classes"] == K
    assert described["parameters"] == model.count_params()
    assert described["input_shape"] == [H, W, C]
    assert described["preprocessing"]["mean"] == [0.5, 0.4, 0.3]
    assert described["capabilities"] == sorted(ALL_CAPABILITIES)
    assert described["model_class"].endswith("Sequential")


def test_importing_the_plugin_imports_no_framework(tmp_path):
    torch_like = tmp_path / "weights.pt"
    with zipfile.ZipFile(torch_like, "w") as archive:
        archive.writestr("archive/data.pkl", b"")
        archive.writestr("config.json", b"{}")
        archive.writestr("model.weights.h5", b"")
    code = (
        "import sys, imacs, imacs_tensorflow as p\n"
        "imacs.get_plugins()\n"
        f"assert p.claim_model(object(), {{}}) is None\n"
        f"assert p.claim_model({str(torch_like)!r}, {{}}) is None\n"
        "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_claims_only_tensorflow_models_and_files(tmp_path, model):
    (tmp_path / "notes.txt").write_text("hello")
    assert claim_model(tmp_path / "notes.txt", {}) is None
    assert claim_model(tmp_path, {}) is None  # a directory without saved_model.pb
    assert claim_model(np.zeros(3), {}) is None
    assert isinstance(claim_model(model, {}), TensorFlowAdapter)


# -- gradients ----------------------------------------------------------------------------


def _pick(outputs, targets):
    return tf.gather(outputs, targets, batch_dims=1)


def _margin(outputs, targets):
    """A user target: the class score minus the mean of the others."""
    chosen = _pick(outputs, targets)
    return chosen - (tf.reduce_sum(outputs, axis=1) - chosen) / (K - 1)


SCORES = {
    "logit": _pick,
    "probability": lambda out, t: _pick(tf.nn.softmax(out), t),
    "log_probability": lambda out, t: _pick(tf.nn.log_softmax(out), t),
    "callable": _margin,
}


@pytest.mark.parametrize("target", list(SCORES))
def test_gradients_equal_a_hand_written_tape(model, images, targets, target):
    preprocessing = imacs.Preprocessing(**PREPROCESSING, channel_order="bgr")
    adapter = TensorFlowAdapter(
        model, preprocessing=preprocessing, target=_margin if target == "callable" else target
    )
    values, grads = adapter.value_and_gradients(images, targets)
    expected_values, expected_grads = tape_gradients(
        model, images, targets, preprocessing, SCORES[target]
    )
    np.testing.assert_allclose(values, expected_values, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads, expected_grads, rtol=1e-4, atol=1e-7)
    assert np.abs(grads).max() > 0
    # predict runs the same preprocessing as the NumPy reference
    np.testing.assert_allclose(
        adapter.predict(images), model(preprocessing.apply(images)).numpy(), rtol=1e-5, atol=1e-6
    )


def test_gradients_match_central_finite_differences(images, targets):
    # float64 weights: the only rounding left is in the float32 pixels and scores
    adapter = TensorFlowAdapter(
        smooth_cnn(dtype="float64"), preprocessing=PREPROCESSING, target="log_probability"
    )
    grads = adapter.gradients(images, targets).astype(np.float64)
    rng = np.random.default_rng(1)
    step = 1.0  # pixels are in [0, 255]; one grey level is a small step after scaling
    for _ in range(3):
        v = rng.normal(size=images.shape)
        v /= np.linalg.norm(v.reshape(len(v), -1), axis=1)[:, None, None, None]
        plus = adapter.scores((images + step * v).astype(np.float32), targets)
        minus = adapter.scores((images - step * v).astype(np.float32), targets)
        numeric = (plus.astype(np.float64) - minus) / (2 * step)
        analytic = np.sum(grads * v, axis=(1, 2, 3))
        # the scores come back as float32: allow their rounding (a few ulps over 2 * step),
        # which differs between CPUs, so the check holds on every machine
        rounding = 8 * np.finfo(np.float32).eps * np.abs(np.concatenate([plus, minus])).max() / step
        np.testing.assert_allclose(
            numeric, analytic, rtol=1e-3, atol=1e-3 * np.abs(analytic).max() + rounding
        )


def test_results_do_not_depend_on_batches_and_are_deterministic(adapter, images, targets):
    whole = adapter.value_and_gradients(images, targets)
    for batch_size in (1, 4):
        split = adapter.value_and_gradients(images, targets, batch_size=batch_size)
        np.testing.assert_allclose(split[0], whole[0], rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(split[1], whole[1], rtol=1e-5, atol=1e-9)
    again = adapter.value_and_gradients(images, targets)
    assert np.array_equal(again[0], whole[0]) and np.array_equal(again[1], whole[1])


def test_batches_of_any_size_reuse_one_trace(model, images, targets):
    adapter = TensorFlowAdapter(model)
    for n in (1, 3, 5):
        adapter.predict(images[:n])
        adapter.scores(images[:n], targets[:n])
        adapter.value_and_gradients(images[:n], targets[:n])
    compiled = adapter._compiled  # the adapter's tf.functions
    assert compiled.predict.experimental_get_tracing_count() == 1
    assert compiled.scores.experimental_get_tracing_count() == 1
    assert compiled.value_and_gradients.experimental_get_tracing_count() == 1


def test_channels_first_models_get_transposed_images(images, targets):
    keras.utils.set_random_seed(3)
    model = keras.Sequential(
        [
            keras.Input((C, H, W)),
            keras.layers.Permute((2, 3, 1)),  # TF's CPU convolutions only run channels-last
            keras.layers.Conv2D(2, 3, activation="tanh"),
            keras.layers.Flatten(),
            keras.layers.Dense(K),
        ]
    )
    adapter = TensorFlowAdapter(model, channels_first=True)
    assert adapter.describe()["input_shape"] == [H, W, C]
    nchw = images.transpose(0, 3, 1, 2) / 255
    np.testing.assert_allclose(adapter.predict(images / 255), model(nchw).numpy(), rtol=1e-5)
    x = tf.constant(nchw)
    with tf.GradientTape() as tape:
        tape.watch(x)
        scores = _pick(model(x), targets)
    expected = tape.gradient(scores, x).numpy().transpose(0, 2, 3, 1)
    np.testing.assert_allclose(adapter.gradients(images / 255, targets), expected, rtol=1e-5)


# -- files --------------------------------------------------------------------------------


def test_keras_file_round_trip(tmp_path, model, adapter, images, targets):
    path = tmp_path / "model.keras"
    model.save(path)
    loaded = imacs.load_model(path, preprocessing=PREPROCESSING)
    assert isinstance(loaded, TensorFlowAdapter) and loaded.source == str(path)
    np.testing.assert_array_equal(loaded.predict(images), adapter.predict(images))
    np.testing.assert_array_equal(
        loaded.gradients(images, targets), adapter.gradients(images, targets)
    )
    assert loaded.fingerprint() == adapter.fingerprint()
    # a .keras archive under another name is still recognised and read
    renamed = tmp_path / "model.bin"
    shutil.copyfile(path, renamed)
    np.testing.assert_array_equal(
        imacs.load_model(renamed, preprocessing=PREPROCESSING).predict(images),
        adapter.predict(images),
    )


def test_lambda_layers_need_trust(tmp_path, images):
    keras.utils.set_random_seed(4)
    model = keras.Sequential(
        [
            keras.Input((H, W, C)),
            keras.layers.Lambda(lambda x: x / 255.0),
            keras.layers.Flatten(),
            keras.layers.Dense(K),
        ]
    )
    path = tmp_path / "lambda.keras"
    model.save(path)
    with pytest.raises(UntrustedModelError, match="trust=True") as caught:
        imacs.load_model(path)
    assert "Lambda" in str(caught.value) and caught.value.__cause__ is not None
    trusted = imacs.load_model(path, trust=True)
    np.testing.assert_allclose(trusted.predict(images), model(images).numpy(), rtol=1e-5, atol=1e-6)


def lambda_model_that_writes(mark) -> keras.Model:
    """A model whose Lambda layer writes ``mark`` each time Keras calls it, loading included."""
    keras.utils.set_random_seed(4)
    # Keras stores the lambda's bytecode, so the path is written into the code itself
    writes = eval(f"lambda x: (open({str(mark)!r}, 'w').write('ran'), x)[1]")
    return keras.Sequential(
        [
            keras.Input((H, W, C)),
            keras.layers.Lambda(writes),
            keras.layers.Flatten(),
            keras.layers.Dense(K),
        ]
    )


@pytest.fixture
def lambda_archive(tmp_path):
    """A .keras archive whose Lambda layer writes a file if Keras runs it, and that file."""
    mark, path = tmp_path / "written-by-the-lambda", tmp_path / "lambda.keras"
    lambda_model_that_writes(mark).save(path)
    mark.unlink()  # building the model ran the lambda once
    return path, mark


@pytest.mark.parametrize("typed", ["False", "false", "no", "NO", "0"])
def test_cli_trust_false_keeps_keras_safe_mode(lambda_archive, tmp_path, typed):
    path, mark = lambda_archive
    (tmp_path / "images").mkdir()
    arguments = ["attribute", "--model", str(path), "--images", str(tmp_path / "images")]
    arguments += ["--out", str(tmp_path / "out"), "--model-option", f"trust={typed}"]
    result = CliRunner().invoke(cli, arguments)
    assert isinstance(result.exception, UntrustedModelError), result.output
    assert not mark.exists()


@pytest.mark.parametrize("trust", ["False", "no", "true", 0, 1, None])
def test_trust_that_is_not_a_bool_is_refused(lambda_archive, trust):
    path, mark = lambda_archive
    with pytest.raises(InvalidInputError, match="'trust' to be True or False"):
        TensorFlowAdapter.load(path, trust=trust)
    with pytest.raises(InvalidInputError, match="'trust' to be True or False"):
        imacs.load_model(path, trust=trust)
    assert not mark.exists()


def test_trust_typed_as_yes_runs_the_lambda(lambda_archive):
    path, mark = lambda_archive
    imacs.load_model(path, trust=OptionText("yes"))
    assert mark.exists()  # what safe mode kept from running above


class WritesWhileLoading(tf.saved_model.experimental.TrackableResource):
    """A resource whose initialiser, a graph op, writes a file when the SavedModel loads."""

    def __init__(self, mark: str) -> None:
        self.mark = mark
        super().__init__()

    def _create_resource(self):
        return tf.raw_ops.VarHandleOp(dtype=tf.float32, shape=[])

    def _initialize(self):
        tf.io.write_file(self.mark, "ran while loading")
        tf.raw_ops.AssignVariableOp(resource=self.resource_handle, value=1.0)


def test_saved_models_run_operations_while_loading_so_they_need_trust(tmp_path, images):
    mark, directory = tmp_path / "written-while-loading", tmp_path / "saved"
    module = tf.Module()
    module.resource = WritesWhileLoading(str(mark))
    module.serve = tf.function(
        lambda x: tf.reshape(x, [-1, H * W * C])[:, :K],
        input_signature=[tf.TensorSpec([None, H, W, C], tf.float32)],
    )
    tf.saved_model.save(module, str(directory))
    mark.unlink(missing_ok=True)
    for trust in ({}, {"trust": False}, {"trust": OptionText("no")}):
        with pytest.raises(UntrustedModelError, match=r"SavedModel.*trust=True"):
            imacs.load_model(directory, **trust)
    assert not mark.exists()
    trusted = imacs.load_model(directory, trust=True)
    assert mark.exists()  # the refusal is what kept the operation from running
    assert trusted.predict(images).shape == (len(images), K)


def test_saved_model_directory_from_export(tmp_path, model, adapter, images, targets):
    directory = tmp_path / "exported"
    model.export(directory, verbose=False)
    loaded = imacs.load_model(directory, preprocessing=PREPROCESSING, trust=True)
    assert isinstance(loaded, TensorFlowAdapter)
    # no layers to read or re-initialise; output gradients need only the endpoint
    assert loaded.capabilities == {"gradients", "vjp"}
    assert loaded.describe()["endpoint"] == "serve"
    assert loaded.describe()["input_shape"] == [H, W, C]
    np.testing.assert_allclose(loaded.predict(images), adapter.predict(images), rtol=1e-6)
    np.testing.assert_allclose(
        loaded.gradients(images, targets), adapter.gradients(images, targets), rtol=1e-5, atol=1e-9
    )
    with pytest.raises(MissingCapabilityError):
        loaded.layer_gradients(images, targets, "conv1")
    # the signature returns a dict with one output: it is used as the class scores
    signature = imacs.load_model(
        directory, endpoint="serving_default", preprocessing=PREPROCESSING, trust=True
    )
    np.testing.assert_allclose(signature.predict(images), adapter.predict(images), rtol=1e-6)
    again = imacs.load_model(directory, preprocessing=PREPROCESSING, trust=True)
    assert again.fingerprint() == loaded.fingerprint() != adapter.fingerprint()
    with pytest.raises(InvalidInputError, match="no endpoint 'predict'"):
        imacs.load_model(directory, endpoint="predict", trust=True)


def test_several_outputs_need_output_key(tmp_path, images):
    keras.utils.set_random_seed(5)
    inputs = keras.Input((H, W, C))
    flat = keras.layers.Flatten()(inputs)
    model = keras.Model(inputs, [keras.layers.Dense(K)(flat), keras.layers.Dense(2)(flat)])
    with pytest.raises(InvalidInputError, match="output_key"):
        TensorFlowAdapter(model)
    second_head = TensorFlowAdapter(model, output_key=1)
    assert second_head.predict(images).shape == (6, 2)
    flat_values, flat_grads = second_head.layer_gradients(images, 1, second_head.layer_names()[0])
    head = model.layers[-1].kernel.numpy()  # d (flat @ kernel)[:, 1] / d flat
    np.testing.assert_allclose(flat_grads, np.broadcast_to(head[:, 1], flat_values.shape))

    directory = tmp_path / "two-heads"
    model.export(directory, verbose=False)
    with pytest.raises(InvalidInputError, match="output_0"):
        imacs.load_model(directory, endpoint="serving_default", trust=True).predict(images)
    loaded = imacs.load_model(
        directory, endpoint="serving_default", output_key="output_0", trust=True
    )
    np.testing.assert_allclose(loaded.predict(images), model(images)[0].numpy(), rtol=1e-5)


def test_corrupt_files_raise_model_load_error(tmp_path, model):
    corrupt = tmp_path / "broken.keras"
    corrupt.write_bytes(b"not a zip archive")
    with pytest.raises(ModelLoadError, match=r"broken\.keras.*not a zip archive") as caught:
        imacs.load_model(corrupt)
    assert caught.value.__cause__ is not None
    assert not isinstance(caught.value, UntrustedModelError)

    saved_model = tmp_path / "broken-saved-model"
    saved_model.mkdir()
    (saved_model / "saved_model.pb").write_bytes(b"\x00garbage")
    with pytest.raises(ModelLoadError, match="SavedModel") as caught:
        imacs.load_model(saved_model, trust=True)
    assert caught.value.__cause__ is not None

    weights_only = tmp_path / "model.weights.h5"
    model.save_weights(weights_only)
    with pytest.raises(ModelLoadError, match="load_weights"):
        imacs.load_model(weights_only)


def test_option_and_path_errors(tmp_path, model):
    with pytest.raises(InvalidInputError, match=r"preprocess\b.*'preprocessing'.*trust"):
        imacs.load_model(model, preprocess={"scale": 2.0})
    with pytest.raises(InvalidInputError, match="only apply when loading a model file"):
        imacs.load_model(model, trust=True)
    with pytest.raises(ModelLoadError, match="does not exist"):
        imacs.load_model(tmp_path / "missing.keras")
    with pytest.raises(ModelLoadError, match="does not exist"):
        TensorFlowAdapter.load(tmp_path / "missing.keras")
    with pytest.raises(InvalidInputError, match="endpoint"):
        TensorFlowAdapter(model, endpoint="serve")


# -- errors the base contract raises ----------------------------------------------------


def test_outputs_that_are_not_class_scores_are_refused(images):
    keras.utils.set_random_seed(6)
    segmenter = keras.Sequential([keras.Input((H, W, C)), keras.layers.Conv2D(2, 3)])
    adapter = TensorFlowAdapter(segmenter)
    with pytest.raises(InvalidInputError, match=r"shape \(N, K\)"):
        adapter.predict(images)
    with pytest.raises(InvalidInputError, match=r"shape \(N, K\)"):
        adapter.gradients(images, 0)


def test_bad_targets_and_image_sizes(adapter, images):
    with pytest.raises(InvalidInputError, match=r"\[0, 4\]"):
        adapter.gradients(images, K)
    with pytest.raises(InvalidInputError, match="resize"):
        adapter.predict(np.zeros((2, 10, 10, C), np.float32))
    with pytest.raises(InvalidInputError, match=r"expects images with 3 channel\(s\); got 1"):
        adapter.predict(np.zeros((2, H, W, 1), np.float32))


def test_keras_must_run_on_tensorflow(model, monkeypatch):
    monkeypatch.setattr(keras.backend, "backend", lambda: "jax")
    with pytest.raises(ModelLoadError, match="KERAS_BACKEND=tensorflow"):
        TensorFlowAdapter(model)


# -- layers, embedding, fingerprint -----------------------------------------------------


def test_layer_gradients_match_a_hand_written_tape(model, adapter, images, targets):
    assert adapter.layer_names() == ["conv1", "conv2", "pool", "logits"]
    activations, grads = adapter.layer_gradients(images, targets, "conv1", batch_size=4)
    assert activations.shape == grads.shape == (6, 6, 6, 4)
    assert activations.dtype == grads.dtype == np.float32

    preprocessing = imacs.Preprocessing(**PREPROCESSING)
    layer = model.get_layer("conv1")(preprocessing.apply(images))
    with tf.GradientTape() as tape:
        tape.watch(layer)
        rest = model.get_layer("pool")(model.get_layer("conv2")(layer))
        scores = _pick(model.get_layer("logits")(rest), targets)
    np.testing.assert_allclose(activations, layer.numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(grads, tape.gradient(scores, layer).numpy(), rtol=1e-4, atol=1e-7)


def test_embed_defaults_to_the_last_spatial_layer(adapter, images, targets):
    assert adapter.default_layer() == "conv2"
    features = adapter.embed(images, batch_size=4)
    assert features.shape == (6, 4, 4, 6) and features.dtype == np.float32
    activations, _ = adapter.layer_gradients(images, targets, "conv2")
    np.testing.assert_allclose(features, activations, rtol=1e-6)
    assert adapter.embed(images, layer="pool").shape == (6, 6)


def test_unknown_layer_lists_the_layers(adapter, images, targets):
    with pytest.raises(InvalidInputError, match=r"no layer 'conv3'.*conv1, conv2.*'conv1'"):
        adapter.layer_gradients(images, targets, "conv3")
    with pytest.raises(InvalidInputError, match="no layer"):
        adapter.embed(images, layer="nope")


def test_subclassed_models_only_offer_gradients(images, targets):
    keras.utils.set_random_seed(7)
    adapter = imacs.load_model(SubclassedCNN())
    assert adapter.capabilities == {"gradients", "vjp"}
    with pytest.raises(InvalidInputError, match="no weights yet"):
        adapter.fingerprint()
    assert adapter.gradients(images, targets).shape == images.shape  # builds the model
    assert len(adapter.fingerprint()) == 64
    with pytest.raises(MissingCapabilityError, match="'layers'"):
        adapter.layer_gradients(images, targets, "conv")
    with pytest.raises(MissingCapabilityError, match="'embedding'"):
        adapter.embed(images)


def test_fingerprint_follows_weights_not_names(model, adapter):
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    assert (
        TensorFlowAdapter(copy, preprocessing=PREPROCESSING).fingerprint() == adapter.fingerprint()
    )

    rebuilt = functional_cnn()  # built twice in one process: Keras names the layers apart
    other = functional_cnn()
    other.set_weights(rebuilt.get_weights())
    assert [w.path for w in other.weights] != [w.path for w in rebuilt.weights]
    assert TensorFlowAdapter(other).fingerprint() == TensorFlowAdapter(rebuilt).fingerprint()

    weights = copy.get_weights()
    weights[0][0, 0, 0, 0] += 1e-3
    copy.set_weights(weights)
    changed = TensorFlowAdapter(copy, preprocessing=PREPROCESSING).fingerprint()
    assert changed != adapter.fingerprint()
    assert TensorFlowAdapter(model).fingerprint() != adapter.fingerprint()
    assert TensorFlowAdapter(
        model, preprocessing=PREPROCESSING, target="probability"
    ).fingerprint() != (adapter.fingerprint())


def test_a_tf_module_with_a_signature(images, targets):
    class Linear(tf.Module):
        def __init__(self):
            super().__init__()
            self.w = tf.Variable(
                np.random.default_rng(8).normal(size=(H * W * C, K)), dtype=tf.float32
            )

        @tf.function(input_signature=[tf.TensorSpec([None, H, W, C], tf.float32)])
        def __call__(self, x):
            return tf.reshape(x, [-1, H * W * C]) @ self.w

    module = Linear()
    adapter = imacs.load_model(module)
    assert adapter.describe()["input_shape"] == [H, W, C]
    grads = adapter.gradients(images, targets)
    expected = tf.gather(tf.transpose(module.w), targets).numpy().reshape(images.shape)
    np.testing.assert_allclose(grads, expected, rtol=1e-6)
    before = adapter.fingerprint()
    module.w.assign_add(tf.ones_like(module.w))
    assert adapter.fingerprint() != before

    # two functions over the same variable compute different things: the graph tells them apart
    spec = [tf.TensorSpec([None, H, W, C], tf.float32)]
    linear = tf.function(lambda x: tf.reshape(x, [-1, H * W * C]) @ module.w, input_signature=spec)
    doubled = tf.function(lambda x: 2 * linear(x), input_signature=spec)
    assert imacs.load_model(linear).fingerprint() != imacs.load_model(doubled).fingerprint()


def test_conformance_suite(adapter, images, targets):
    testing = pytest.importorskip("imacs.testing")
    testing.check_model_adapter(adapter, images[:3], targets[:3])
