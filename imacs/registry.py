"""The typed registry: every installed component, by kind and name.

Core code asks the registry for components; it never calls a hook itself. The registry
calls each registration hook once per plugin, so it knows which plugin provided what. A
plugin whose hook fails, or registers something that is not a component, is handed back
to the host to be listed as broken and removed; so are both plugins when two claim one
name, and asking for that name is an error naming both.

A plugin may register a class by reference, ``register("package.module:Class",
name="...")``, so that listing what is installed (``imacs plugins``) does not import the
module, and with it a framework; the class is imported and checked the first time it is
asked for.
"""

from __future__ import annotations

import difflib
import importlib
from dataclasses import dataclass, field
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

Kind = Literal[
    "model_adapter",
    "attribution_method",
    "segmenter",
    "featurizer",
    "metric",
    "clusterer",
    "measure",
    "executor",
]

#: kind -> (registration hook, what users call it)
KINDS: dict[Kind, tuple[str, str]] = {
    "model_adapter": ("register_model_adapters", "model adapter"),
    "attribution_method": ("register_attribution_methods", "attribution method"),
    "segmenter": ("register_segmenters", "segmenter"),
    "featurizer": ("register_featurizers", "featurizer"),
    "metric": ("register_metrics", "metric"),
    "clusterer": ("register_clusterers", "clusterer"),
    "measure": ("register_quality_measures", "quality measure"),
    "executor": ("register_executors", "executor"),
}


def a_label(kind: Kind) -> str:
    """What users call a component of ``kind``, with its article: "an attribution method"."""
    label = KINDS[kind][1]
    return f"an {label}" if label[0] in "aeiou" else f"a {label}"


def _base_class(kind: Kind) -> type:
    # imported lazily: the component modules import the registry's errors
    from imacs.adapters.base import ModelAdapter
    from imacs.attribution.base import AttributionMethod
    from imacs.comparison.clustering import Clusterer
    from imacs.comparison.executor import Executor
    from imacs.features.base import Featurizer
    from imacs.metrics.base import MapMetric
    from imacs.quality.base import QualityMeasure
    from imacs.segmentation.base import Segmenter

    return {
        "model_adapter": ModelAdapter,
        "attribution_method": AttributionMethod,
        "segmenter": Segmenter,
        "featurizer": Featurizer,
        "metric": MapMetric,
        "clusterer": Clusterer,
        "measure": QualityMeasure,
        "executor": Executor,
    }[kind]


@dataclass(frozen=True)
class Entry:
    """A registered component and the plugin that registered it.

    ``reference`` is the class itself, or ``"module:QualifiedName"`` for a class registered
    by reference, imported the first time :attr:`cls` is read.
    """

    kind: Kind
    name: str
    reference: type | str
    plugin: str
    _resolved: list[type] = field(default_factory=list, compare=False, repr=False)

    @property
    def class_path(self) -> str:
        """Where the class is defined, ``module.QualifiedName``, for error messages."""
        if isinstance(self.reference, str):
            return self.reference.replace(":", ".")
        return f"{self.reference.__module__}.{self.reference.__qualname__}"

    @property
    def cls(self) -> type:
        """The component class; one registered by reference is imported and checked now."""
        if not isinstance(self.reference, str):
            return self.reference
        if not self._resolved:
            self._resolved.append(_import_reference(self))
        return self._resolved[0]


def _import_reference(entry: Entry) -> type:
    module_name, _, qualname = str(entry.reference).partition(":")
    label = KINDS[entry.kind][1]
    try:
        found: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            found = getattr(found, part)
    except Exception as exc:  # whatever goes wrong is the plugin's to fix
        raise PluginError(
            f"plugin {entry.plugin!r} registered {label} {entry.name!r} as "
            f"{entry.reference!r}, which cannot be imported: {type(exc).__name__}: {exc}"
        ) from exc
    base = _base_class(entry.kind)
    if not (isinstance(found, type) and issubclass(found, base)):
        raise PluginError(
            f"plugin {entry.plugin!r} registered {entry.reference!r} as {a_label(entry.kind)}; "
            f"it is {found!r}, not a subclass of imacs.{base.__name__}"
        )
    if getattr(found, "name", None) != entry.name:
        raise PluginError(
            f"plugin {entry.plugin!r} registered {label} {entry.name!r} as "
            f"{entry.reference!r}, whose class attribute name is {getattr(found, 'name', None)!r}; "
            "the two must agree"
        )
    return found


class Registry:
    """Components of every kind, collected from the plugins of a ``PluginHost``."""

    def __init__(self, host: PluginHost):
        self._host = host
        self._collected: dict[Kind, dict[str, Entry]] = {}

    def _entries(self, kind: Kind) -> dict[str, Entry]:
        # Each kind is collected on first use: registering an adapter class imports its
        # framework, which a user attributing with an adapter already in hand never needs.
        if kind not in self._collected:
            claims: dict[str, list[Entry]] = {}
            for plugin_name, plugin in self._host.loaded_plugins():
                try:
                    found = self.components_of(kind, plugin_name, plugin)
                except Exception as exc:  # whatever a plugin's hook does wrong is its own
                    self._host.break_plugin(plugin_name, _fault(exc, plugin_name, kind))
                    continue
                for entry in found:
                    claims.setdefault(entry.name, []).append(entry)
            for name, entries in claims.items():
                if len(entries) > 1:
                    self._host.record_clash(kind, name, entries)
            loaded = {name for name, _ in self._host.loaded_plugins()}
            self._collected[kind] = {
                name: entries[0]
                for name, entries in claims.items()
                if len(entries) == 1 and entries[0].plugin in loaded
            }
            self._host.report_broken()
        return self._collected[kind]

    def components_of(self, kind: Kind, plugin_name: str, plugin: object) -> list[Entry]:
        """What ``plugin`` registers through the hook of ``kind``, each checked.

        Raises :class:`~imacs.errors.PluginError` naming the plugin when it registers
        something that is not a component of ``kind``, a class without a name, or two
        classes under one name.
        """
        hook_name, label = KINDS[kind]
        impls = self._host.pm.hook.__dict__[hook_name].get_hookimpls()
        impl = next((i for i in impls if i.plugin is plugin), None)
        if impl is None:
            return []
        base = _base_class(kind)
        found: dict[str, Entry] = {}

        def register(component: type | str, *, name: str | None = None) -> None:
            if isinstance(component, str):
                entry = _by_reference(component, name)
            else:
                entry = _by_class(component, name)
            existing = found.get(entry.name)
            if existing is not None and existing.reference != entry.reference:
                raise PluginError(
                    f"plugin {plugin_name!r} registers two {label}s named {entry.name!r}: "
                    f"{existing.class_path} and {entry.class_path}; give each its own name"
                )
            found[entry.name] = entry

        def _by_reference(reference: str, name: str | None) -> Entry:
            module_name, colon, qualname = reference.partition(":")
            if not (module_name and colon and qualname):
                raise PluginError(
                    f"plugin {plugin_name!r} registered {label} {reference!r}; a class given by "
                    "reference is written 'package.module:ClassName'"
                )
            if not isinstance(name, str) or not name:
                raise PluginError(
                    f"plugin {plugin_name!r} registered {label} {reference!r} by reference "
                    "without its name: register(reference, name='...')"
                )
            return Entry(kind, name, reference, plugin_name)

        def _by_class(cls: type, name: str | None) -> Entry:
            if not (isinstance(cls, type) and issubclass(cls, base)):
                raise PluginError(
                    f"plugin {plugin_name!r} registered {cls!r} as {a_label(kind)}; expected a "
                    f"subclass of imacs.{base.__name__}"
                )
            own = getattr(cls, "name", "")
            if not isinstance(own, str) or not own:
                raise PluginError(
                    f"plugin {plugin_name!r} registered {label} {cls.__qualname__} without a "
                    "name: set the class attribute name = '...'"
                )
            if name is not None and name != own:
                raise PluginError(
                    f"plugin {plugin_name!r} registered {label} {cls.__qualname__} as {name!r}, "
                    f"but its class attribute name is {own!r}; the two must agree"
                )
            return Entry(kind, own, cls, plugin_name)

        arguments = {"register": register}
        impl.function(**{arg: arguments[arg] for arg in impl.argnames})
        return list(found.values())

    def collect_all(self) -> None:
        """Collect every kind, so that every plugin's registration hooks have been checked."""
        for kind in KINDS:
            self._entries(kind)

    def forget(self, plugin_name: str) -> None:
        """Drop every component of a plugin that has just been found broken."""
        for entries in self._collected.values():
            for name in [name for name, e in entries.items() if e.plugin == plugin_name]:
                del entries[name]

    def check_newcomer(self, plugin_name: str, plugin: object) -> None:
        """Raise if ``plugin``, not yet listed, registers a bad component or a taken name."""
        for kind, (hook_name, _) in KINDS.items():
            impls = self._host.pm.hook.__dict__[hook_name].get_hookimpls()
            if not any(i.plugin is plugin for i in impls):
                continue
            installed = self._entries(kind)
            try:
                found = self.components_of(kind, plugin_name, plugin)
            except PluginError:
                raise
            except Exception as exc:  # the hook itself failed: say whose it is
                raise PluginError(_fault(exc, plugin_name, kind)) from exc
            for entry in found:
                taken = installed.get(entry.name)
                if taken is not None:
                    raise DuplicateComponentError(
                        f"plugin {plugin_name!r} registers {a_label(kind)} named {entry.name!r} "
                        f"({entry.class_path}), but plugin {taken.plugin!r} "
                        f"({taken.class_path}) already provides one: rename it, or "
                        f"unregister {taken.plugin!r} first"
                    )

    # -- lookups -------------------------------------------------------------------------

    def names(self, kind: Kind) -> list[str]:
        """Sorted names of the registered components of ``kind``."""
        return sorted(self._entries(kind))

    def entry(self, kind: Kind, name: str) -> Entry:
        """The entry for ``name``, or an error that lists what is available."""
        try:
            return self._entries(kind)[name]
        except KeyError:
            clash = self._host.clash_error(kind, name)
            if clash is not None:
                raise clash from None
            label = KINDS[kind][1]
            available = self.names(kind)
            close = difflib.get_close_matches(name, available, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            broken = self._host.broken_plugins()
            advice = (
                f"Plugins that failed to load, which may provide it: {', '.join(map(repr, broken))}"
                "; `imacs plugins` says what is wrong with each."
                if broken
                else "Install a plugin that provides it, or run `imacs plugins` to see what is "
                "installed."
            )
            raise UnknownComponentError(
                f"no {label} named {name!r}; available: {', '.join(available) or 'none'}.{hint} "
                f"{advice}"
            ) from None

    def get(self, kind: Kind, name: str) -> type:
        """The registered class for ``name``.

        A class registered by reference is imported here; if that fails, or it is not what
        was registered, its plugin is listed as broken and a ``PluginError`` names it.
        """
        entry = self.entry(kind, name)
        try:
            return entry.cls
        except PluginError as exc:
            self._host.break_plugin(entry.plugin, str(exc))
            self._host.report_broken()
            raise

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
        # a plugin whose adapter registration is broken must be gone before it is asked
        self._entries("model_adapter")
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


def _fault(error: Exception, plugin_name: str, kind: Kind) -> str:
    if isinstance(error, PluginError):
        return str(error)
    return f"plugin {plugin_name!r} failed in {KINDS[kind][0]}: {type(error).__name__}: {error}"


def _describe(model: Any) -> str:
    if isinstance(model, str) or hasattr(model, "__fspath__"):
        return f"the model file {str(model)!r}"
    return f"a model of type {type(model).__module__}.{type(model).__qualname__}"


def get_component(kind: Kind, name: str, **params: Any) -> Any:
    """An installed component of ``kind``, by name, created with keyword ``params``.

    ``kind`` is one of ``"attribution_method"``, ``"segmenter"``, ``"featurizer"``,
    ``"metric"``, ``"clusterer"``, ``"measure"`` (a quality measure) and
    ``"model_adapter"`` (a model adapter wraps a model: load one with
    ``imacs.load_model(model, adapter=name)`` instead). Raises
    :class:`~imacs.errors.UnknownComponentError` listing the installed names when none is
    called ``name``, and :class:`~imacs.errors.InvalidInputError` for a parameter the
    component does not take.
    """
    from imacs.plugins import get_host

    _check_kind(kind)
    if kind == "model_adapter":
        raise InvalidInputError(
            f"a model adapter wraps a model: load one with imacs.load_model(model, "
            f"adapter={name!r}) instead of get_component"
        )
    return get_host().registry.create(kind, name, **params)


def component_names(kind: Kind) -> list[str]:
    """Sorted names of the installed components of ``kind`` (see :func:`get_component`)."""
    from imacs.plugins import get_host

    _check_kind(kind)
    return get_host().registry.names(kind)


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise InvalidInputError(
            f"unknown component kind {kind!r}; the kinds are: {', '.join(KINDS)}"
        )
