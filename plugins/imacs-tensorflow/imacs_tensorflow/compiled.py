"""The model call, with its preprocessing and target, compiled once into ``tf.function`` s.

Each function takes a whole batch and is traced once per adapter: its ``input_signature``
leaves the batch size open, so batches of any size reuse one graph. Models that declare
no input shape get ``reduce_retracing=True`` instead, which settles on a general trace
after the second shape it sees. Autograph is off, as in Keras's own ``predict``: the
wrapper has no tensor-dependent Python control flow, and errors raised while tracing
(a model with several outputs, say) then reach the user as they were raised.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from imacs.adapters.base import TargetSpec
from imacs.adapters.preprocessing import Preprocessing
from imacs.errors import InvalidInputError

NHWC_TO_NCHW = (0, 3, 1, 2)
NCHW_TO_NHWC = (0, 2, 3, 1)
TARGETS_SPEC = tf.TensorSpec([None], tf.int64, name="targets")


def preprocess(images: tf.Tensor, preprocessing: Preprocessing) -> tf.Tensor:
    """TensorFlow twin of ``Preprocessing.apply``: the same operations in the same order."""
    x = images
    if preprocessing.scale != 1.0:
        x = x * tf.constant(preprocessing.scale, tf.float32)
    if preprocessing.mean is not None:
        x = x - tf.constant(preprocessing.mean, tf.float32)
    if preprocessing.std is not None:
        x = x / tf.constant(preprocessing.std, tf.float32)
    if preprocessing.channel_order == "bgr":
        x = tf.reverse(x, axis=[-1])
    return x


def single_output(outputs: Any, output_key: str | int | None) -> Any:
    """The one ``(N, K)`` output imacs explains, picked from a list or dict if need be.

    Works on symbolic Keras outputs too, so graph models are checked when the adapter is
    built rather than on their first call.
    """
    if isinstance(outputs, Mapping):
        keys = list(outputs)
        if output_key is None and len(keys) == 1:
            return outputs[keys[0]]
        if output_key in outputs:
            return outputs[output_key]
        raise InvalidInputError(
            f"the model returns a dict of {len(keys)} outputs ({', '.join(map(repr, keys))}); "
            "imacs explains one (N, K) tensor of class scores: pass output_key= naming the "
            f"classification output{'' if output_key is None else f' (got {output_key!r})'}"
        )
    if isinstance(outputs, list | tuple):
        if output_key is None and len(outputs) == 1:
            return outputs[0]
        if isinstance(output_key, int) and -len(outputs) <= output_key < len(outputs):
            return outputs[output_key]
        raise InvalidInputError(
            f"the model returns a list of {len(outputs)} outputs; imacs explains one (N, K) "
            "tensor of class scores: pass output_key=<index of the classification head>, or "
            "wrap the model so it returns that head only, e.g. keras.Model(model.inputs, "
            f"model.outputs[i]){'' if output_key is None else f' (got {output_key!r})'}"
        )
    if output_key is not None:
        raise InvalidInputError(
            f"output_key={output_key!r} was given, but the model returns a single tensor: "
            "leave output_key out"
        )
    return outputs


def select_target(outputs: tf.Tensor, targets: tf.Tensor, target: TargetSpec) -> tf.Tensor:
    """One score per image from outputs ``(N, K)``: what gradients are taken of."""
    if callable(target):
        return tf.cast(target(outputs, targets), tf.float32)
    if target == "probability":
        outputs = tf.nn.softmax(outputs, axis=-1)
    elif target == "log_probability":
        outputs = tf.nn.log_softmax(outputs, axis=-1)
    return tf.gather(outputs, targets, axis=1, batch_dims=1)


class CompiledModel:
    """The compiled functions an adapter calls, one graph each for any batch size.

    Parameters
    ----------
    call:
        The Keras model or the endpoint to call on a preprocessed batch.
    keras_model:
        Whether ``call`` is a Keras model (called with ``training=False``).
    image_shape:
        ``(H, W, C)`` of the user's channel-last images, with ``None`` for what the model
        leaves open, or ``None`` if it declares no input at all.
    input_dtype:
        The floating dtype the model takes; the user's float32 pixels are cast to it.
    """

    def __init__(
        self,
        call: Callable[..., Any],
        *,
        keras_model: bool,
        preprocessing: Preprocessing,
        channels_first: bool,
        target: TargetSpec,
        output_key: str | int | None,
        image_shape: tuple[int | None, ...] | None,
        input_dtype: tf.DType,
    ):
        if not input_dtype.is_floating:
            raise InvalidInputError(
                f"expected a model that takes floating-point images; it takes {input_dtype.name}"
                ", which has no gradient: export the model with a float32 input"
            )
        self._call = call
        self._keras_model = keras_model
        self._preprocessing = preprocessing
        self._channels_first = channels_first
        self._target = target
        self._output_key = output_key
        self._input_dtype = input_dtype
        self._images_spec = (
            None
            if image_shape is None
            else tf.TensorSpec([None, *image_shape], tf.float32, name="images")
        )
        self.predict = self.compile(self._outputs)
        self.scores = self.compile(self._scores, with_targets=True)
        self.value_and_gradients = self.compile(self._value_and_gradients, with_targets=True)

    def compile(self, function: Callable[..., Any], *, with_targets: bool = False) -> Any:
        """``function(images[, targets])`` as a tf.function that does not retrace per batch."""
        if self._images_spec is None:
            return tf.function(function, reduce_retracing=True, autograph=False)
        signature = [self._images_spec, TARGETS_SPEC] if with_targets else [self._images_spec]
        return tf.function(function, input_signature=signature, autograph=False)

    def build(self, images: np.ndarray) -> None:
        """Create a subclassed Keras model's weights with one eager call, before tracing.

        Creating variables inside a traced function forces a second trace; building
        first keeps every compiled function at one trace.
        """
        if self._keras_model and not self._call.built:  # type: ignore[attr-defined]
            self._run(self._call, self.model_input(tf.constant(images[:1])))

    # -- the pieces every function shares ------------------------------------------------

    def model_input(self, images: tf.Tensor) -> tf.Tensor:
        """User pixels (N, H, W, C) to what the model takes: preprocessed, laid out, cast."""
        x = preprocess(images, self._preprocessing)
        if self._channels_first:
            x = tf.transpose(x, NHWC_TO_NCHW)
        return tf.cast(x, self._input_dtype)

    def _run(self, function: Callable[..., Any], x: tf.Tensor) -> Any:
        return function(x, training=False) if self._keras_model else function(x)

    def _class_scores(self, outputs: Any) -> tf.Tensor:
        return tf.cast(single_output(outputs, self._output_key), tf.float32)

    def _select(self, outputs: Any, targets: tf.Tensor) -> tf.Tensor:
        return select_target(self._class_scores(outputs), targets, self._target)

    def _channel_last(self, activations: tf.Tensor) -> tf.Tensor:
        # A channels-first model's 4-D feature maps are (N, C, H, W); imacs wants them
        # channel-last like the images.
        activations = tf.cast(activations, tf.float32)
        if self._channels_first and activations.shape.rank == 4:
            return tf.transpose(activations, NCHW_TO_NHWC)
        return activations

    # -- what gets compiled --------------------------------------------------------------

    def _outputs(self, images: tf.Tensor) -> tf.Tensor:
        return self._class_scores(self._run(self._call, self.model_input(images)))

    def _scores(self, images: tf.Tensor, targets: tf.Tensor) -> tf.Tensor:
        return self._select(self._run(self._call, self.model_input(images)), targets)

    def _value_and_gradients(
        self, images: tf.Tensor, targets: tf.Tensor
    ) -> tuple[tf.Tensor, tf.Tensor]:
        with tf.GradientTape() as tape:
            tape.watch(images)
            scores = self._select(self._run(self._call, self.model_input(images)), targets)
        # Images are independent at inference (training=False), so the gradient of the
        # summed scores is each image's own gradient.
        grads = tape.gradient(scores, images, unconnected_gradients=tf.UnconnectedGradients.ZERO)
        return scores, grads

    def layer_gradients_function(self, graph_input: Any, activations: Any, outputs: Any) -> Any:
        """Compiled ``(images, targets) -> (activations, d score / d activations)``.

        ``graph_input``, ``activations`` and ``outputs`` are symbolic tensors of the model's
        Keras graph; one sub-model computes the layer and the outputs in a single pass.
        """
        both = keras.Model(graph_input, [activations, outputs])

        def activations_and_gradients(
            images: tf.Tensor, targets: tf.Tensor
        ) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(images)  # records every op after the input, so any layer is reachable
                layer, out = both(self.model_input(images), training=False)
                scores = self._select(out, targets)
            grads = tape.gradient(scores, layer, unconnected_gradients=tf.UnconnectedGradients.ZERO)
            return self._channel_last(layer), self._channel_last(grads)

        return self.compile(activations_and_gradients, with_targets=True)

    def output_vjp(self, images: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
        """Outputs and the input gradient of ``sum(weights * outputs)`` (compiled lazily)."""
        if not hasattr(self, "_output_vjp"):
            signature = None
            if self._images_spec is not None:
                signature = [self._images_spec, tf.TensorSpec([None, None], tf.float32)]

            def vjp(images: tf.Tensor, weights: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
                with tf.GradientTape() as tape:
                    tape.watch(images)
                    outputs = self._class_scores(self._run(self._call, self.model_input(images)))
                    total = tf.reduce_sum(outputs * weights)
                grads = tape.gradient(
                    total, images, unconnected_gradients=tf.UnconnectedGradients.ZERO
                )
                return outputs, grads

            self._output_vjp = tf.function(
                vjp, input_signature=signature, reduce_retracing=signature is None, autograph=False
            )
        return self._output_vjp(images, weights)

    def _model_layout(self, activations: tf.Tensor, dtype: Any) -> tf.Tensor:
        # injected activations arrive channel-last, like every activation imacs hands out
        if self._channels_first and activations.shape.rank == 4:
            activations = tf.transpose(activations, NHWC_TO_NCHW)
        return tf.cast(activations, dtype)

    def _activation_spec(self, tensor: Any) -> tf.TensorSpec:
        shape = list(tensor.shape[1:])
        if self._channels_first and len(shape) == 3:
            shape = [shape[1], shape[2], shape[0]]
        return tf.TensorSpec([None, *shape], tf.float32, name="activations")

    def injected_activations_function(self, from_tensor: Any, to_tensor: Any) -> Any:
        """Compiled ``activations at one layer -> activations at a later one``.

        The two tensors are symbolic outputs of the model's Keras graph; the sub-model
        between them starts from the first, as Keras builds a model from an inner tensor.
        """
        between = keras.Model(from_tensor, to_tensor)
        dtype = from_tensor.dtype

        def forward(activations: tf.Tensor) -> tf.Tensor:
            inputs = self._model_layout(activations, dtype)
            return self._channel_last(between(inputs, training=False))

        return tf.function(
            forward, input_signature=[self._activation_spec(from_tensor)], autograph=False
        )

    def injected_gradients_function(self, layer_tensor: Any, outputs: Any) -> Any:
        """Compiled ``(activations, targets) -> (scores, d scores / d activations)``.

        The rest of the model runs from ``layer_tensor``'s place in the graph; Keras
        refuses (graph disconnected) when a later layer also reads an earlier tensor.
        """
        try:
            tail = keras.Model(layer_tensor, outputs)
        except ValueError as exc:
            raise InvalidInputError(
                "the rest of the network cannot be run from this layer's output alone "
                f"(Keras: {exc}): a skip connection crosses it; pick a layer between blocks"
            ) from exc
        dtype = layer_tensor.dtype

        def gradients(activations: tf.Tensor, targets: tf.Tensor) -> tuple[tf.Tensor, tf.Tensor]:
            with tf.GradientTape() as tape:
                tape.watch(activations)
                scores = self._select(
                    tail(self._model_layout(activations, dtype), training=False), targets
                )
            grads = tape.gradient(
                scores, activations, unconnected_gradients=tf.UnconnectedGradients.ZERO
            )
            return scores, grads

        signature = [self._activation_spec(layer_tensor), TARGETS_SPEC]
        return tf.function(gradients, input_signature=signature, autograph=False)

    def features_function(self, graph_input: Any, activations: Any) -> Any:
        """Compiled ``images -> activations`` of one layer of the model's Keras graph."""
        sub_model = keras.Model(graph_input, activations)

        def features(images: tf.Tensor) -> tf.Tensor:
            return self._channel_last(sub_model(self.model_input(images), training=False))

        return self.compile(features)
