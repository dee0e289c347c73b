"""The functions most users call: load a model, attribute, list plugins."""

from __future__ import annotations

import copy
import os
from typing import Any

from imacs.adapters.base import ModelAdapter
from imacs.adapters.recipe import ModelRecipe, is_recipe_source
from imacs.attribution.base import DEFAULT_BATCH_SIZE, AttributionMethod, AttributionResult
from imacs.errors import InvalidInputError, ModelLoadError
from imacs.plugins import PluginInfo, get_host

#: What ``imacs.attribute`` and ``imacs attribute`` use when no method is named.
DEFAULT_METHOD = "integrated-gradients"


def load_model(
    model: Any, *, adapter: str | None = None, name: str | None = None, **options: Any
) -> ModelAdapter:
    """Wrap a model object or a model file in an adapter.

    ``name`` is what reports and tables call the model ("resnet-2024"); it travels with
    the adapter into ``Comparison.models[side]["name"]``. Given with an adapter, it names
    a copy of that adapter.

    The installed plugins decide who claims ``model``: a ``torch.nn.Module`` or a
    TorchScript / state-dict file goes to the torch adapter, a ``keras.Model``, ``.keras``
    file or SavedModel directory to the tensorflow adapter. Pass ``adapter="name"`` to
    choose one explicitly. ``options`` go to the adapter (``preprocessing``, ``target``,
    ``batch_size``, ``device``, ``trust``...; see each adapter's documentation), which
    checks them against the types it declares.

    ``trust`` must be ``True`` or ``False``. Files that run code while they load
    (TorchScript archives, pickled modules, SavedModel directories, Keras files with
    ``Lambda`` layers) load only with ``trust=True``; state dicts and Keras files in safe
    mode load without it.
    """
    if name is not None and (not isinstance(name, str) or not name.strip()):
        raise InvalidInputError(f"expected name to be a non-empty string; got {name!r}")
    if isinstance(model, ModelAdapter):
        if adapter is not None or options:
            raise InvalidInputError(
                "model is already an adapter; adapter= and other options only apply when "
                "loading a model object or file"
            )
        return model if name is None else _named(copy.copy(model), name)
    if isinstance(model, str | os.PathLike):
        path = os.fspath(model)
        if not os.path.exists(path):
            raise ModelLoadError(
                f"model path {path!r} does not exist (working directory: {os.getcwd()}); "
                "check the path, or pass the model object itself"
            )
    registry = get_host().registry
    if adapter is not None:
        cls = registry.get("model_adapter", adapter)
        loaded: ModelAdapter = cls.load(model, **options)  # type: ignore[attr-defined]
    else:
        loaded = registry.claim_model(model, dict(options))
    if is_recipe_source(model) and loaded.recipe() is None:
        # what loaded it loads it again in an executor's worker (imacs.adapters.recipe)
        source = os.path.abspath(model) if isinstance(model, str | os.PathLike) else model
        loaded._recipe = ModelRecipe(loaded.name, source, dict(options), name)
    return loaded if name is None else _named(loaded, name)


def _named(adapter: ModelAdapter, name: str) -> ModelAdapter:
    adapter.model_name = name.strip()
    return adapter


def get_method(method: str | AttributionMethod, **params: Any) -> AttributionMethod:
    """An attribution method by name (with parameters), or the instance given."""
    if isinstance(method, AttributionMethod):
        if params:
            raise InvalidInputError(
                "method is already an instance; give parameters to its constructor instead"
            )
        return method
    instance: AttributionMethod = get_host().registry.create("attribution_method", method, **params)
    return instance


def attribute(
    model: Any,
    images: Any,
    targets: Any,
    *,
    method: str | AttributionMethod = DEFAULT_METHOD,
    batch_size: int = DEFAULT_BATCH_SIZE,
    **params: Any,
) -> AttributionResult:
    """Attribution maps ``(N, H, W, C)`` of ``model`` for ``images`` and their ``targets``.

    ``model`` is an adapter or anything :func:`load_model` accepts; ``method`` a registered
    method name (``imacs plugins`` lists them) or an instance; ``params`` go to the
    method's constructor. ``batch_size`` is the most inputs sent to the model in one call.
    """
    adapter = load_model(model)
    return get_method(method, **params).attribute(adapter, images, targets, batch_size=batch_size)


def get_plugins() -> list[PluginInfo]:
    """Every plugin imacs knows: loaded, broken or blocked, and what each provides."""
    return get_host().plugin_infos()
