"""The PyTorch model adapter: an ``nn.Module`` behind the imacs model contract.

Images arrive as channel-last float32 NumPy arrays in the dataset's pixel range. Inside
one differentiable torch call the adapter applies the model's preprocessing, reorders
to channels-first if the module wants it, runs the module and selects the target score,
so gradients are taken with respect to the pixels the user sees.
"""

from __future__ import annotations

import contextlib
import copy
import difflib
import hashlib
import inspect
import os
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from imacs.adapters.base import ModelAdapter, TargetSpec, fingerprint_arrays
from imacs.adapters.options import check_bool
from imacs.adapters.preprocessing import Preprocessing
from imacs.adapters.randomisation import new_parameters
from imacs.adapters.surrogate import check_smooth_surrogate
from imacs.errors import InvalidInputError
from imacs_torch.loading import Factory, module_with_weights, read_model_file
from imacs_torch.surrogate import smooth_surrogate as build_smooth_surrogate


def resolve_device(device: str | torch.device | None) -> torch.device:
    """``device`` as a ``torch.device``; by default the GPU when there is one."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise InvalidInputError(
            f"expected device as 'cpu', 'cuda', 'cuda:1', 'mps' or a torch.device; got {device!r}"
        ) from exc


#: The most pixels one call carries on the CPU by default (``call_pixels="auto"``): 32
#: images of 64x64, 8 of 128x128, 2 of 224x224. Of the limits compared by
#: ``benchmarks/call_size.py`` (two CNNs, 32 to 224 px, 1 to 64 images per call), this
#: one's calls cost the least beyond the cheapest call size per image, in two runs 1.15
#: and 1.29 times at worst, 1.08 and 1.09 on average; calls of 64 cost up to 2.3 times
#: more than its calls, their activations no longer fitting the caches.
CPU_CALL_PIXELS = 131_072


class TorchAdapter(ModelAdapter):
    """A PyTorch ``nn.Module`` (or TorchScript module) as an imacs model.

    Parameters
    ----------
    model:
        The module. It is moved to ``device`` and put in ``eval()`` mode; nothing else
        about it is changed. Use :meth:`load` (or ``imacs.load_model``) for files.
    preprocessing:
        The model's input normalisation, applied inside the differentiable call:
        an ``imacs.Preprocessing``, a dict of its fields, or ``None`` for none.
    channels_first:
        ``True`` (PyTorch's convention) when the module takes ``(N, C, H, W)``; the
        adapter then reorders the channel-last images itself. ``False`` for a module
        that takes ``(N, H, W, C)``.
    channels_last:
        Hand the module its ``(N, C, H, W)`` input in ``torch.channels_last`` memory
        format, which convolutional networks run about 1.5x faster on the CPU.
        ``False`` (the default): the contiguous layout. ``None``: on for a
        ``channels_first`` module with a 2-D convolution on the CPU, and off for good,
        the call repeated in the contiguous layout, if the module fails on
        channels-last strides (``.view()`` on a feature map does; ``.reshape()``
        works). ``True`` forces it on any device. The numbers equal the contiguous
        layout's to float32 rounding, but on ReLU networks that rounding decides units
        at their kinks differently at different batch sizes, which moved the
        randomisation test's similarities by up to 0.008 between batch sizes 1 and
        4096; hence not the default (docs/performance.md).
    device:
        Where the model runs: ``"cpu"``, ``"cuda"``, ``"cuda:1"``... Default: ``"cuda"``
        if available, else ``"cpu"``.
    target:
        What scores and gradients are of: ``"logit"`` (``outputs[n, t]``),
        ``"probability"`` (softmax), ``"log_probability"`` (log-softmax), or a function
        ``(outputs, targets) -> (N,)`` on torch tensors.
    batch_size:
        The most images sent to the module in one call when the caller does not say.
    call_pixels:
        The most pixels (images x height x width) one call carries; larger calls are
        split. ``"auto"`` (the default): 131,072 on the CPU (32 images of 64x64, 8 of
        128x128, 2 of 224x224), where smaller calls keep the activations in the caches
        and cost up to half as much per image; no limit on a GPU. ``None``: no limit. An
        image's scores and gradients do not depend on the other images of its call, so
        the results are the same up to float32 rounding.
    smooth_surrogate:
        Take gradients through a copy of the module with ``nn.ReLU`` as Softplus(beta)
        and ``nn.MaxPool2d`` as LogSumExp pooling: ``{"beta": 10}`` (temperature
        ``1 / beta``), ``{"beta": 10, "temperature": 0.05}``, a number (beta) or ``True``.
        ``predict`` and ``scores`` stay the module's own; see
        :mod:`imacs.adapters.surrogate`.

    Capabilities: ``"gradients"`` and ``"vjp"`` (:meth:`output_vjp`); for modules that
    are not TorchScript also ``"layers"``, ``"embedding"``, ``"randomise"``
    (:meth:`randomised_copy`) and ``"injection"`` (:meth:`injected_gradients`: a forward
    hook replaces the layer's output; the layers before it run once on a blank image).

    Inner layers (``layer_gradients``, ``embed``) are reached through forward hooks,
    which TorchScript does not run, so a TorchScript module offers gradients only. Their
    4-D outputs are taken to be ``(N, C, H, W)``, as every PyTorch layer makes them, and
    are returned channel-last ``(N, H, W, C)``; other outputs are returned as they are.
    """

    name = "torch"
    framework = "pytorch"

    def __init__(
        self,
        model: torch.nn.Module,
        *,
        preprocessing: Preprocessing | dict[str, Any] | None = None,
        channels_first: bool = True,
        channels_last: bool | None = False,
        device: str | torch.device | None = None,
        target: TargetSpec = "logit",
        batch_size: int | None = None,
        call_pixels: int | str | None = "auto",
        smooth_surrogate: dict[str, float] | float | bool | None = None,
    ):
        super().__init__(target=target, batch_size=batch_size)
        if not isinstance(model, torch.nn.Module):
            raise InvalidInputError(
                f"expected a torch.nn.Module; got {type(model).__module__}."
                f"{type(model).__qualname__}: pass a module, or load a file with "
                "imacs.load_model(path) or TorchAdapter.load(path)"
            )
        if not isinstance(channels_first, bool):
            raise InvalidInputError(
                f"expected channels_first to be True (the module takes NCHW) or False (NHWC); "
                f"got {channels_first!r}"
            )
        if channels_last is not None and not isinstance(channels_last, bool):
            raise InvalidInputError(
                "expected channels_last to be False (the default), True, or None (on for "
                f"convolutional modules on the CPU); got {channels_last!r}"
            )
        self.preprocessing = Preprocessing.coerce(preprocessing)
        self.channels_first = channels_first
        self.device = resolve_device(device)
        self.model = model.to(self.device).eval()
        #: whether channels_last was chosen by the adapter (and may be turned off)
        self._channels_last_auto = channels_last is None
        self.channels_last = (
            channels_first and self.device.type == "cpu" and _has_conv2d(self.model)
            if channels_last is None
            else channels_last
        )
        if (
            call_pixels != "auto"
            and call_pixels is not None
            and (
                isinstance(call_pixels, bool) or not isinstance(call_pixels, int) or call_pixels < 1
            )
        ):
            raise InvalidInputError(
                "expected call_pixels to be a positive int (pixels per call), None (no "
                f"limit) or 'auto' (131,072 on the CPU, no limit on a GPU); got {call_pixels!r}"
            )
        #: as given: "auto", a number or None; :attr:`call_pixels` is what it means here
        self._call_pixels_option = call_pixels
        if isinstance(call_pixels, str):  # "auto"
            self.call_pixels = CPU_CALL_PIXELS if self.device.type == "cpu" else None
        else:
            self.call_pixels = call_pixels
        self.smooth_surrogate = check_smooth_surrogate(smooth_surrogate)
        #: the module gradients are taken through: the model, or its smooth surrogate
        self.gradient_model = (
            build_smooth_surrogate(self.model, **self.smooth_surrogate)
            if self.smooth_surrogate is not None
            else self.model
        )
        self._input_dtype = _floating_dtype(self.model)
        self._default_embedding_layers: dict[tuple[int, ...], str] = {}
        # Forward hooks do not fire inside TorchScript, so its layers cannot be reached.
        self.capabilities = (
            frozenset({"gradients", "vjp"})
            if isinstance(self.model, torch.jit.ScriptModule)
            else frozenset({"gradients", "vjp", "layers", "embedding", "randomise", "injection"})
        )
        #: layers checked to be a cut of the network, by the input size they were checked at
        self._cut_layers: set[tuple[str, tuple[int, ...]]] = set()
        #: the per-image input shape last used to reach each layer, for injection there
        self._layer_input_shapes: dict[str, tuple[int, ...]] = {}
        if "layers" in self.capabilities:
            # convolutions and poolings are found with forward pre-hooks, as layers are
            self.capabilities = self.capabilities | {"geometry"}

    @classmethod
    def load(
        cls,
        model: torch.nn.Module | str | os.PathLike[str] | Mapping[str, Any],
        *,
        factory: Factory | None = None,
        trust: bool = False,
        **options: Any,
    ) -> TorchAdapter:
        """An adapter for a module, a model file (``str`` or ``pathlib.Path``), or a state
        dict in memory with its ``factory`` (``load(model.state_dict(), factory=...)``,
        which an executor's worker can load again from the same two).

        Files may be state dicts (``torch.save(model.state_dict())``, also nested under
        ``"state_dict"``, ``"model_state_dict"`` or ``"model"``), which need ``factory``
        and load without running code from the file; TorchScript archives
        (``torch.jit.save``), which need ``trust=True``; or pickled modules
        (``torch.save(model)``), which need ``trust=True``.

        Parameters
        ----------
        factory:
            For a state dict: a function returning the untrained ``nn.Module``, or the
            string ``"package.module:function"`` naming one to import.
        trust:
            Allow loading a file that runs code while it loads: a pickled module, whose
            unpickling imports and calls what the file names, or a TorchScript archive,
            whose scripted ``__setstate__`` methods run. Only ``True`` allows it; only for
            files from a source you trust.
        **options:
            The constructor's keyword arguments (``preprocessing``, ``device``...).
        """
        accepted = [*_keyword_names(cls.__init__), "factory", "trust"]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise InvalidInputError(
                f"adapter {cls.name!r} does not take option(s) {', '.join(unknown)}; it "
                f"takes: {', '.join(accepted)}"
            )
        options = cls.parse_options({**options, "factory": factory, "trust": trust})
        factory, trust = options.pop("factory"), check_bool("trust", options.pop("trust"))
        if isinstance(model, str | os.PathLike):
            device = resolve_device(options.pop("device", None))
            module = read_model_file(model, factory=factory, trust=trust, map_location=device)
            return cls(module, device=device, **options)
        if isinstance(model, Mapping):
            # weights in memory: what an executor's worker loads a model from (its recipe)
            return cls(module_with_weights(model, factory), **options)
        if factory is not None:
            raise InvalidInputError(
                "factory= builds a model for a state-dict file, but the model given is "
                f"already a {type(model).__qualname__} object: drop factory="
            )
        return cls(model, **options)

    # -- the three framework calls -----------------------------------------------------

    def _predict(self, images: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            return _to_numpy(self.forward_pixels(self._pixels(images)))

    def _scores(self, images: np.ndarray, targets: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            outputs = self.forward_pixels(self._pixels(images))
            return _to_numpy(self.select_target(outputs, self._targets(targets)))

    def _value_and_gradients(
        self, images: np.ndarray, targets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        pixels = self._pixels(images).requires_grad_(True)
        with torch.enable_grad():
            outputs = self.forward_pixels(pixels, model=self.gradient_model)
            scores = self.select_target(outputs, self._targets(targets))
            # Images do not interact in eval mode, so the gradient of the sum holds each
            # image's own gradient; only the input's gradient is computed, never .grad.
            (grads,) = torch.autograd.grad(
                self._differentiable(scores).sum(), pixels, allow_unused=True
            )
        if grads is None:
            raise self._detached_error()
        return _to_numpy(scores), _to_numpy(grads)

    # -- building blocks ---------------------------------------------------------------

    def _pixels(self, images: np.ndarray) -> torch.Tensor:
        # A copy (torch.tensor always copies): a module that edits its input in place must
        # not edit the caller's array, and read-only arrays (np.load mmaps) need no warning.
        return torch.tensor(images, device=self.device)

    def _targets(self, targets: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(targets, dtype=np.int64)).to(self.device)

    def _model_input(self, pixels: torch.Tensor) -> torch.Tensor:
        """Preprocess channel-last pixels into the module's input, differentiably.

        The same operations, in the same order and precision, as
        ``Preprocessing.apply``, the NumPy reference.
        """
        p = self.preprocessing
        p.check_channels(pixels.shape[-1])
        x = pixels
        if p.scale != 1.0:
            x = x * p.scale
        if p.mean is not None:
            x = x - torch.tensor(p.mean, dtype=x.dtype, device=x.device)
        if p.std is not None:
            x = x / torch.tensor(p.std, dtype=x.dtype, device=x.device)
        if p.channel_order == "bgr":
            x = x.flip(-1)
        if self.channels_first:
            x = x.permute(0, 3, 1, 2)
        fast = self.channels_last and self.channels_first
        layout = torch.channels_last if fast else torch.contiguous_format
        x = x.contiguous(memory_format=layout).to(self._input_dtype)
        # In-place ops on a leaf that requires grad are an error in torch, and the
        # module's first layer may be one (ReLU(inplace=True)).
        return x.clone() if x is pixels else x

    def forward_pixels(
        self, pixels: torch.Tensor, *, model: torch.nn.Module | None = None
    ) -> torch.Tensor:
        """The model's outputs for channel-last pixels, preprocessing included.

        A differentiable torch call, for plugins that drive the model themselves (Captum):
        ``select_target(forward_pixels(x), targets)`` is exactly what ``scores``
        computes, and what ``gradients`` differentiates unless a smooth surrogate is set;
        ``forward_pixels(x, model=adapter.gradient_model)`` is then what it differentiates.
        """
        module = model or self.model
        try:
            outputs = module(self._model_input(pixels))
        except RuntimeError:
            if not (self.channels_last and self._channels_last_auto):
                raise
            # the module does not take channels-last strides (a .view() of a feature map)
            self.channels_last = False
            outputs = module(self._model_input(pixels))
        if not isinstance(outputs, torch.Tensor):
            raise InvalidInputError(
                f"expected the model to return one (N, K) tensor; it returned a "
                f"{type(outputs).__module__}.{type(outputs).__qualname__}: wrap the model in "
                "a module whose forward returns a single tensor of class scores (for "
                "example model(x).logits or model(x)[0])"
            )
        return outputs

    def select_target(self, outputs: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
        """One score per image from the model's outputs, by the adapter's ``target``."""
        if callable(self.target):
            scores = self.target(outputs, targets)
            if not isinstance(scores, torch.Tensor):
                raise InvalidInputError(
                    "expected the target function to return a torch tensor of one score per "
                    f"image; it returned a {type(scores).__qualname__}: compute it with torch "
                    "operations so it can be differentiated"
                )
            return scores
        if outputs.ndim != 2:
            raise InvalidInputError(
                f"expected the model to return scores of shape (N, K) for N={len(targets)} "
                f"images; it returned shape {tuple(outputs.shape)}: wrap the model so that "
                "it returns one score per class (for example flatten or select the "
                "classification head)"
            )
        if self.target == "probability":
            outputs = torch.softmax(outputs, dim=1)
        elif self.target == "log_probability":
            outputs = torch.log_softmax(outputs, dim=1)
        return outputs.gather(1, targets[:, None]).squeeze(1)

    def _differentiable(self, scores: torch.Tensor) -> torch.Tensor:
        if not scores.requires_grad:
            raise self._detached_error()
        return scores

    def _detached_error(self) -> InvalidInputError:
        return InvalidInputError(
            "the target score does not depend on the input pixels in the autograd graph: "
            "the model (or target function) cuts the graph, e.g. with .detach(), .numpy(), "
            "torch.no_grad() or an integer cast inside forward; remove that so gradients "
            "can flow to the input"
        )

    # -- inner layers --------------------------------------------------------------------

    def layer_names(self) -> list[str]:
        """Names of the module's submodules, as ``named_modules()`` gives them."""
        self.require("layers", by="layer_names()")
        return [name for name, module in self.model.named_modules() if _hookable(name, module)]

    def layer_gradients(
        self, images: Any, targets: Any, layer: str, *, batch_size: int | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """A layer's channel-last activations and the target score's gradients w.r.t. them.

        Both arrays have the layer output's shape, ``(N, h, w, D)`` for a convolutional
        layer (reordered from PyTorch's ``(N, D, h, w)``), ``(N, D)`` for a linear one.
        """
        self.require("layers", by="layer_gradients()")
        module = self._layer(layer, self.gradient_model)
        x, t = self._check_images_and_targets(images, targets)
        activations, gradients = [], []
        for s in self._slices(x, batch_size):
            a, g = self._layer_value_and_gradients(x[s], t[s], module, layer)
            activations.append(a)
            gradients.append(g)
        return np.concatenate(activations), np.concatenate(gradients)

    def embed(
        self, images: Any, *, layer: str | None = None, batch_size: int | None = None
    ) -> np.ndarray:
        """Channel-last activations of ``layer`` for each image.

        By default the layer is the last one to produce a spatial feature map, a 4-D output
        ``(N, D, h, w)`` with more than one position (falling back to the last 4-D output);
        :meth:`default_layer` says which.
        """
        self.require("embedding", by="embed()")
        x = self._check_images(images)
        if layer is None:
            layer = self.default_layer(x[:1])
        module = self._layer(layer)
        parts = []
        for s in self._slices(x, batch_size):
            with (
                torch.inference_mode(),
                _capture(module, layer, stop=True) as captured,
                contextlib.suppress(_StopForward),  # the hook ends the pass at the layer
            ):
                self.forward_pixels(self._pixels(x[s]))
            parts.append(_to_numpy(_channel_last(captured.output(layer))))
        return np.concatenate(parts)

    def layer_geometry(self, size: tuple[int, int]) -> list[dict[str, Any]]:
        """Every ``Conv2d``, ``MaxPool2d`` and ``AvgPool2d`` on ``size`` images, in run order.

        Found with one forward pass of an all-zero image; see
        :meth:`imacs.adapters.base.ModelAdapter.layer_geometry` for the fields.
        """
        self.require("geometry", by="layer_geometry()")
        from imacs_torch.geometry import layer_geometry

        return layer_geometry(self, size)

    def default_layer(self, images: Any) -> str:
        """The layer ``embed`` and Grad-CAM use when none is named: the last spatial map."""
        self.require("layers", by="default_layer()")
        x = self._check_images(images)
        key = x.shape[1:]
        if key not in self._default_embedding_layers:
            self._default_embedding_layers[key] = self._find_last_feature_map(x[:1])
        return self._default_embedding_layers[key]

    def _find_last_feature_map(self, image: np.ndarray) -> str:
        finished: list[tuple[str, tuple[int, ...]]] = []  # in the order layers finish
        calls: dict[str, int] = {}

        def record(name: str) -> Callable[..., None]:
            def hook(module: torch.nn.Module, inputs: Any, output: Any) -> None:
                calls[name] = calls.get(name, 0) + 1
                if isinstance(output, torch.Tensor):
                    finished.append((name, tuple(output.shape)))

            return hook

        with contextlib.ExitStack() as stack:
            for name, module in self.model.named_modules():
                if _hookable(name, module):
                    stack.callback(module.register_forward_hook(record(name)).remove)
            with torch.inference_mode():
                self.forward_pixels(self._pixels(image))
        # layers run more than once per forward (a shared ReLU) have no single output
        maps = [(name, shape) for name, shape in finished if len(shape) == 4 and calls[name] == 1]
        spatial = [name for name, shape in maps if shape[2] * shape[3] > 1]
        if spatial:
            return spatial[-1]
        if maps:
            return maps[-1][0]
        raise InvalidInputError(
            "embed() found no layer with a 4-D (N, C, H, W) output to use by default: pass "
            f"layer= one of {', '.join(self.layer_names()[:10])}"
        )

    def _layer(self, layer: str, model: torch.nn.Module | None = None) -> torch.nn.Module:
        modules: dict[str, torch.nn.Module] = {
            name: module
            for name, module in (model or self.model).named_modules()
            if _hookable(name, module)
        }
        if layer in modules:
            return modules[layer]
        names = list(modules)
        close = difflib.get_close_matches(str(layer), names, n=3)
        hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
        shown = ", ".join(names[:10]) + (", ..." if len(names) > 10 else "")
        raise InvalidInputError(
            f"the model has no layer named {layer!r}.{hint} Layers are named as in "
            f"model.named_modules(): {shown or 'none'} (layer_names() lists all {len(names)})"
        )

    def _layer_value_and_gradients(
        self, images: np.ndarray, targets: np.ndarray, module: torch.nn.Module, layer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        # The input requires grad so the layer output is in the graph even when every
        # parameter before it is frozen.
        pixels = self._pixels(images).requires_grad_(True)
        with torch.enable_grad(), _capture(module, layer, stop=False) as captured:
            outputs = self.forward_pixels(pixels, model=self.gradient_model)
            scores = self.select_target(outputs, self._targets(targets))
            activation = captured.output(layer)
            (grads,) = torch.autograd.grad(
                self._differentiable(scores).sum(), activation, allow_unused=True
            )
        if grads is None:
            raise InvalidInputError(
                f"the target score does not depend on layer {layer!r}: pick a layer on the "
                "path from the input to the model's output"
            )
        return _to_numpy(_channel_last(activation)), _to_numpy(_channel_last(grads))

    # -- injection and vector-Jacobian products -----------------------------------------

    def _output_vjp(self, images: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pixels = self._pixels(images).requires_grad_(True)
        w = torch.from_numpy(weights).to(self.device)
        with torch.enable_grad():
            outputs = self.forward_pixels(pixels, model=self.gradient_model)
            total = (outputs.to(torch.float32) * w).sum()
            (grads,) = torch.autograd.grad(self._differentiable(total), pixels, allow_unused=True)
        if grads is None:
            raise self._detached_error()
        return _to_numpy(outputs), _to_numpy(grads)

    def _layer_activations(
        self, inputs: np.ndarray, layer: str, from_layer: str | None
    ) -> np.ndarray:
        module = self._layer(layer)
        if from_layer is None:
            self._layer_input_shapes[layer] = tuple(inputs.shape[1:])
            with (
                torch.inference_mode(),
                _capture(module, layer, stop=True) as captured,
                contextlib.suppress(_StopForward),
            ):
                self.forward_pixels(self._pixels(inputs))
            return _to_numpy(_channel_last(captured.output(layer)))
        shape = self._injection_input_shape(from_layer)
        self._layer_input_shapes.setdefault(layer, shape)
        with (
            torch.inference_mode(),
            self._injecting(from_layer, inputs, shape, self.model) as injected,
            _capture(module, layer, stop=True) as captured,
            contextlib.suppress(_StopForward),
        ):
            self.forward_pixels(injected.pixels)
        return _to_numpy(_channel_last(captured.output(layer)))

    def _injected_gradients(
        self, activations: np.ndarray, targets: np.ndarray, layer: str
    ) -> tuple[np.ndarray, np.ndarray]:
        shape = self._injection_input_shape(layer)
        key = (layer, shape)
        check_cut = key not in self._cut_layers
        with (
            torch.enable_grad(),
            self._injecting(layer, activations, shape, self.gradient_model) as injected,
        ):
            if check_cut:
                injected.pixels.requires_grad_(True)
            outputs = self.forward_pixels(injected.pixels, model=self.gradient_model)
            if outputs.shape[0] != len(activations):
                raise self._not_a_cut(layer)
            scores = self.select_target(outputs, self._targets(targets))
            sources = [injected.tensor, injected.pixels] if check_cut else [injected.tensor]
            grads = torch.autograd.grad(
                self._differentiable(scores).sum(), sources, allow_unused=True
            )
        if grads[0] is None:
            raise InvalidInputError(
                f"the target score does not depend on layer {layer!r}: pick a layer on the "
                "path from the input to the model's output"
            )
        if check_cut:
            if grads[1] is not None and bool(grads[1].abs().max() > 0):
                raise self._not_a_cut(layer)
            self._cut_layers.add(key)
        return _to_numpy(scores), _to_numpy(_channel_last(grads[0]))

    def _injection_input_shape(self, layer: str) -> tuple[int, ...]:
        shape = self._layer_input_shapes.get(layer)
        if shape is None:
            raise InvalidInputError(
                f"the torch adapter runs the layers before {layer!r} once on a blank image "
                "to reach it, and needs the image size for that: call "
                f"layer_activations(images, {layer!r}) first"
            )
        return shape

    @contextlib.contextmanager
    def _injecting(
        self, layer: str, activations: np.ndarray, shape: tuple[int, ...], model: torch.nn.Module
    ) -> Iterator[_Injected]:
        """Replace ``layer``'s output with ``activations`` during one forward pass.

        The layers before it run on a single blank image, whose result is thrown away:
        their cost is one image's, not one per injected activation. The tail then sees a
        batch of ``len(activations)``.
        """
        module = self._layer(layer, model)
        tensor = torch.tensor(activations, device=self.device, dtype=self._input_dtype)
        if tensor.ndim == 4:
            tensor = tensor.permute(0, 3, 1, 2)
        tensor.requires_grad_(torch.is_grad_enabled())
        injected = _Injected(torch.zeros((1, *shape), device=self.device), tensor)

        def hook(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
            if injected.used:
                raise InvalidInputError(
                    f"layer {layer!r} runs more than once in one forward pass, so activations "
                    "cannot be injected there: pick another layer"
                )
            injected.used = True
            if not isinstance(output, torch.Tensor) or output.shape[1:] != tensor.shape[1:]:
                got = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else output
                raise InvalidInputError(
                    f"activations injected at layer {layer!r} have per-image shape "
                    f"{tuple(activations.shape[1:])} (channel-last), but the layer outputs "
                    f"{got} (PyTorch layout) for images of shape {shape}: pass what "
                    "layer_activations() returns for this layer"
                )
            # a copy: an in-place op later (ReLU(inplace=True)) must not edit the leaf
            return tensor.clone() if torch.is_grad_enabled() else tensor

        handle = module.register_forward_hook(hook)
        try:
            yield injected
        finally:
            handle.remove()

    def _not_a_cut(self, layer: str) -> InvalidInputError:
        return InvalidInputError(
            f"layer {layer!r} is not a cut of the network: later layers also read tensors "
            "computed before it (a skip connection around it, or the batch size of the "
            "input), so the rest of the network cannot be run from its output alone; pick "
            "a layer between blocks, such as the output of a whole residual block"
        )

    # -- randomised copies ----------------------------------------------------------------

    def parameter_layers(self) -> list[str]:
        """Submodules that hold parameters of their own, in ``named_modules()`` order.

        That is the order the module defines them, input to output for ``nn.Sequential``
        and for most models; the randomisation test's cascade follows it backwards.
        """
        self.require("randomise", by="parameter_layers()")
        return [
            name
            for name, module in self.model.named_modules()
            if name and next(module.parameters(recurse=False), None) is not None
        ]

    def randomised_copy(self, layers: Any, *, seed: int = 0) -> TorchAdapter:
        """A new adapter over a deep copy of the module with ``layers`` re-initialised.

        Weights and biases are drawn by :func:`imacs.adapters.randomisation.new_parameters`
        (PyTorch's default rule, seeded by ``seed`` and the layer's position); layers with
        only vector parameters (normalisation) are reset with their ``reset_parameters``.
        """
        self.require("randomise", by="randomised_copy()")
        positions = self._checked_layer_positions(layers)
        names = self.parameter_layers()
        model = copy.deepcopy(self.model)
        modules = dict(model.named_modules())
        with torch.no_grad():
            for position in positions:
                module = modules[names[position]]
                parameters = list(module.parameters(recurse=False))
                shapes = [tuple(p.shape) for p in parameters]
                values = new_parameters(shapes, seed=seed, position=position)
                if values is None:
                    _reset_to_identity(module)
                    continue
                for parameter, value in zip(parameters, values, strict=True):
                    parameter.copy_(torch.from_numpy(value))
        copied = TorchAdapter(
            model,
            preprocessing=self.preprocessing,
            channels_first=self.channels_first,
            channels_last=None if self._channels_last_auto else self.channels_last,
            device=self.device,
            target=self.target,
            batch_size=self.batch_size,
            call_pixels=self._call_pixels_option,
            smooth_surrogate=self.smooth_surrogate,
        )
        copied.model_name = f"{self.model_name} (randomised)" if self.model_name else None
        return copied

    # -- identity and reports ------------------------------------------------------------

    def fingerprint(self) -> str:
        """SHA-256 of the weights, module class, preprocessing, target and input layout.

        Computed from the current weights at each call, so fine-tuning the module changes
        it. The device is left out: the same weights compute the same function anywhere.
        """
        state = self.model.state_dict()
        tensors = {k: v for k, v in state.items() if isinstance(v, torch.Tensor)}
        others = {k: repr(v) for k, v in state.items() if not isinstance(v, torch.Tensor)}
        return fingerprint_arrays(
            (_tensor_bytes(t) for t in tensors.values()),
            [(k, str(t.dtype), tuple(t.shape)) for k, t in tensors.items()],
            others,
            _module_class(self.model),
            self.preprocessing.as_dict(),
            self.target if isinstance(self.target, str) else _callable_identity(self.target),
            self.channels_first,
            # only when set, so that fingerprints of adapters without it stay as they were
            *([("smooth_surrogate", self.smooth_surrogate)] if self.smooth_surrogate else []),
        )

    def describe(self) -> dict[str, Any]:
        """The base report plus device, module class, parameter count and preprocessing."""
        return {
            **super().describe(),
            "device": str(self.device),
            "module": _module_class(self.model),
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "preprocessing": self.preprocessing.as_dict(),
            "channels_first": self.channels_first,
            "channels_last": self.channels_last,
            "call_pixels": self.call_pixels,
            "smooth_surrogate": self.smooth_surrogate,
        }


# -- capturing a layer's output -------------------------------------------------------------


class _StopForward(Exception):
    """Raised by a capture hook to skip the rest of the forward pass (embed only)."""


@dataclass
class _Captured:
    outputs: list[Any]

    def output(self, layer: str) -> torch.Tensor:
        if not self.outputs:
            raise InvalidInputError(
                f"layer {layer!r} did not run during the forward pass: pick a layer the "
                "model's forward() uses"
            )
        output = self.outputs[0]
        if not isinstance(output, torch.Tensor):
            raise InvalidInputError(
                f"layer {layer!r} returns a {type(output).__qualname__}, not one tensor: "
                "pick a layer with a single tensor output (for example one of its submodules)"
            )
        return output


@contextlib.contextmanager
def _capture(module: torch.nn.Module, layer: str, *, stop: bool) -> Iterator[_Captured]:
    captured = _Captured([])

    def hook(module: torch.nn.Module, inputs: Any, output: Any) -> Any:
        if captured.outputs:
            raise InvalidInputError(
                f"layer {layer!r} runs more than once in one forward pass (a module reused "
                "in forward()), so it has no single activation: pick another layer"
            )
        captured.outputs.append(output)
        if stop:
            raise _StopForward
        # Later layers get a copy, so an in-place op after this one (ReLU(inplace=True))
        # cannot overwrite the captured activation.
        return output.clone() if isinstance(output, torch.Tensor) else None

    handle = module.register_forward_hook(hook)
    try:
        yield captured
    finally:
        handle.remove()


@dataclass
class _Injected:
    """The blank image a pass starts from, and the activations injected along it."""

    pixels: torch.Tensor
    tensor: torch.Tensor
    used: bool = False


def _reset_to_identity(module: torch.nn.Module) -> None:
    """Reset a layer without weight matrices (a norm layer) to scale 1, shift 0."""
    reset = getattr(module, "reset_parameters", None)
    if callable(reset):
        reset()
        return
    for name, parameter in module.named_parameters(recurse=False):
        parameter.fill_(1.0 if name == "weight" else 0.0)


# -- small conversions ----------------------------------------------------------------------


def _hookable(name: str, module: torch.nn.Module) -> bool:
    # the root is the whole model; TorchScript submodules refuse forward hooks
    return bool(name) and not isinstance(module, torch.jit.ScriptModule)


def _channel_last(t: torch.Tensor) -> torch.Tensor:
    return t.permute(0, 2, 3, 1) if t.ndim == 4 else t


def _to_numpy(t: torch.Tensor) -> np.ndarray:
    return t.detach().to("cpu", torch.float32).numpy()


def _has_conv2d(model: torch.nn.Module) -> bool:
    return any(isinstance(m, torch.nn.Conv2d) for m in model.modules())


def _floating_dtype(model: torch.nn.Module) -> torch.dtype:
    """The dtype the module computes in: that of its first floating parameter or buffer."""
    for tensor in [*model.parameters(), *model.buffers()]:
        if tensor.is_floating_point():
            return tensor.dtype
    return torch.float32


def _tensor_bytes(t: torch.Tensor) -> np.ndarray:
    t = t.detach().to("cpu")
    try:
        return t.numpy()
    except TypeError:  # dtypes NumPy lacks (bfloat16, float8): hash the raw bytes
        return t.contiguous().reshape(-1).view(torch.uint8).numpy()


def _module_class(model: torch.nn.Module) -> str:
    # TorchScript modules are all RecursiveScriptModule; original_name is the user's class
    name = getattr(model, "original_name", None)
    if isinstance(model, torch.jit.ScriptModule) and isinstance(name, str):
        return name
    return f"{type(model).__module__}.{type(model).__qualname__}"


def _callable_identity(function: Callable[..., Any]) -> tuple[object, ...]:
    """What tells target functions apart across runs: their name and their code.

    Two lambdas share a name, so the bytecode and its names and simple constants are
    included; values captured in a closure are not, which is a known blind spot.
    """
    code = getattr(function, "__code__", None)
    identity: tuple[object, ...] = (
        getattr(function, "__module__", None),
        getattr(function, "__qualname__", type(function).__qualname__),
    )
    if code is not None:
        constants = [c for c in code.co_consts if isinstance(c, str | int | float | None)]
        body = code.co_code + repr((code.co_names, constants)).encode()
        identity += (hashlib.sha256(body).hexdigest(),)
    return identity


def _keyword_names(function: Callable[..., Any]) -> list[str]:
    return [
        name
        for name, p in inspect.signature(function).parameters.items()
        if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and name not in ("self", "model")
    ]
