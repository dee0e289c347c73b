"""The model-adapter contract: what the framework-free core may ask of any model.

Images cross the boundary as channel-last float32 ``(N, H, W, C)`` arrays in the dataset's
pixel range; the adapter applies the model's own preprocessing inside the framework call,
so every gradient is a gradient with respect to those pixels.

A subclass implements three private methods, each receiving already-validated NumPy
arrays and answering with **one framework call for the whole batch it is given**:

- ``_predict(images) -> (N, K)`` the model's outputs;
- ``_scores(images, targets) -> (N,)`` the target score of each image;
- ``_value_and_gradients(images, targets) -> ((N,), (N, H, W, C))`` the target score and
  its gradient with respect to the input pixels.

The public methods validate once, split work into chunks of at most ``batch_size``
images, and check every answer's shape, so all adapters fail the same clear way. Results
do not depend on ``batch_size`` beyond float32 rounding (CPU convolution kernels differ
by batch size in the last bits).

Optional capabilities are declared in ``capabilities``:

- ``"layers"``: ``layer_names()``, ``default_layer(images)`` and
  ``layer_gradients(images, targets, layer)`` (a layer's channel-last activations and the
  target score's gradient with respect to them);
- ``"geometry"``: ``layer_geometry(size)`` (every convolution and pooling layer with the
  input size it sees when the model is given ``size`` images, its kernel, stride,
  padding and dilation; what :mod:`imacs.spatial.padding` checks for uneven padding);
- ``"embedding"``: ``embed(images, layer=None)`` (channel-last features of an inner layer);
- ``"randomise"``: ``parameter_layers()`` (the layers that hold parameters, input to
  output) and ``randomised_copy(layers, seed=)`` (a new adapter over a copy of the model
  with those layers re-initialised, the original untouched), for the model-parameter
  randomisation test (Adebayo et al., NeurIPS 2018);
- ``"injection"``: ``layer_activations(inputs, layer, from_layer=None)`` (a layer's
  channel-last activations, from images or from activations injected at an earlier layer)
  and ``injected_gradients(activations, targets, layer)`` (run the rest of the network
  from activations given at ``layer`` and return the target scores and their gradients
  with respect to those activations), each batched; for methods that integrate along
  paths through inner layers (DIX, IIA). Injection is defined at layers whose output is
  a cut of the network, which every later layer reaches only through that output;
- ``"vjp"``: ``output_vjp(images, weights)`` (the model's outputs ``(N, K)`` and the
  gradient with respect to the input pixels of ``sum_k weights[n, k] * outputs[n, k]``
  for each image), so a method can differentiate any loss of the outputs (LTX's
  cross-entropy) without writing framework code.

Adapters may also offer ``smooth_surrogate={"beta": 10}``: gradients (and so every
gradient-based attribution) are then taken through a copy of the model whose ReLUs are
Softplus(beta) and whose max-pooling is LogSumExp pooling, while ``predict`` and ``scores``
stay the original model's (Kokhlikyan et al., arXiv 2106.07475). ``smooth_surrogate``
is then set on the adapter; see :mod:`imacs.adapters.surrogate`.

An adapter that must run in another process (an executor's worker, :mod:`imacs-ray`) is
loaded there again from :meth:`ModelAdapter.recipe`: what ``imacs.load_model`` was given
(a file, or a state dict and a factory) and the load options. ``imacs.load_model`` records
it; an adapter around an in-memory model has none (:mod:`imacs.adapters.recipe`).
"""

from __future__ import annotations

import abc
import hashlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from typing import Any, ClassVar

import numpy as np

from imacs.adapters.options import convert_options, option_types
from imacs.adapters.recipe import ModelRecipe
from imacs.errors import InvalidInputError, MissingCapabilityError
from imacs.images import as_image_batch, as_targets

#: Named target functions every adapter understands. A framework-native callable
#: ``(outputs, targets) -> (N,)`` may be given instead.
TARGET_NAMES = ("logit", "probability", "log_probability")

TargetSpec = str | Callable[..., Any]


def check_target_spec(target: TargetSpec) -> TargetSpec:
    """Accept a target name from ``TARGET_NAMES`` or a callable."""
    if callable(target) or target in TARGET_NAMES:
        return target
    raise InvalidInputError(
        f"unknown target {target!r}: expected one of {', '.join(TARGET_NAMES)}, or a "
        "function (outputs, targets) -> one score per image written in the model's framework"
    )


def fingerprint_arrays(arrays: Iterable[np.ndarray], *extra: object) -> str:
    """A SHA-256 hex digest of array bytes, shapes and dtypes plus any extra values."""
    digest = hashlib.sha256()
    for array in arrays:
        array = np.ascontiguousarray(array)
        digest.update(str((array.shape, array.dtype.str)).encode())
        digest.update(array.tobytes())
    for value in extra:
        digest.update(repr(value).encode())
    return digest.hexdigest()


def check_options(function: Callable[..., Any], options: dict[str, Any], who: str) -> None:
    """Raise a clear error if ``options`` holds keywords ``function`` does not accept."""
    parameters = inspect.signature(function).parameters
    if any(p.kind is p.VAR_KEYWORD for p in parameters.values()):
        return
    accepted = [
        name
        for name, p in parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in ("self", "model")
    ]
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise InvalidInputError(
            f"{who} does not take option(s) {', '.join(unknown)}; it takes: "
            f"{', '.join(accepted) or 'no options'}"
        )


def _chunks(n: int, batch_size: int | None) -> Iterator[slice]:
    step = n if batch_size is None else batch_size
    for start in range(0, n, step):
        yield slice(start, min(start + step, n))


def _check_batch_size(batch_size: int | None) -> int | None:
    if batch_size is not None and (not isinstance(batch_size, int) or batch_size < 1):
        raise InvalidInputError(f"expected batch_size to be a positive int; got {batch_size!r}")
    return batch_size


class ModelAdapter(abc.ABC):
    """A model behind the framework-free contract. Subclass it to support a framework.

    Parameters
    ----------
    target:
        What a gradient is taken of: ``"logit"`` (default), ``"probability"``,
        ``"log_probability"``, or a framework-native function ``(outputs, targets)``
        returning one score per image.
    batch_size:
        The most images sent to the model in one call when the caller does not say.
        ``None`` sends whatever it is given in one call.

    Besides the batch size, a call carries at most :attr:`call_pixels` pixels (images
    times height times width) when an adapter sets it: larger calls are split. A
    framework adapter sets it where a model's passes cost less per image in smaller calls
    (the PyTorch adapter on the CPU, whose activations then stay in the processor's
    caches). Each image's result is the same either way, up to float rounding.
    """

    #: Registry name of the adapter kind ("torch", "tensorflow", ...).
    name: ClassVar[str] = ""
    #: The framework the adapter drives, for reports.
    framework: ClassVar[str] = ""
    #: What this adapter can do beyond ``predict`` and ``scores``: ``"gradients"`` (every
    #: differentiable model), ``"layers"``, ``"embedding"``, ``"geometry"``,
    #: ``"randomise"``, ``"injection"``, ``"vjp"`` (see the module docstring).
    capabilities: frozenset[str] = frozenset({"gradients"})
    #: The model's own name, for reports and tables ("resnet-2024"); set by
    #: ``imacs.load_model(..., name=...)``. Not part of the fingerprint: renaming a model
    #: reuses its stored results.
    model_name: str | None = None
    #: The Softplus beta and LogSumExp temperature gradients are taken with, when the
    #: adapter computes them on a smooth surrogate of the model; ``None``: the model itself.
    smooth_surrogate: dict[str, float] | None = None
    #: What loads this adapter again in another process; set by ``imacs.load_model`` when
    #: it loads a file or a state dict. Read it through :meth:`recipe`.
    _recipe: ModelRecipe | None = None
    #: The most pixels (images x height x width) one framework call carries; ``None``: no
    #: limit beyond the batch size.
    call_pixels: int | None = None

    def __init__(self, *, target: TargetSpec = "logit", batch_size: int | None = None):
        self.target = check_target_spec(target)
        self.batch_size = _check_batch_size(batch_size)
        self._num_classes: int | None = None
        self._image_shape: tuple[int, int, int] | None = None

    @classmethod
    def load(cls, model: Any, **options: Any) -> ModelAdapter:
        """Build an adapter for ``model`` (an object or a path) with keyword ``options``.

        ``imacs.load_model`` calls this for the adapter a plugin chose. The default passes
        ``model`` and the options to the constructor; adapters that read files override it,
        and start by reading their options with :meth:`parse_options`.
        """
        options = cls.parse_options(options)
        check_options(cls.__init__, options, f"adapter {cls.name!r}")
        return cls(model, **options)  # type: ignore[call-arg]

    @classmethod
    def option_types(cls) -> dict[str, Any]:
        """Each option the adapter takes, with the type its ``__init__`` or ``load`` declares."""
        return option_types(cls.__init__, cls.load)

    @classmethod
    def parse_options(cls, options: dict[str, Any]) -> dict[str, Any]:
        """``options`` with command-line text read as the declared types, and bools checked.

        Text typed on the command line arrives as :class:`~imacs.adapters.options.OptionText`
        and is converted (``trust=no`` becomes ``False``); typed values are checked, so an
        option declared ``bool``, such as ``trust``, refuses anything but ``True`` or
        ``False``. Raises :class:`~imacs.errors.InvalidInputError` saying what was expected.
        """
        return convert_options(options, cls.option_types())

    def recipe(self) -> ModelRecipe | None:
        """What loads this model again in another process, or ``None`` if nothing can.

        Executors that run tasks in other processes (``executor="ray"``) send the recipe,
        never the model: the worker loads the model once from it and checks that the
        fingerprint is the same. ``imacs.load_model`` records the recipe when it loads a
        model file or a state dict, with its load options; an adapter built around an
        in-memory model object has none. Override it to rebuild an adapter another way.
        """
        return self._recipe

    # -- what a framework adapter implements -------------------------------------------

    @abc.abstractmethod
    def _predict(self, images: np.ndarray) -> Any:
        """Outputs ``(N, K)`` for validated images, in one framework call."""

    @abc.abstractmethod
    def _scores(self, images: np.ndarray, targets: np.ndarray) -> Any:
        """Target scores ``(N,)`` for validated images and targets, in one call."""

    @abc.abstractmethod
    def _value_and_gradients(self, images: np.ndarray, targets: np.ndarray) -> tuple[Any, Any]:
        """Target scores ``(N,)`` and their input gradients ``(N, H, W, C)``, in one call."""

    @abc.abstractmethod
    def fingerprint(self) -> str:
        """A digest that changes when the weights, preprocessing or target change.

        Cached attributions are keyed on it, so two adapters with equal fingerprints must
        compute the same function.
        """

    def describe(self) -> dict[str, Any]:
        """What a report shows about the model; adapters add their own details."""
        described: dict[str, Any] = {"name": self.model_name} if self.model_name else {}
        return described | {
            "adapter": self.name,
            "framework": self.framework,
            "target": self.target if isinstance(self.target, str) else repr(self.target),
            "num_classes": self._num_classes,
            "capabilities": sorted(self.capabilities),
        }

    # -- the public, validated, batched contract ---------------------------------------

    @property
    def num_classes(self) -> int | None:
        """The number of model outputs, known after the first call (or given up front)."""
        return self._num_classes

    def predict(self, images: Any, *, batch_size: int | None = None) -> np.ndarray:
        """The model's outputs ``(N, K)`` as float32."""
        x = self._check_images(images)
        outputs = [
            self._checked_outputs(self._predict(x[s]), x[s]) for s in self._slices(x, batch_size)
        ]
        return np.concatenate(outputs)

    def scores(self, images: Any, targets: Any, *, batch_size: int | None = None) -> np.ndarray:
        """The target score of each image ``(N,)``: what gradients are taken of."""
        x, t = self._check_images_and_targets(images, targets)
        parts = []
        for s in self._slices(x, batch_size):
            parts.append(self._checked_scores(self._scores(x[s], t[s]), s.stop - s.start))
        return np.concatenate(parts)

    def value_and_gradients(
        self, images: Any, targets: Any, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Target scores ``(N,)`` and their gradients w.r.t. the input pixels ``(N, H, W, C)``."""
        self.require("gradients", by="value_and_gradients()")
        x, t = self._check_images_and_targets(images, targets)
        values, grads = [], []
        for s in self._slices(x, batch_size):
            value, grad = self._value_and_gradients(x[s], t[s])
            values.append(self._checked_scores(value, s.stop - s.start))
            grad = np.asarray(grad, dtype=np.float32)
            if grad.shape != x[s].shape:
                raise InvalidInputError(
                    f"adapter {self.name!r} returned gradients of shape {grad.shape} for "
                    f"images of shape {x[s].shape}; they must match"
                )
            grads.append(grad)
        return np.concatenate(values), np.concatenate(grads)

    def gradients(self, images: Any, targets: Any, *, batch_size: int | None = None) -> np.ndarray:
        """Gradients of the target scores w.r.t. the input pixels, ``(N, H, W, C)`` float32."""
        return self.value_and_gradients(images, targets, batch_size=batch_size)[1]

    def require(self, capability: str, *, by: str) -> None:
        """Raise a clear error if this adapter lacks ``capability``, needed ``by`` someone."""
        if capability not in self.capabilities:
            offered = ", ".join(sorted(self.capabilities)) or "only predict and scores"
            raise MissingCapabilityError(
                f"{by} needs the {capability!r} capability, which adapter {self.name!r} does "
                f"not provide (it provides: {offered}); use an adapter that exposes it, such "
                "as the torch or tensorflow adapter on a model with named layers"
            )

    # -- optional capabilities: overridden by adapters that declare them ----------------

    def layer_names(self) -> list[str]:
        """Names accepted by ``layer_gradients`` and ``embed`` (capability ``layers``)."""
        self.require("layers", by="layer_names()")
        raise NotImplementedError

    def layer_gradients(
        self, images: Any, targets: Any, layer: str, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A layer's channel-last activations and the target score's gradients w.r.t. them."""
        self.require("layers", by="layer_gradients()")
        raise NotImplementedError

    def default_layer(self, images: Any) -> str | None:
        """The layer used when none is named (``embed``, Grad-CAM), for images like ``images``.

        Adapters with layers answer the last layer whose output is a spatial feature map;
        ``None`` means the adapter cannot tell, and the caller must ask for a layer name.
        """
        return None

    def layer_geometry(self, size: tuple[int, int]) -> list[dict[str, Any]]:
        """Each convolution and pooling layer at input size ``size`` (capability ``geometry``).

        One dict per layer, in the order the layers run: ``name``, ``type`` (the layer's
        class), ``input_size`` ``(h, w)`` that the layer receives when the model is given
        images of ``size`` ``(height, width)``, ``kernel``, ``stride`` and ``dilation``
        as ``(rows, columns)`` pairs, ``padding``: a ``(rows, columns)`` pair, each the
        padding on both sides of that axis or a ``(before, after)`` pair, or
        ``"same"``/``"valid"`` as Keras defines them; and ``ceil_mode`` for pooling that
        rounds up. Raises :class:`~imacs.errors.InvalidInputError` when the model cannot
        take ``size``.
        """
        self.require("geometry", by="layer_geometry()")
        raise NotImplementedError

    def embed(
        self, images: Any, *, layer: str | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """Channel-last features of an inner layer (capability ``embedding``)."""
        self.require("embedding", by="embed()")
        raise NotImplementedError

    def parameter_layers(self) -> list[str]:
        """Names of the layers that hold parameters, input to output (capability ``randomise``).

        These are the names :meth:`randomised_copy` accepts; the cascading randomisation
        test re-initialises them from the last (the logits) backwards.
        """
        self.require("randomise", by="parameter_layers()")
        raise NotImplementedError

    def randomised_copy(self, layers: Iterable[str], *, seed: int = 0) -> ModelAdapter:
        """A new adapter over a copy of the model with ``layers`` re-initialised.

        Every other setting (preprocessing, target, batch size, surrogate) is kept, and
        the original model is not touched. Each layer's new parameters depend only on
        ``seed`` and the layer's position in :meth:`parameter_layers`, drawn with NumPy by
        :func:`imacs.adapters.randomisation.new_parameters`, so the cascading test's steps
        share the weights of the layers they have in common, and the same network built in
        two frameworks is given the same new weights.
        """
        self.require("randomise", by="randomised_copy()")
        raise NotImplementedError

    def layer_activations(
        self,
        inputs: Any,
        layer: str,
        *,
        from_layer: str | None = None,
        batch_size: int | None = None,
    ) -> np.ndarray:
        """Channel-last activations of ``layer`` (capability ``injection``).

        ``inputs`` are images ``(N, H, W, C)`` when ``from_layer`` is ``None``, otherwise
        channel-last activations of ``from_layer``, injected there in place of its output
        (``from_layer`` must come before ``layer``). One forward pass per input, of the
        part of the network between the two.
        """
        self.require("injection", by="layer_activations()")
        self._check_layer_name(layer)
        if from_layer is None:
            x = self._check_images(inputs)
        else:
            self._check_layer_name(from_layer)
            x = self._check_activations(inputs)
        parts = [
            np.asarray(self._layer_activations(x[s], layer, from_layer), dtype=np.float32)
            for s in self._slices(x, batch_size)
        ]
        return np.concatenate(parts)

    def injected_gradients(
        self,
        activations: Any,
        targets: Any,
        layer: str,
        *,
        batch_size: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Target scores ``(N,)`` of the network run on from ``activations`` given at ``layer``,
        and their gradients with respect to those activations (capability ``injection``).

        ``activations`` are channel-last, shaped as :meth:`layer_activations` returns them
        for ``layer``; the rest of the network runs forward and backward from there (one
        pass of the tail per activation), the layers before ``layer`` do not run per input.
        """
        self.require("injection", by="injected_gradients()")
        self._check_layer_name(layer)
        a = self._check_activations(activations)
        t = self._check_layer_targets(targets, len(a))
        values, grads = [], []
        for s in self._slices(a, batch_size):
            value, grad = self._injected_gradients(a[s], t[s], layer)
            values.append(self._checked_scores(value, s.stop - s.start))
            grad = np.asarray(grad, dtype=np.float32)
            if grad.shape != a[s].shape:
                raise InvalidInputError(
                    f"adapter {self.name!r} returned injected gradients of shape {grad.shape} "
                    f"for activations of shape {a[s].shape}; they must match"
                )
            grads.append(grad)
        return np.concatenate(values), np.concatenate(grads)

    def output_vjp(
        self, images: Any, weights: Any, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """Outputs ``(N, K)`` and the input gradients of ``sum_k weights[n, k] * outputs[n, k]``.

        A vector-Jacobian product of the model's raw outputs (what :meth:`predict`
        returns, whatever the adapter's ``target``) with one weight vector per image, for
        methods that differentiate a loss of the outputs: for a loss ``l(outputs)``, pass
        ``weights = dl/doutputs`` (capability ``vjp``). One forward and backward pass.
        """
        self.require("vjp", by="output_vjp()")
        x = self._check_images(images)
        if self._num_classes is None:
            self.predict(x[:1])
        w = np.asarray(weights, dtype=np.float32)
        if w.shape != (len(x), self._num_classes):
            raise InvalidInputError(
                f"expected weights of shape (N, K) = ({len(x)}, {self._num_classes}), one "
                f"weight per image and model output; got {w.shape}"
            )
        if not np.isfinite(w).all():
            raise InvalidInputError("the weights contain NaN or infinity")
        outputs, grads = [], []
        for s in self._slices(x, batch_size):
            out, grad = self._output_vjp(x[s], w[s])
            outputs.append(self._checked_outputs(out, x[s]))
            grad = np.asarray(grad, dtype=np.float32)
            if grad.shape != x[s].shape:
                raise InvalidInputError(
                    f"adapter {self.name!r} returned vjp gradients of shape {grad.shape} for "
                    f"images of shape {x[s].shape}; they must match"
                )
            grads.append(grad)
        return np.concatenate(outputs), np.concatenate(grads)

    def _layer_activations(
        self, inputs: np.ndarray, layer: str, from_layer: str | None
    ) -> np.ndarray:
        """Activations of ``layer`` for one batch, from images or from ``from_layer``."""
        raise NotImplementedError

    def _injected_gradients(
        self, activations: np.ndarray, targets: np.ndarray, layer: str
    ) -> tuple[Any, Any]:
        """Scores and gradients w.r.t. activations injected at ``layer``, for one batch."""
        raise NotImplementedError

    def _output_vjp(self, images: np.ndarray, weights: np.ndarray) -> tuple[Any, Any]:
        """Outputs and the input gradient of ``sum(weights * outputs)`` for one batch."""
        raise NotImplementedError

    def _check_layer_name(self, layer: str) -> None:
        names = self.layer_names()
        if layer not in names:
            import difflib

            close = difflib.get_close_matches(str(layer), names, n=3)
            hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
            raise InvalidInputError(
                f"the model has no layer named {layer!r}.{hint} Its layers are: "
                f"{', '.join(names) or 'none'}"
            )

    @staticmethod
    def _check_activations(activations: Any) -> np.ndarray:
        a = np.asarray(activations)
        if a.ndim < 2 or not np.issubdtype(a.dtype, np.floating):
            raise InvalidInputError(
                "expected activations as a float array with a batch axis, (N, h, w, D) "
                f"channel-last or (N, D); got {a.dtype} of shape {a.shape}: pass what "
                "layer_activations() returns"
            )
        if not np.isfinite(a).all():
            raise InvalidInputError("the activations contain NaN or infinity")
        return np.ascontiguousarray(a, dtype=np.float32)

    def _check_layer_targets(self, targets: Any, n: int) -> np.ndarray:
        return as_targets(targets, n, self._num_classes)

    def _checked_layer_positions(self, layers: Iterable[str]) -> list[int]:
        """Positions of ``layers`` in :meth:`parameter_layers`; raise naming unknown ones."""
        names = self.parameter_layers()
        chosen = [layers] if isinstance(layers, str) else list(layers)
        unknown = [name for name in chosen if name not in names]
        if unknown:
            raise InvalidInputError(
                f"the model has no layer with parameters named {', '.join(map(repr, unknown))}; "
                f"parameter_layers() lists them: {', '.join(names) or 'none'}"
            )
        return sorted({names.index(name) for name in chosen})

    # -- shared checks -------------------------------------------------------------------

    def _slices(self, images: np.ndarray, batch_size: int | None) -> Iterator[slice]:
        size = _check_batch_size(batch_size) or self.batch_size
        if self.call_pixels is not None and images.ndim >= 3:
            per_call = max(1, self.call_pixels // max(1, images.shape[1] * images.shape[2]))
            size = per_call if size is None else min(size, per_call)
        return _chunks(len(images), size)

    def _check_images(self, images: Any) -> np.ndarray:
        x = as_image_batch(images)
        if self._image_shape is not None and x.shape[-1] != self._image_shape[-1]:
            raise InvalidInputError(
                f"model {self.name!r} expects images with {self._image_shape[-1]} channel(s); "
                f"got {x.shape[-1]}: convert the images (e.g. grey to RGB with "
                "np.repeat(images, 3, axis=-1)) to what the model was trained on"
            )
        if self._image_shape is not None and x.shape[1:] != self._image_shape:
            expected = ", ".join(map(str, self._image_shape))
            raise InvalidInputError(
                f"model {self.name!r} expects images of shape (N, {expected}); got {x.shape}: "
                "resize the images to the model's input size"
            )
        return x

    def _check_images_and_targets(self, images: Any, targets: Any) -> tuple[np.ndarray, np.ndarray]:
        x = self._check_images(images)
        if self._num_classes is None:
            self.predict(x[:1])  # learn the number of classes to check targets against
        return x, as_targets(targets, len(x), self._num_classes)

    def _checked_outputs(self, outputs: Any, images: np.ndarray) -> np.ndarray:
        array = np.asarray(outputs)
        if array.ndim != 2 or array.shape[0] != len(images):
            raise InvalidInputError(
                f"expected the model to return scores of shape (N, K) for N={len(images)} "
                f"images; it returned shape {array.shape}: wrap the model so that it returns "
                "one score per class (for example flatten or select the classification head)"
            )
        if self._num_classes is None:
            self._num_classes = int(array.shape[1])
        elif array.shape[1] != self._num_classes:
            raise InvalidInputError(
                f"the model returned {array.shape[1]} outputs per image, after "
                f"{self._num_classes} on an earlier call"
            )
        return array.astype(np.float32, copy=False)

    def _checked_scores(self, scores: Any, n: int) -> np.ndarray:
        array = np.asarray(scores, dtype=np.float32).reshape(-1)
        if array.shape != (n,):
            raise InvalidInputError(
                f"the target function must return one score per image ({n}); it returned "
                f"{array.size} values"
            )
        return array
