"""Keras 3 models and TensorFlow SavedModels behind the imacs model-adapter contract.

This module imports TensorFlow only when an adapter is built: imacs registers every
installed adapter class at start-up, and PyTorch users should not pay for TensorFlow.
"""

from __future__ import annotations

import difflib
import inspect
import os
from typing import TYPE_CHECKING, Any

import numpy as np

from imacs.adapters.base import ModelAdapter, TargetSpec, fingerprint_arrays
from imacs.adapters.options import check_bool
from imacs.adapters.preprocessing import Preprocessing
from imacs.adapters.randomisation import (
    new_parameters,
    output_first_shape,
    to_channel_last_kernel,
)
from imacs.adapters.surrogate import check_smooth_surrogate
from imacs.errors import InvalidInputError

if TYPE_CHECKING:
    from imacs_tensorflow.compiled import CompiledModel


class TensorFlowAdapter(ModelAdapter):
    """A Keras 3 model, or a callable TensorFlow object such as a loaded SavedModel.

    Gradients are taken with ``tf.GradientTape`` inside ``tf.function`` s traced once per
    adapter, with respect to the pixels the user passes: preprocessing and layout changes
    run inside the differentiated graph.

    Parameters
    ----------
    model:
        A ``keras.Model`` (functional, Sequential or subclassed; called with
        ``training=False``), or a TensorFlow object to call: the root object
        ``tf.saved_model.load`` returns, a ``tf.Module``, a ``tf.function`` or a
        ``ConcreteFunction``. Files are opened by :meth:`load`.
    preprocessing:
        An ``imacs.Preprocessing``, a dict of its fields, or ``None``: applied inside the
        graph, so attributions are with respect to the user's pixels.
    channels_first:
        The model takes ``(N, C, H, W)``: images are transposed inside the call, and its
        4-D layer activations are returned channel-last.
    target:
        ``"logit"``, ``"probability"`` (softmax), ``"log_probability"``, or a function
        ``(outputs, targets) -> (N,)`` written with TensorFlow operations.
    batch_size:
        The most images per model call when the caller does not say; ``None``: no limit.
    endpoint:
        For SavedModels and ``tf.Module`` s: the function or signature to call. By
        default ``serve`` (Keras's ``model.export``), then the ``serving_default``
        signature, then the object itself.
    output_key:
        For a model with several outputs: the dict key or list index of the ``(N, K)``
        class scores to explain.
    smooth_surrogate:
        Take gradients through a clone of a functional or Sequential Keras model with its
        ReLUs as Softplus(beta) and ``MaxPooling2D`` as LogSumExp pooling: ``{"beta": 10}``
        (temperature ``1 / beta``), ``{"beta": 10, "temperature": 0.05}``, a number (beta)
        or ``True``. ``predict`` and ``scores`` stay the model's own; see
        :mod:`imacs.adapters.surrogate`.

    Capabilities: ``"gradients"`` and ``"vjp"`` (:meth:`output_vjp`) always; ``"layers"``,
    ``"embedding"``, ``"randomise"`` (:meth:`randomised_copy`) and ``"injection"``
    (:meth:`injected_gradients`, through a sub-model from the layer's output) for
    functional and Sequential Keras models, whose inner layers can be reached through
    their graph.
    """

    name = "tensorflow"
    framework = "tensorflow"

    def __init__(
        self,
        model: Any,
        *,
        preprocessing: Preprocessing | dict[str, Any] | None = None,
        channels_first: bool = False,
        target: TargetSpec = "logit",
        batch_size: int | None = None,
        endpoint: str | None = None,
        output_key: str | int | None = None,
        smooth_surrogate: dict[str, float] | float | bool | None = None,
    ):
        super().__init__(target=target, batch_size=batch_size)
        from imacs_tensorflow import inspection
        from imacs_tensorflow.compiled import CompiledModel, single_output

        inspection.require_tensorflow_backend()
        if not isinstance(channels_first, bool):
            raise InvalidInputError(
                f"expected channels_first True or False; got {channels_first!r}"
            )
        self.model = model
        self.preprocessing = Preprocessing.coerce(preprocessing)
        self.channels_first = channels_first
        self.endpoint = endpoint
        self.output_key = output_key
        #: The file the model was loaded from, when :meth:`load` opened one.
        self.source: str | None = None
        # The digest of a loaded SavedModel's saved_model.pb: its computation, stable
        # across reloads (the in-memory graph's function names are not).
        self._saved_graph_digest: str | None = None

        self._call, self._endpoint_name = inspection.resolve_endpoint(model, endpoint)
        model_shape, input_dtype = inspection.declared_input(model, self._call)
        image_shape = self._image_layout(model_shape)
        if image_shape is not None and None not in image_shape:
            self._image_shape = image_shape
        if image_shape is not None and image_shape[-1] is not None:
            self.preprocessing.check_channels(image_shape[-1])

        def compiled(call: Any) -> CompiledModel:
            return CompiledModel(
                call,
                keras_model=inspection.is_keras_model(model),
                preprocessing=self.preprocessing,
                channels_first=channels_first,
                target=self.target,
                output_key=output_key,
                image_shape=image_shape,
                input_dtype=input_dtype,
            )

        self._compiled: CompiledModel = compiled(self._call)

        # Functional and Sequential models expose their graph: inner layers are reachable.
        self._graph_input = inspection.graph_input(model)
        self._graph_output: Any = None
        self._layer_outputs: dict[str, Any] = {}
        self._layer_functions: dict[tuple[str, str], Any] = {}
        capabilities = {"gradients", "vjp"}
        if self._graph_input is not None:
            self._graph_output = inspection.graph_output(model)
            scores = single_output(self._graph_output, output_key)  # refuses several heads now
            if len(scores.shape) == 2 and scores.shape[1] is not None:
                self._num_classes = int(scores.shape[1])
            self._layer_outputs = inspection.layer_outputs(model)
            capabilities.update({"layers", "randomise", "injection"})
            if inspection.is_keras_model(model):
                capabilities.add("geometry")
            if self.default_layer() is not None:
                capabilities.add("embedding")
        self.capabilities = frozenset(capabilities)

        # Gradients, and layer gradients, are taken through the smooth surrogate if asked.
        self.smooth_surrogate = check_smooth_surrogate(smooth_surrogate)
        #: the model gradients are taken through: the model, or its smooth surrogate
        self.gradient_model = model
        self._gradient_compiled = self._compiled
        self._gradient_graph = (self._graph_input, self._graph_output, self._layer_outputs)
        if self.smooth_surrogate is not None:
            if self._graph_input is None:
                raise InvalidInputError(
                    "smooth_surrogate needs a functional or Sequential Keras model, whose "
                    f"layers can be replaced; got a {inspection.class_label(model)}: leave "
                    "smooth_surrogate out"
                )
            from imacs_tensorflow.surrogate import smooth_surrogate as build_smooth_surrogate

            self.gradient_model = build_smooth_surrogate(model, **self.smooth_surrogate)
            call, _ = inspection.resolve_endpoint(self.gradient_model, endpoint)
            self._gradient_compiled = compiled(call)
            self._gradient_graph = (
                inspection.graph_input(self.gradient_model),
                inspection.graph_output(self.gradient_model),
                inspection.layer_outputs(self.gradient_model),
            )

    def _image_layout(self, model_shape: tuple[Any, ...] | None) -> tuple[int | None, ...] | None:
        """The user's channel-last ``(H, W, C)`` from the model's declared input shape."""
        if model_shape is None:
            return None
        if len(model_shape) != 4:
            raise InvalidInputError(
                f"expected a model that takes images (N, H, W, C); it declares input shape "
                f"{model_shape}: give it a 4-D image input"
            )
        _, a, b, c = model_shape
        return (b, c, a) if self.channels_first else (a, b, c)

    @classmethod
    def load(
        cls,
        model: Any,
        *,
        trust: bool = False,
        custom_objects: dict[str, Any] | None = None,
        **options: Any,
    ) -> TensorFlowAdapter:
        """An adapter for a model object or a model file.

        Files: ``.keras`` archives (also renamed ones and unzipped archive directories)
        and legacy ``.h5`` files are read by Keras in safe mode, which refuses archives
        that would run arbitrary Python code (``Lambda`` layers); pass ``trust=True`` for
        files from a source you trust. ``custom_objects`` maps names to your own layer
        classes. A SavedModel directory is loaded with ``tf.saved_model.load``, which runs
        operations stored in it, so it needs ``trust=True``; choose its function with
        ``endpoint=`` and its output with ``output_key=``. ``trust`` must be a ``bool``:
        only ``True`` allows code to run. The other ``options`` go to the constructor.
        """
        cls._check_load_options(options)
        options = cls.parse_options({**options, "trust": trust, "custom_objects": custom_objects})
        trust = check_bool("trust", options.pop("trust"))
        custom_objects = options.pop("custom_objects")
        from imacs_tensorflow.loading import is_path, load_file, saved_graph_digest

        if not is_path(model):
            if trust or custom_objects is not None:
                raise InvalidInputError(
                    "trust= and custom_objects= only apply when loading a model file; got a "
                    f"{type(model).__qualname__} object: leave them out"
                )
            return cls(model, **options)
        digest = saved_graph_digest(model)  # read before loading: the file may change later
        adapter = cls(load_file(model, trust=trust, custom_objects=custom_objects), **options)
        adapter.source = os.fspath(model)
        adapter._saved_graph_digest = digest
        return adapter

    @classmethod
    def _check_load_options(cls, options: dict[str, Any]) -> None:
        accepted = [
            name
            for name in inspect.signature(cls.__init__).parameters
            if name not in ("self", "model")
        ] + ["trust", "custom_objects"]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            hints = [
                f"{name!r} -> {close[0]!r}"
                for name in unknown
                if (close := difflib.get_close_matches(name, accepted, n=1))
            ]
            hint = f" (did you mean {', '.join(hints)}?)" if hints else ""
            raise InvalidInputError(
                f"adapter {cls.name!r} does not take option(s) {', '.join(unknown)}{hint}; it "
                f"takes: {', '.join(accepted)}"
            )

    # -- the contract --------------------------------------------------------------------

    def _predict(self, images: np.ndarray) -> np.ndarray:
        self._compiled.build(images)
        return self._compiled.predict(images).numpy()

    def _scores(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        self._compiled.build(images)
        return self._compiled.scores(images, targets).numpy()

    def _value_and_gradients(
        self, images: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        self._gradient_compiled.build(images)
        scores, grads = self._gradient_compiled.value_and_gradients(images, targets)
        return scores.numpy(), grads.numpy()

    def _check_images(self, images: Any) -> np.ndarray:
        x = super()._check_images(images)
        self.preprocessing.check_channels(x.shape[-1])
        return x

    def fingerprint(self) -> str:
        """SHA-256 of the weights, the architecture, preprocessing, target and layout.

        Layer names are made positional first, so building the same model twice gives
        one fingerprint. A target function enters by its ``repr``, which differs between
        processes: results cached for it are not reused by a later session.
        """
        from imacs_tensorflow import inspection

        arrays, variable_names = inspection.weight_arrays(self.model, self._call)
        return fingerprint_arrays(
            arrays,
            self.name,
            self._saved_graph_digest or inspection.architecture(self.model, self._call),
            variable_names,
            self._endpoint_name,
            self.output_key,
            self.preprocessing.as_dict(),
            self.target if isinstance(self.target, str) else repr(self.target),
            self.channels_first,
            # only when set, so that fingerprints of adapters without it stay as they were
            *([("smooth_surrogate", self.smooth_surrogate)] if self.smooth_surrogate else []),
        )

    def describe(self) -> dict[str, Any]:
        """The base description plus model class, parameter count, input and preprocessing."""
        from imacs_tensorflow import inspection

        info = super().describe()
        info.update(
            model_class=inspection.class_label(self.model),
            source=self.source,
            endpoint=self._endpoint_name,
            parameters=inspection.parameter_count(self.model, self._call),
            input_shape=list(self._image_shape) if self._image_shape is not None else None,
            channels_first=self.channels_first,
            preprocessing=self.preprocessing.as_dict(),
            smooth_surrogate=self.smooth_surrogate,
        )
        return info

    # -- capabilities: layers and embedding ----------------------------------------------

    def default_layer(self, images: Any = None) -> str | None:
        """The last layer with a spatial (4-D) output: what ``embed`` and Grad-CAM use."""
        spatial = [name for name, t in self._layer_outputs.items() if len(t.shape) == 4]
        return spatial[-1] if spatial else None

    def layer_geometry(self, size: tuple[int, int]) -> list[dict[str, Any]]:
        """Every 2-D convolution and pooling on ``size`` images, in graph order.

        Read from a clone of the Keras model on an input of that size, without running
        it; see :meth:`imacs.adapters.base.ModelAdapter.layer_geometry` for the fields.
        """
        self.require("geometry", by="layer_geometry()")
        from imacs_tensorflow.geometry import layer_geometry

        channels = self._image_shape[-1] if self._image_shape is not None else None
        if channels is None:
            declared = self._graph_input.shape[1 if self.channels_first else -1]
            channels = int(declared or 3)
        return layer_geometry(self.model, size, channels, channels_first=self.channels_first)

    def layer_names(self) -> list[str]:
        """Names of the layers ``layer_gradients`` and ``embed`` accept, in graph order."""
        self.require("layers", by="layer_names()")
        return list(self._layer_outputs)

    def layer_gradients(
        self, images: Any, targets: Any, layer: str, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A layer's channel-last activations and the target score's gradients w.r.t. them."""
        self.require("layers", by="layer_gradients()")
        function = self._layer_function(layer, "gradients")
        x, t = self._check_images_and_targets(images, targets)
        activations, gradients = [], []
        for s in self._slices(x, batch_size):
            layer_values, layer_grads = function(x[s], t[s])
            activations.append(layer_values.numpy())
            gradients.append(layer_grads.numpy())
        return np.concatenate(activations), np.concatenate(gradients)

    def embed(
        self, images: Any, *, layer: str | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """Channel-last features of ``layer`` (default: the last spatial feature map)."""
        self.require("embedding", by="embed()")
        function = self._layer_function(layer or self.default_layer() or "", "features")
        x = self._check_images(images)
        return np.concatenate([function(x[s]).numpy() for s in self._slices(x, batch_size)])

    def _layer_function(self, layer: str, kind: str) -> Any:
        key = (layer, kind)
        if key not in self._layer_functions:
            if layer not in self._layer_outputs:
                names = list(self._layer_outputs)
                close = difflib.get_close_matches(str(layer), names, n=3)
                hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
                shown = ", ".join(names[:12]) + (
                    f", ... ({len(names)} in all)" if len(names) > 12 else ""
                )
                raise InvalidInputError(
                    f"the model has no layer {layer!r}; its layers are: {shown}.{hint} "
                    "adapter.layer_names() lists them all"
                )
            activations = self._layer_outputs[layer]
            if kind == "gradients":
                graph_input, graph_output, layer_outputs = self._gradient_graph
                function = self._gradient_compiled.layer_gradients_function(
                    graph_input, layer_outputs[layer], graph_output
                )
            else:
                function = self._compiled.features_function(self._graph_input, activations)
            self._layer_functions[key] = function
        return self._layer_functions[key]

    # -- capabilities: injection and vector-Jacobian products ------------------------------

    def _output_vjp(self, images: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self._gradient_compiled.build(images)
        outputs, grads = self._gradient_compiled.output_vjp(images, weights)
        return outputs.numpy(), grads.numpy()

    def _layer_activations(
        self, inputs: np.ndarray, layer: str, from_layer: str | None
    ) -> np.ndarray:
        if from_layer is None:
            return self._layer_function(layer, "features")(inputs).numpy()
        key = (f"{from_layer}\x00{layer}", "between")
        if key not in self._layer_functions:
            self._layer_functions[key] = self._compiled.injected_activations_function(
                self._layer_outputs[from_layer], self._layer_outputs[layer]
            )
        return self._layer_functions[key](inputs).numpy()

    def _injected_gradients(
        self, activations: np.ndarray, targets: np.ndarray, layer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        key = (layer, "injected")
        if key not in self._layer_functions:
            _, graph_output, layer_outputs = self._gradient_graph
            self._layer_functions[key] = self._gradient_compiled.injected_gradients_function(
                layer_outputs[layer], graph_output
            )
        scores, grads = self._layer_functions[key](activations, targets)
        return scores.numpy(), grads.numpy()

    # -- capability: randomised copies -----------------------------------------------------

    def parameter_layers(self) -> list[str]:
        """Layers with weights, in graph order; a nested model's as ``"outer/inner"``."""
        self.require("randomise", by="parameter_layers()")
        return [name for name, _ in _weighted_layers(self.model)]

    def randomised_copy(self, layers: Any, *, seed: int = 0) -> TensorFlowAdapter:
        """A new adapter over a clone of the model with ``layers`` re-initialised.

        The clone (``keras.models.clone_model``) starts with the model's weights. Kernels
        and biases are drawn by :func:`imacs.adapters.randomisation.new_parameters` in
        PyTorch's layout and transposed into Keras's, so a network built alike in both
        frameworks is given the same weights; layers with only vector weights
        (normalisation) are reset to scale 1, shift 0, mean 0 and variance 1.
        """
        import keras

        self.require("randomise", by="randomised_copy()")
        positions = self._checked_layer_positions(layers)
        clone = keras.models.clone_model(self.model)
        clone.set_weights(self.model.get_weights())
        weighted = _weighted_layers(clone)
        for position in positions:
            _, layer = weighted[position]
            variables = list(layer.weights)
            shapes = [output_first_shape(tuple(v.shape)) for v in variables]
            values = new_parameters(shapes, seed=seed, position=position)
            if values is None:
                for variable in variables:
                    identity = "gamma" in variable.name or "variance" in variable.name
                    variable.assign(np.full(variable.shape, 1.0 if identity else 0.0))
                continue
            for variable, value in zip(variables, values, strict=True):
                variable.assign(to_channel_last_kernel(value).astype(variable.dtype))
        copied = TensorFlowAdapter(
            clone,
            preprocessing=self.preprocessing,
            channels_first=self.channels_first,
            target=self.target,
            batch_size=self.batch_size,
            endpoint=self.endpoint,
            output_key=self.output_key,
            smooth_surrogate=self.smooth_surrogate,
        )
        copied.model_name = f"{self.model_name} (randomised)" if self.model_name else None
        return copied


def _weighted_layers(model: Any, prefix: str = "") -> list[tuple[str, Any]]:
    """(name, layer) of every leaf layer with weights, in graph order; nested models opened."""
    found: list[tuple[str, Any]] = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:
            found.extend(_weighted_layers(layer, f"{prefix}{layer.name}/"))
        elif layer.weights:
            found.append((f"{prefix}{layer.name}", layer))
    return found
