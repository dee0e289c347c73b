"""What a Keras model or TensorFlow object tells us about itself.

Its endpoint (what to call), the input it declares, its layers, and what identifies its
computation for the fingerprint. Everything here reads the model; nothing runs it.
"""

from __future__ import annotations

import contextlib
import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from imacs.errors import InvalidInputError, ModelLoadError
from imacs_tensorflow.claims import default_endpoint


def require_tensorflow_backend() -> None:
    """Raise unless Keras runs on TensorFlow: this adapter differentiates with TF's tape."""
    backend = keras.backend.backend()
    if backend != "tensorflow":
        raise ModelLoadError(
            f"the tensorflow adapter needs Keras's TensorFlow backend; Keras is using "
            f"{backend!r}: set the environment variable KERAS_BACKEND=tensorflow before "
            "keras is first imported, or use an adapter for that backend"
        )


def is_keras_model(model: Any) -> bool:
    return isinstance(model, keras.Model)


def resolve_endpoint(model: Any, endpoint: str | None) -> tuple[Callable[..., Any], str | None]:
    """The function to call on an image batch, and its name (``None`` for a Keras model).

    ``endpoint`` names an attribute (``"serve"``) or a signature (``"serving_default"``) of
    a SavedModel or ``tf.Module``; by default ``serve``, then ``serving_default``, then the
    object itself if it is callable.
    """
    if is_keras_model(model):
        if endpoint is not None:
            raise InvalidInputError(
                f"endpoint={endpoint!r} only applies to SavedModels and tf.Module objects; "
                "a Keras model is called directly: leave endpoint out"
            )
        return model, None
    name = endpoint or default_endpoint(model)
    if name is None:
        raise InvalidInputError(
            f"expected a keras.Model or a TensorFlow object with an endpoint to call; got "
            f"{type(model).__qualname__} with no 'serve' function, no 'serving_default' "
            "signature and no __call__: pass endpoint='name' naming the function to call"
        )
    if name == "__call__" and callable(model):
        return model, name
    function = getattr(model, name, None)
    if callable(function):
        return function, name
    signatures = getattr(model, "signatures", None) or {}
    if name in signatures:
        return signatures[name], name
    available = sorted(
        {n for n in dir(model) if not n.startswith("_") and callable(getattr(model, n, None))}
        | set(signatures)
    )
    raise InvalidInputError(
        f"the model has no endpoint {name!r}; its callable attributes and signatures are: "
        f"{', '.join(available) or 'none'}: pass one of them as endpoint="
    )


def graph_input(model: Any) -> Any | None:
    """The single symbolic input of a functional or Sequential Keras model, else None.

    Subclassed models have no symbolic graph, so no layer outputs can be reached.
    """
    if not is_keras_model(model):
        return None
    try:
        inputs = model.inputs
    except (AttributeError, ValueError):  # subclassed, or a Sequential never built
        return None
    if not inputs:
        return None
    if len(inputs) != 1:
        raise InvalidInputError(
            f"expected a model with one image input; this one takes {len(inputs)} inputs "
            f"({', '.join(str(t.shape) for t in inputs)}): wrap it in a model with one input"
        )
    return inputs[0]


def graph_output(model: Any) -> Any:
    """The symbolic output structure of a graph Keras model (a tensor, list or dict)."""
    try:
        return model.output
    except AttributeError:  # a Sequential has no node of its own; it has one output
        return model.outputs[0]


def declared_input(model: Any, function: Callable[..., Any]) -> tuple[tuple[Any, ...] | None, Any]:
    """The input shape ``(None, d1, d2, d3)`` (as the model sees it) and dtype, if declared.

    Shapes come from a Keras model's ``Input``, a signature, or a ``tf.function`` with an
    ``input_signature``; a model that declares nothing gives ``(None, tf.float32)``.
    """
    tensor = graph_input(model)
    if tensor is not None:
        return tuple(tensor.shape), tf.as_dtype(tensor.dtype)
    spec = _signature_input(function)
    if spec is None and function is not model:
        spec = _signature_input(model)
    if spec is None:
        return None, tf.float32
    if spec.shape.rank != 4:
        raise InvalidInputError(
            f"expected a model that takes images (N, H, W, C); its input signature is "
            f"{spec.shape}: export the model with a 4-D image input"
        )
    return tuple(spec.shape.as_list()), spec.dtype


def _signature_input(function: Any) -> tf.TensorSpec | None:
    if isinstance(function, tf.types.experimental.ConcreteFunction):
        args, kwargs = function.structured_input_signature
        specs = [*tf.nest.flatten(args), *tf.nest.flatten(kwargs)]
    else:
        signature = getattr(function, "input_signature", None)
        if signature is None and not isinstance(function, tf.types.experimental.GenericFunction):
            # a tf.Module whose __call__ is a tf.function with an input_signature
            call = function.__call__ if callable(function) else None
            signature = getattr(call, "input_signature", None)
        if signature is None:
            return None
        specs = tf.nest.flatten(signature)
    if len(specs) != 1:
        raise InvalidInputError(
            f"expected an endpoint that takes one image batch; it takes {len(specs)} inputs "
            f"({', '.join(str(s) for s in specs)}): choose another endpoint= or re-export "
            "the model with a single input"
        )
    spec = specs[0]
    return spec if isinstance(spec, tf.TensorSpec) else None


def layer_outputs(model: Any) -> dict[str, Any]:
    """Each named layer's symbolic output in a graph Keras model, in graph order.

    A layer used more than once reports its first use (Keras's ``layer.output``).
    Layers with several outputs are left out: they have no one activation to explain.
    """
    outputs = {}
    for layer in model.layers:
        if isinstance(layer, keras.layers.InputLayer):
            continue
        try:
            output = layer.output
        except (AttributeError, ValueError):
            continue
        if isinstance(output, keras.KerasTensor):
            outputs[layer.name] = output
    return outputs


def weight_arrays(model: Any, function: Callable[..., Any]) -> tuple[list[np.ndarray], list[str]]:
    """The model's weights as arrays, in a stable order, and their names when meaningful.

    Keras weight names embed auto-generated layer names (``dense_3/kernel``), so they are
    left out: the model's configuration, with names made positional, identifies the
    architecture instead (see :func:`architecture`).
    """
    variables = model_variables(model, function)
    names = [] if is_keras_model(model) else [v.name for v in variables]
    return [v.numpy() for v in variables], names


def model_variables(model: Any, function: Callable[..., Any]) -> list[Any]:
    """Every variable the model computes with (Keras: trainable and not), in a stable order."""
    if is_keras_model(model):
        if not model.built:
            raise InvalidInputError(
                "the Keras model has no weights yet (a subclassed model creates them on its "
                "first call): call adapter.predict(images) once, or model.build(input_shape), "
                "before asking for its fingerprint"
            )
        return list(model.weights)
    variables = _tracked_variables(model)
    if variables is None:
        variables = _tracked_variables(function)
    if variables is None:
        raise InvalidInputError(
            f"cannot find the variables of {type(model).__qualname__}, so its fingerprint "
            "could not tell two sets of weights apart: pass a tf.Module, a SavedModel or a "
            "ConcreteFunction, or wrap the function in a tf.Module that owns its variables"
        )
    return variables


def _tracked_variables(obj: Any) -> list[Any] | None:
    if isinstance(obj, tf.types.experimental.ConcreteFunction):
        return list(obj.variables)
    if isinstance(obj, tf.types.experimental.GenericFunction):
        if getattr(obj, "input_signature", None) is None:
            return None
        return list(obj.get_concrete_function().variables)
    variables = getattr(obj, "variables", None)  # tf.Module, a loaded SavedModel's root
    if variables is None or callable(variables):
        return None
    return list(variables)


def class_label(model: Any) -> str:
    """The model's class for reports; a loaded SavedModel's root class has no useful name."""
    module = type(model).__module__
    if module.startswith("tensorflow.python.saved_model"):
        return "SavedModel (tf.saved_model.load)"
    return f"{module}.{type(model).__qualname__}"


def parameter_count(model: Any, function: Callable[..., Any]) -> int | None:
    """How many numbers the model's weights hold, or None if they cannot be found yet."""
    try:
        variables = model_variables(model, function)
    except InvalidInputError:
        return None
    return int(sum(np.prod(v.shape) for v in variables))


def architecture(model: Any, function: Callable[..., Any]) -> str:
    """A description of the computation, for the fingerprint (weights are hashed apart).

    Keras models: their configuration with every layer renamed by position, since
    building the same model twice in one process names its layers apart (``dense``, then
    ``dense_1``). Subclassed models have no complete configuration: their class's source
    stands in for the computation. Other TensorFlow objects: the graph of the endpoint
    (its serialized GraphDef), so two functions over the same variables differ.
    """
    parts: list[Any] = [type(model).__module__, type(model).__qualname__]
    if is_keras_model(model):
        try:
            config = model.get_config()
        except NotImplementedError:
            config = None
        if isinstance(config, dict) and "layers" in config:
            return json.dumps([*parts, _positional_names(config)], sort_keys=True, default=repr)
        parts.append(config)
    else:
        graph = _endpoint_graph(function)
        if graph is not None:
            # Function names in the graph carry per-load counters: the digest is stable
            # for one loaded object, not across reloads (a cache miss, never a false hit).
            digest = hashlib.sha256(graph.SerializeToString(deterministic=True))
            return json.dumps([*parts, digest.hexdigest()])
    with contextlib.suppress(OSError, TypeError):  # classes defined in a notebook cell
        parts.append(inspect.getsource(type(model)))
    return json.dumps(parts, sort_keys=True, default=repr)


def _endpoint_graph(function: Any) -> Any | None:
    if isinstance(function, tf.types.experimental.ConcreteFunction):
        return function.graph.as_graph_def()
    call = function if isinstance(function, tf.types.experimental.GenericFunction) else None
    if call is None and callable(function):
        call = function.__call__  # a tf.Module whose __call__ is a tf.function
    if getattr(call, "input_signature", None) is None:
        return None  # tracing it would need an example input
    return call.get_concrete_function().graph.as_graph_def()  # type: ignore[union-attr]


def _positional_names(config: dict[str, Any]) -> Any:
    names = {config.get("name"): "model"}
    for index, layer in enumerate(config.get("layers", [])):
        name = layer.get("name") or layer.get("config", {}).get("name")
        names[name] = f"layer_{index}"
    return _rename(config, names, key=None)


def _rename(value: Any, names: dict[Any, str], key: str | None) -> Any:
    # Layer names appear as "name" values and as the first item of the references that
    # wire the graph: keras_history [layer, node, tensor], input_layers, output_layers.
    if isinstance(value, dict):
        return {k: _rename(v, names, k) for k, v in value.items()}
    if isinstance(value, list | tuple):
        references = key in ("keras_history", "input_layers", "output_layers")
        if references and value and isinstance(value[0], str):
            return [names.get(value[0], value[0]), *value[1:]]
        return [_rename(v, names, key) for v in value]
    if key == "name" and isinstance(value, str):
        return names.get(value, value)
    return value
