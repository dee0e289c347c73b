"""Between imacs's TensorFlow adapter and tf-explain's helpers.

tf-explain's helpers take a Keras model and a batch of images, and explain
``model(images)[:, class_index]``: one class for the whole batch. The model handed to
them here, :func:`pixel_model`, is a functional Keras model from the user's pixels to one
score per class, each the adapter's target score for that class. Inside it run the
adapter's own compiled pieces: preprocessing, layout change, the model call and the
class-score selection, the very TensorFlow operations ``TensorFlowAdapter.gradients``
differentiates. So tf-explain's maps are with respect to the same pixels as imacs's, and
of the same target. Images are grouped by target class before each helper call.

This module imports TensorFlow and Keras; the method modules import it only when they run.
"""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from typing import Any

import keras
import numpy as np
import tensorflow as tf
from imacs_tensorflow.adapter import TensorFlowAdapter
from imacs_tensorflow.compiled import CompiledModel, single_output

from imacs.adapters.base import TargetSpec
from imacs.attribution.seeds import image_entropy
from imacs.errors import MissingCapabilityError

# adapter -> {image shape: pixel model}; weak, so models go when their adapter goes
_PIXEL_MODELS: weakref.WeakKeyDictionary[TensorFlowAdapter, dict[tuple[int, ...], keras.Model]]
_PIXEL_MODELS = weakref.WeakKeyDictionary()


def class_scores(outputs: tf.Tensor, target: TargetSpec, n_classes: int) -> tf.Tensor:
    """``(N, K)``: column ``k`` is the adapter's target score for class ``k``.

    For ``"logit"`` that is the outputs themselves; for a target function, the function
    evaluated once per class.
    """
    if target == "logit":
        return outputs
    if target == "probability":
        return tf.nn.softmax(outputs, axis=-1)
    if target == "log_probability":
        return tf.nn.log_softmax(outputs, axis=-1)
    assert callable(target)
    rows = tf.shape(outputs)[:1]
    return tf.stack(
        [
            tf.cast(target(outputs, tf.fill(rows, tf.constant(k, tf.int64))), tf.float32)
            for k in range(n_classes)
        ],
        axis=1,
    )


class PixelScores(keras.layers.Layer):
    """User pixels ``(N, H, W, C)`` to the adapter's target score per class ``(N, K)``."""

    def __init__(self, compiled: CompiledModel, target: TargetSpec, n_classes: int):
        super().__init__(trainable=False, dtype="float32")
        # The adapter's compiled pieces, not the adapter: the cache is keyed weakly on it.
        self._compiled = compiled
        self._target = target
        self._n_classes = n_classes

    def call(self, pixels: tf.Tensor) -> tf.Tensor:
        outputs = self._compiled._outputs(pixels)  # preprocess, lay out, run, cast
        return class_scores(outputs, self._target, self._n_classes)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return (input_shape[0], self._n_classes)


class TargetScores(keras.layers.Layer):
    """A model's class outputs ``(N, K)`` to the adapter's target score per class."""

    def __init__(self, target: TargetSpec, n_classes: int):
        super().__init__(trainable=False, dtype="float32")
        self._target = target
        self._n_classes = n_classes

    def call(self, outputs: tf.Tensor) -> tf.Tensor:
        return class_scores(tf.cast(outputs, tf.float32), self._target, self._n_classes)

    def compute_output_shape(self, input_shape: tuple[Any, ...]) -> tuple[Any, ...]:
        return (input_shape[0], self._n_classes)


def n_classes(adapter: TensorFlowAdapter, images: np.ndarray) -> int:
    """The number of model outputs (one prediction on the first image if not yet known)."""
    if adapter.num_classes is None:
        adapter.predict(images[:1])
    assert adapter.num_classes is not None
    return adapter.num_classes


def pixel_model(adapter: TensorFlowAdapter, images: np.ndarray) -> keras.Model:
    """A functional Keras model: user pixels shaped like ``images`` to per-class targets.

    Built once per adapter and image shape, so tf-explain's ``tf.function`` s, which trace
    once per model object, are not retraced on every call.
    """
    shape = tuple(int(d) for d in images.shape[1:])
    models = _PIXEL_MODELS.setdefault(adapter, {})
    if shape not in models:
        k = n_classes(adapter, images)  # also builds a subclassed model's weights
        pixels = keras.Input(shape=shape, dtype="float32", name="pixels")
        scores = PixelScores(adapter._compiled, adapter.target, k)(pixels)
        models[shape] = keras.Model(pixels, scores, name="imacs_pixel_scores")
    return models[shape]


def graph_model(adapter: TensorFlowAdapter, images: np.ndarray, by: str) -> keras.Model:
    """The user's own Keras graph, ending in the per-class target scores.

    For helpers that reach inner layers by name (GradCAM): its layers are the user's
    layers, its input the model's (preprocessed) input; feed it :func:`model_input`.
    Functional and Sequential models only: subclassed models and SavedModels have no
    graph whose layers can be reached.
    """
    graph_input = adapter._graph_input
    if graph_input is None:
        raise MissingCapabilityError(
            f"{by} reaches an inner layer through the model's Keras graph (model.inputs and "
            f"layer.output), which only functional and Sequential Keras models have; this "
            f"model is a {type(adapter.model).__qualname__}: use the built-in 'grad-cam', or "
            "rebuild the model with the functional API"
        )
    outputs = single_output(adapter._graph_output, adapter.output_key)
    scores = TargetScores(adapter.target, n_classes(adapter, images))(outputs)
    return keras.Model(graph_input, scores, name="imacs_target_scores")


def model_input(adapter: TensorFlowAdapter, images: np.ndarray) -> tf.Tensor:
    """User pixels as the model takes them: preprocessed, laid out, cast."""
    return adapter._compiled.model_input(tf.constant(images))


def class_chunks(targets: np.ndarray, size: int) -> Iterator[tuple[int, np.ndarray]]:
    """``(class, indices)``: the images of each target class, ``size`` at a time.

    tf-explain explains one class per call, so each call holds images of one class.
    """
    for k in np.unique(targets):
        indices = np.flatnonzero(targets == k)
        for start in range(0, len(indices), size):
            yield int(k), indices[start : start + size]


@contextlib.contextmanager
def numpy_seeded(seed: int, image: np.ndarray) -> Iterator[None]:
    """Seed NumPy's global generator for one image; restore it after.

    tf-explain draws SmoothGrad's noise from ``np.random``; seeding from ``seed`` and the
    image's content (:func:`imacs.attribution.seeds.image_entropy`) makes an image's noise
    independent of the batch it comes in and of its place in it.
    """
    value = int(np.random.SeedSequence([seed, image_entropy(image)]).generate_state(1)[0])
    # tf-explain draws from NumPy's legacy global generator, so that is the one to seed.
    state = np.random.get_state()  # noqa: NPY002
    np.random.seed(value)  # noqa: NPY002
    try:
        yield
    finally:
        np.random.set_state(state)  # noqa: NPY002


@contextlib.contextmanager
def quiet_predict() -> Iterator[None]:
    """Keras ``predict`` without its progress bar (tf-explain passes no ``verbose``)."""
    interactive = keras.config.is_interactive_logging_enabled()
    keras.config.disable_interactive_logging()
    try:
        yield
    finally:
        if interactive:
            keras.config.enable_interactive_logging()
