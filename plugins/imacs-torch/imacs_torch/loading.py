"""Reading PyTorch model files: state dicts, TorchScript archives and pickled modules.

Only a state dict loads without ``trust=True``: it is read by PyTorch's
``weights_only=True`` unpickler, which builds tensors and plain containers and refuses
anything else, and a ``factory`` of the user's builds the module the weights go in. With
a factory the file is always read that way, trusted or not: the factory wants weights.

The other formats run code from the file while they load, so they need ``trust=True``:

- a file written by ``torch.save(model)`` is a pickle: unpickling imports and calls
  whatever the file names;
- a TorchScript archive (``torch.jit.save``) is compiled and its scripted ``__setstate__``
  methods run during ``torch.jit.load``; TorchScript can call operators such as
  ``aten::save``, which writes a file of the author's choosing.

``torch.export`` archives (``.pt2``) are recognised but not read: ``torch.export.load``
unpickles parts of the archive with ``weights_only=False`` (and plain ``pickle`` for
opaque constants), so it too runs code from the file, and the program it returns is fixed
to the exported input shapes and cannot be put in eval mode.
"""

from __future__ import annotations

import importlib
import os
import pickle
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from imacs.errors import InvalidInputError, ModelLoadError, UntrustedModelError
from imacs_torch.formats import archive_kind

#: Keys under which training scripts commonly nest the state dict in a checkpoint.
STATE_DICT_KEYS = ("state_dict", "model_state_dict", "model")

Factory = str | Callable[[], torch.nn.Module]

_EXPECTED = (
    "a TorchScript archive (torch.jit.save), a state dict (torch.save(model.state_dict())) "
    "or a pickled module (torch.save(model))"
)


def read_model_file(
    path: str | os.PathLike[str],
    *,
    factory: Factory | None = None,
    trust: bool = False,
    map_location: torch.device | str = "cpu",
) -> torch.nn.Module:
    """The ``nn.Module`` stored in ``path``, with its tensors on ``map_location``.

    Raises ``ModelLoadError`` for a file that is not a PyTorch model (naming what was
    expected), and ``UntrustedModelError`` for a pickled module or a TorchScript archive
    without ``trust=True``: anything but ``True`` counts as not trusted.
    """
    path = Path(path)
    if not path.is_file():
        what = "a directory" if path.is_dir() else "not there"
        raise ModelLoadError(f"expected a PyTorch model file at {str(path)!r}; it is {what}")

    kind = archive_kind(path)
    if kind == "export":
        raise ModelLoadError(
            f"{str(path)!r} is a torch.export archive (torch.export.save), which imacs does "
            "not load: torch.export.load unpickles parts of it with weights_only=False, "
            "which runs code from the file, and the exported program is fixed to the "
            "example input's shapes. Save the weights instead "
            "(torch.save(model.state_dict(), path)) and load them with factory=, or pass "
            "the nn.Module itself"
        )
    if kind == "torchscript":
        _refuse_factory(factory, path, "a TorchScript archive, which holds the architecture")
        if trust is not True:
            raise UntrustedModelError(
                f"{str(path)!r} is a TorchScript archive: loading it compiles and runs "
                "TorchScript code from the file (its scripted __setstate__ methods run while "
                "it loads, and can write files). Pass trust=True only for a file from a "
                "source you trust, or save the weights as a state dict "
                "(torch.save(model.state_dict(), path)) and load them with factory="
            )
        try:
            with warnings.catch_warnings():
                # Recent torch deprecates TorchScript in favour of torch.export; the user
                # chose the file's format and cannot act on the warning through imacs.
                warnings.filterwarnings(
                    "ignore", r"`torch\.jit\.load` is deprecated", DeprecationWarning
                )
                return torch.jit.load(str(path), map_location=map_location)  # type: ignore[no-untyped-call,no-any-return]
        except Exception as exc:  # torch raises RuntimeError and others for bad archives
            raise ModelLoadError(
                f"could not read the TorchScript archive {str(path)!r}; the file may be "
                f"truncated or corrupt ({_first_line(exc)})"
            ) from exc

    # a factory takes weights, so the file is read as weights even when it is trusted
    contents = _unwrap_checkpoint(
        _load_checkpoint(path, trust is True and factory is None, map_location, factory)
    )
    if isinstance(contents, torch.nn.Module):
        _refuse_factory(factory, path, "a pickled module, which holds the architecture")
        return contents
    if not _is_state_dict(contents):
        held = (
            f"a dict with keys {sorted(map(str, contents))[:8]}"
            if isinstance(contents, Mapping)
            else f"a {type(contents).__module__}.{type(contents).__qualname__}"
        )
        raise ModelLoadError(
            f"{str(path)!r} holds {held}; expected {_EXPECTED}. If the weights are nested "
            "inside, save them alone with torch.save(checkpoint['...'], path)"
        )
    if factory is None:
        raise ModelLoadError(
            f"{str(path)!r} holds weights only (a state dict of {len(contents)} entries), not "
            "the model's architecture: pass factory='package.module:build_model' (or a "
            "function) that builds the nn.Module these weights belong to"
        )
    return module_with_weights(contents, factory, f"the weights in {str(path)!r}")


def module_with_weights(
    state_dict: Mapping[str, Any], factory: Factory | None, where: str = "the state dict"
) -> torch.nn.Module:
    """The module ``factory`` builds, with the weights of ``state_dict`` loaded into it."""
    if factory is None or not _is_state_dict(state_dict):
        raise ModelLoadError(
            f"{where} must be a state dict (parameter names to tensors, as "
            "model.state_dict() returns) given with factory='package.module:build', the "
            "function that builds the nn.Module the weights belong to"
        )
    module = build_from_factory(factory)
    try:
        module.load_state_dict(state_dict, strict=True)
    except RuntimeError as exc:  # missing, unexpected or wrongly shaped weights
        raise ModelLoadError(
            f"{where} do not fit the module built by factory {_factory_name(factory)}: "
            f"{_first_line(exc)}. Check that the factory builds the architecture the "
            "weights were saved from"
        ) from exc
    return module


def build_from_factory(factory: Factory) -> torch.nn.Module:
    """Call ``factory`` (a function, or ``"package.module:function"`` to import) for a module."""
    build = _import_factory(factory) if isinstance(factory, str) else factory
    if not callable(build):
        raise InvalidInputError(
            "expected factory as a function returning an nn.Module, or a string "
            f"'package.module:function'; got {factory!r}"
        )
    try:
        module = build()
    except Exception as exc:  # the user's code: say whose it is, keep the original
        raise ModelLoadError(
            f"factory {_factory_name(factory)} failed while building the model: {exc}"
        ) from exc
    if not isinstance(module, torch.nn.Module):
        raise ModelLoadError(
            f"expected factory {_factory_name(factory)} to return a torch.nn.Module; it "
            f"returned {type(module).__module__}.{type(module).__qualname__}"
        )
    return module


def _import_factory(spec: str) -> Any:
    module_name, _, attribute = spec.partition(":")
    if not module_name or not attribute:
        raise InvalidInputError(
            f"expected factory as 'package.module:function'; got {spec!r}: separate the "
            "module and the function with a colon"
        )
    try:
        target: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelLoadError(
            f"could not import module {module_name!r} named by factory {spec!r}: {exc}. Is "
            "it installed, or on sys.path?"
        ) from exc
    for part in attribute.split("."):
        try:
            target = getattr(target, part)
        except AttributeError as exc:
            raise ModelLoadError(
                f"module {module_name!r} has no attribute {attribute!r}, named by factory {spec!r}"
            ) from exc
    return target


def _load_checkpoint(
    path: Path, unpickle: bool, map_location: torch.device | str, factory: Factory | None
) -> Any:
    try:
        return torch.load(path, map_location=map_location, weights_only=not unpickle)
    except pickle.UnpicklingError as exc:
        unsafe = [] if unpickle else _unsafe_globals(path, exc)
        if unsafe and factory is not None:
            raise ModelLoadError(
                f"{str(path)!r} is not a state dict: it is a pickled Python object that needs "
                f"{', '.join(unsafe[:5])}{', ...' if len(unsafe) > 5 else ''}. With factory= "
                "a file is read as weights only, never unpickled, even with trust=True: save "
                "the weights alone (torch.save(model.state_dict(), path)), or, for a whole "
                "module from a source you trust, drop factory= and pass trust=True"
            ) from exc
        if unsafe:
            raise UntrustedModelError(
                f"{str(path)!r} is a pickled Python object that needs "
                f"{', '.join(unsafe[:5])}{', ...' if len(unsafe) > 5 else ''}, not plain "
                "weights: loading it would run code from the file. Pass trust=True only "
                "for a file from a source you trust, or save the model as a state dict "
                "(torch.save(model.state_dict(), path)) and load it with factory="
            ) from exc
        raise _unreadable(path, exc) from exc
    except Exception as exc:  # truncated zips, text files...: torch raises many kinds
        raise _unreadable(path, exc) from exc


def _unsafe_globals(path: Path, error: Exception) -> list[str]:
    """The classes and functions a refused pickle would import, or [] if it is corrupt."""
    try:
        # reads the pickle's opcodes without running them (zip checkpoints only)
        return list(torch.serialization.get_unsafe_globals_in_checkpoint(path))
    except Exception:
        # legacy-format files: weights_only names the first global it refused
        return re.findall(r"GLOBAL ([\w.]+)", str(error))[:1]


def _unreadable(path: Path, error: Exception) -> ModelLoadError:
    return ModelLoadError(
        f"could not read {str(path)!r} as a PyTorch model: expected {_EXPECTED}; the file "
        f"may be truncated or of another format ({type(error).__name__}: {_first_line(error)})"
    )


def _unwrap_checkpoint(contents: Any) -> Any:
    if isinstance(contents, Mapping) and not _is_state_dict(contents):
        for key in STATE_DICT_KEYS:
            value = contents.get(key)
            if isinstance(value, torch.nn.Module) or _is_state_dict(value):
                return value
    return contents


def _is_state_dict(value: Any) -> bool:
    return (
        isinstance(value, Mapping)
        and len(value) > 0
        and all(isinstance(k, str) for k in value)
        and any(isinstance(v, torch.Tensor) for v in value.values())
        # state dicts hold tensors, plus the odd "_extra_state" a module saves itself
        and all(isinstance(v, torch.Tensor) or k.endswith("_extra_state") for k, v in value.items())
    )


def _refuse_factory(factory: Factory | None, path: Path, what: str) -> None:
    if factory is not None:
        raise InvalidInputError(
            f"factory= builds the model for a state-dict file, but {str(path)!r} is {what}: "
            "drop factory="
        )


def _factory_name(factory: Factory) -> str:
    if isinstance(factory, str):
        return repr(factory)
    return getattr(factory, "__qualname__", repr(factory))


def _first_line(error: BaseException) -> str:
    return str(error).strip().split("\n", 1)[0]
