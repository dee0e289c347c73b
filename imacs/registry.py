"""The typed registry: every installed component, by kind and name.

Core code asks the registry for components; it never calls a hook itself. The registry
calls each registration hook once per plugin, so it knows which plugin provided what and
can name both plugins when two claim one name.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from imacs.errors import (
    DuplicateComponentError,
    InvalidInputError,
    ModelLoadError,
    PluginError,
    UnknownComponentError,
)

if TYPE_CHECKING:
    from imacs.adapters.base import ModelAdapter
    from imacs.plugins import PluginHost

Kind = Literal["model_adapter", "attribution_method", "segmenter", "featurizer", "metric"]

#: kind -> (registration hook, what users call it)
KINDS: dict[Kind, tuple[str, str]] = {
    "model_adapter": ("register_model_adapters", "model adapter"),
    "attribution_method": ("register_attribution_methods", "attribution method"),
    "segmenter": ("register_segmenters", "segmenter"),
    "featurizer": ("register_featurizers", "featurizer"),
    "metric": ("register_metrics", "metric"),
}


def _base_class(kind: Kind) -> type:
    # imported lazily: the component modules import the registry's errors
    from imacs.adapters.base import ModelAdapter
    from imacs.attribution.base import AttributionMethod
    from imacs.features.base import Featurizer
    from imacs.metrics.base import MapMetric
    from imacs.segmentation.base import Segmenter

    return {
        "model_adapter": ModelAdapter,
        "attribution_method": AttributionMethod,
        "segmenter": Segmenter,
        "featurizer": Featurizer,
        "metric": MapMetric,
    }[kind]


@dataclass(frozen=True)
class Entry:
    """A registered component class and the plugin that registered it."""

    kind: Kind
    name: str
    cls: type
    plugin: str


class Registry:
    """Components of all five kinds, collected from the plugins of a ``PluginHost``."""

    def __init__(self, host: PluginHost):
        self._host = host
        self._collected: dict[Kind, dict[str, Entry]] = {}

    def _entries(self, kind: Kind) -> dict[str, Entry]:
        # Each kind is collected on first use: registering an adapter class imports its
        # framework, which a user attributing with an adapter already in hand never needs.
        if kind not in self._collected:
            entries: dict[str, Entry] = {}
            for plugin_name, plugin in self._host.loaded_plugins():
                self._collect(kind, plugin_name, plugin, entries)
            self._collected[kind] = entries
        return self._collected[kind]

    def _collect(
        self, kind: Kind, plugin_name: str, plugin: object, entries: dict[str, Entry]
    ) -> None:
        hook_name, label = KINDS[kind]
        impls = self._host.pm.hook.__dict__[hook_name].get_hookimpls()
        impl = next((i for i in impls if i.plugin is plugin), None)
        if impl is None:
            return
        base = _base_class(kind)

        def register(cls: type) -> None:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginError(
                    f"plugin {plugin_name!r} registered {cls!r} as a {label}; expected a "
                    f"subclass of imacs.{base.__name__}"
                )
            name = getattr(cls, "name", "")
            if not isinstance(name, str) or not name:
                raise PluginError(
                    f"plugin {plugin_name!r} registered {label} {cls.__qualname__} without a "
                    "name: set the class attribute name = '...'"
                )
            existing = entries.get(name)
            if existing is not None:
                raise DuplicateComponentError(
                    f"two plugins register a {label} named {name!r}: {existing.plugin!r} "
                    f"({existing.cls.__module__}.{existing.cls.__qualname__}) and "
                    f"{plugin_name!r} ({cls.__module__}.{cls.__qualname__}); uninstall or "
                    "disable one of them (IMACS_DISABLE_PLUGINS=name)"
                )
            entries[name] = Entry(kind, name, cls, plugin_name)

        arguments = {"register": register}
        impl.function(**{arg: arguments[arg] for arg in impl.argnames})

    # -- lookups -------------------------------------------------------------------------

    def names(self, kind: Kind) -> list[str]:
        """Sorted names of the registered components of ``kind``."""
        return sorted(self._entries(kind))

    def entry(self, kind: Kind, name: str) -> Entry:
        """The entry for ``name``, or an error that lists what is available."""
        try:
            return self._entries(kind)[name]
        except KeyError:
            label = KINDS[kind][1]
            available = self.names(kind)
            close = difflib.get_close_matches(name, available, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise UnknownComponentError(
                f"no {label} named {name!r}; available: {', '.join(available) or 'none'}.{hint} "
                "Install a plugin that provides it, or run `imacs plugins` to see what is "
                "installed."
            ) from None

    def get(self, kind: Kind, name: str) -> type:
        """The registered class for ``name``."""
        return self.entry(kind, name).cls

    def create(self, kind: Kind, name: str, **params: Any) -> Any:
        """Instantiate component ``name`` with keyword parameters, checking their names."""
        cls = self.get(kind, name)
        accepted = cls.param_names() if hasattr(cls, "param_names") else None
        if accepted is not None:
            unknown = sorted(set(params) - set(accepted))
            if unknown:
                raise InvalidInputError(
                    f"{KINDS[kind][1]} {name!r} does not take parameter(s) "
                    f"{', '.join(unknown)}; it takes: {', '.join(accepted) or 'no parameters'}"
                )
        return cls(**params)

    def provided_by(self, plugin_name: str) -> dict[str, list[str]]:
        """What a plugin registered, by kind (kinds with nothing are left out)."""
        provided: dict[str, list[str]] = {}
        for kind in KINDS:
            entries = self._entries(kind).values()
            names = sorted(e.name for e in entries if e.plugin == plugin_name)
            if names:
                provided[kind] = names
        return provided

    # -- model loading -------------------------------------------------------------------

    def claim_model(self, model: Any, options: dict[str, Any]) -> ModelAdapter:
        """Ask the installed plugins, newest first, to wrap ``model``."""
        adapter = self._host.pm.hook.claim_model(model=model, options=options)
        if adapter is None:
            kinds = ", ".join(self.names("model_adapter")) or "none"
            raise ModelLoadError(
                f"no installed adapter recognises {_describe(model)}; installed model "
                f"adapters: {kinds}. Install the plugin for the model's framework "
                "(pip install imacs-torch or imacs-tensorflow), or wrap the model yourself "
                "with imacs.adapters.function.FunctionAdapter"
            )
        return adapter


def _describe(model: Any) -> str:
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        return f"the model file {str(model)!r}"
    return f"a model of type {type(model).__module__}.{type(model).__qualname__}"
