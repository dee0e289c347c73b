"""Finding, loading and listing plugins.

Plugins come from three places, registered in this order:

1. the built-in modules in ``DEFAULT_PLUGINS``, which implement the public hooks exactly
   as a third-party plugin would;
2. the ``imacs`` entry-point group of every installed distribution;
3. objects registered at run time with :meth:`PluginHost.register` (tests, notebooks).

Environment variables control step 2 (and can block built-ins too):

``IMACS_LOAD_PLUGINS``
    Comma-separated entry-point or distribution names: only these installed plugins are
    loaded. Set to an empty string to load none.
``IMACS_DISABLE_PLUGINS``
    Comma-separated entry-point, distribution or built-in module names never to load.

Each plugin is checked on its own: that it imports, that every hook it implements exists
and takes arguments the hook offers, and that what it registers are components of the
hook's kind with names no other plugin uses. A plugin that fails any check is reported with
a :class:`~imacs.errors.PluginLoadWarning`, listed as broken with the reason, and removed
completely; the others keep working. When two plugins register components of one kind
under one name, both are broken: imacs cannot tell which one the user means, and neither
is preferred in silence. Asking for that name raises
:class:`~imacs.errors.DuplicateComponentError` naming both plugins. Two installed plugins
with one entry-point name are broken the same way.

Registration hooks are called the first time a component of their kind is needed (model
adapters import their framework when registered), so a plugin whose registration hook
fails is found then, and removed with all of its components. A plugin registered at run
time is checked at once, and :meth:`PluginHost.register` raises instead of listing it.
"""

from __future__ import annotations

import difflib
import importlib
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, PackageNotFoundError, entry_points, version
from typing import TYPE_CHECKING, Any, Literal

import pluggy

from imacs import hookspecs
from imacs.errors import DuplicateComponentError, PluginError, PluginLoadWarning

if TYPE_CHECKING:
    from imacs.registry import Entry, Kind, Registry

ENTRY_POINT_GROUP = "imacs"
LOAD_ENV = "IMACS_LOAD_PLUGINS"
DISABLE_ENV = "IMACS_DISABLE_PLUGINS"

DEFAULT_PLUGINS: tuple[str, ...] = (
    "imacs.adapters.function",
    "imacs.attribution.gradient",
    "imacs.attribution.gradient_times_input",
    "imacs.attribution.integrated_gradients",
    "imacs.attribution.smoothgrad",
    "imacs.attribution.split_ig",
    "imacs.attribution.guided_ig",
    "imacs.attribution.blur_ig",
    "imacs.attribution.occlusion",
    "imacs.attribution.pami",
    "imacs.attribution.xrai",
    "imacs.attribution.grad_cam",
    "imacs.attribution.dix",
    "imacs.attribution.iia",
    "imacs.segmentation.slic",
    "imacs.segmentation.quickshift",
    "imacs.segmentation.watershed",
    "imacs.segmentation.grid",
    "imacs.features.color",
    "imacs.features.texture",
    "imacs.features.shape",
    "imacs.features.embedding",
    "imacs.metrics.spearman",
    "imacs.metrics.top_k_iou",
    "imacs.metrics.ssim",
    "imacs.metrics.cosine",
    "imacs.segmentation.felzenszwalb",
    "imacs.comparison.clustering",
    "imacs.comparison.executor",
    "imacs.quality.insertion_deletion",
    "imacs.quality.road",
    "imacs.quality.infidelity",
    "imacs.quality.perturbation_tests",
    "imacs.quality.randomisation",
)

Status = Literal["loaded", "broken", "blocked"]
Source = Literal["builtin", "entry-point", "runtime"]


@dataclass
class PluginInfo:
    """One plugin as ``imacs plugins`` shows it."""

    name: str
    source: Source
    status: Status
    distribution: str | None = None
    version: str | None = None
    error: str | None = None
    hooks: list[str] = field(default_factory=list)
    components: dict[str, list[str]] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "source": self.source,
            "status": self.status,
            "distribution": self.distribution,
            "version": self.version,
            "error": self.error,
            "hooks": self.hooks,
            "components": self.components,
        }


def _names_from_env(environ: Mapping[str, str], variable: str) -> set[str] | None:
    value = environ.get(variable)
    if value is None:
        return None
    return {part.strip() for part in value.split(",") if part.strip()}


def _known_hooks() -> list[str]:
    return [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "imacs_spec")]


class PluginHost:
    """Owns the pluggy manager; the only place that loads plugins.

    Core code asks :attr:`registry` for components and never calls hooks itself.
    """

    def __init__(
        self,
        *,
        builtins: tuple[str, ...] = DEFAULT_PLUGINS,
        environ: Mapping[str, str] | None = None,
    ):
        self._builtins = builtins
        self._environ = os.environ if environ is None else environ
        self.pm = pluggy.PluginManager(hookspecs.PROJECT)
        self.pm.add_hookspecs(hookspecs)
        self._infos: dict[str, PluginInfo] = {}
        self._loaded = False
        self._registry: Registry | None = None
        # (kind, component name) -> the (plugin, class path) pairs that all claimed it
        self._clashes: dict[tuple[str, str], list[tuple[str, str]]] = {}
        self._unreported: list[str] = []

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        """Register built-in and installed plugins once; later calls do nothing."""
        if self._loaded:
            return
        self._loaded = True
        blocked = _names_from_env(self._environ, DISABLE_ENV) or set()
        core_version = _core_version()
        for module_name in self._builtins:
            info = PluginInfo(module_name, "builtin", "loaded", "imacs", core_version)
            if module_name in blocked:
                info.status = "blocked"
                self._list(info)
                continue
            try:
                module = importlib.import_module(module_name)
            except Exception as exc:  # a broken built-in must not take the others down
                self._add_broken(info, f"plugin {module_name!r} failed to import: {_say(exc)}")
                continue
            self._add(module, info)
        self._load_entry_points(blocked)
        # warnings go out once every plugin is in place, so that turning them into errors
        # (python -W error) cannot leave the host half-built
        self.report_broken()

    def _load_entry_points(self, blocked: set[str]) -> None:
        allowed = _names_from_env(self._environ, LOAD_ENV)
        seen: dict[str, str | None] = {}
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            dist_name, dist_version = _distribution_of(ep)
            if ep.name in seen and seen[ep.name] == dist_name:
                continue  # the same distribution found twice on sys.path
            seen.setdefault(ep.name, dist_name)
            info = PluginInfo(ep.name, "entry-point", "loaded", dist_name, dist_version)
            names = {ep.name, dist_name} - {None}
            if names & blocked or (allowed is not None and not names & allowed):
                info.status = "blocked"
                self._list(info)
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # any import failure must not take imacs down
                self._add_broken(info, f"plugin {ep.name!r} failed to import: {_say(exc)}")
                continue
            self._add(plugin, info)

    def _add(self, plugin: object, info: PluginInfo) -> None:
        """Register ``plugin`` under ``info.name``, or list it as broken saying why."""
        earlier = self._infos.get(info.name)
        if earlier is not None and earlier.status != "blocked":
            # Neither is preferred: which one comes first depends on sys.path order.
            clash = (
                f"plugins {_origin(earlier)} and {_origin(info)} are both named {info.name!r}; "
                "uninstall one of them, or block one by its distribution name with "
                f"{DISABLE_ENV}"
            )
            if earlier.status == "loaded":
                self.break_plugin(earlier.name, clash)
            self._add_broken(info, clash)
            return
        problem = self._register_hooks(plugin, info.name)
        if problem is not None:
            self._add_broken(info, problem)
            return
        info.hooks = self._hook_names(plugin)
        self._list(info)

    def _add_broken(self, info: PluginInfo, reason: str) -> None:
        info.status, info.error = "broken", reason
        self._list(info)
        self._unreported.append(_broken_warning(info))

    def _list(self, info: PluginInfo) -> None:
        # A loaded plugin is listed under the name pluggy knows it by; one that is not
        # loaded makes way for it, or goes beside a plugin of the same name.
        key = info.name
        if info.status == "loaded" and key in self._infos:
            self._list_beside(self._infos.pop(key))
        elif key in self._infos:
            self._list_beside(info)
            return
        self._infos[key] = info

    def _list_beside(self, info: PluginInfo) -> None:
        key = info.name
        while key in self._infos:
            key = f"{key} ({info.distribution or info.source})"
        self._infos[key] = info

    def _register_hooks(self, plugin: object, name: str) -> str | None:
        """Register the plugin's hooks with pluggy; on any fault undo it and say why."""
        unknown = self._unknown_hooks(plugin, name)
        if unknown is not None:
            return unknown
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            # older pluggy releases (pyproject allows 1.5) keep the hooks registered before
            # the faulty one; undo them so the host holds nothing of this plugin
            self._unregister_hooks(name, plugin)
            detail = "; ".join(line.strip() for line in str(exc).splitlines() if line.strip())
            return (
                f"plugin {name!r} implements a hook with the wrong arguments: {detail}. See "
                "docs/plugins.md for the signatures"
            )
        except ValueError as exc:  # pluggy: this very object is registered under another name
            return f"plugin {name!r} could not be registered: {exc}"
        return None

    def _unknown_hooks(self, plugin: object, name: str) -> str | None:
        known = _known_hooks()
        for attribute in dir(plugin):
            options = self.pm.parse_hookimpl_opts(plugin, attribute)
            if options is None or options.get("optionalhook"):
                continue
            hook = options.get("specname") or attribute
            if hook in known:
                continue
            close = difflib.get_close_matches(hook, known, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            return (
                f"plugin {name!r} implements unknown hook {hook!r}{hint}; the hooks are listed "
                "in imacs.hookspecs and docs/plugins.md"
            )
        return None

    def _unregister_hooks(self, name: str, plugin: object | None = None) -> None:
        registered = self.pm.get_plugin(name)
        if registered is not None and (plugin is None or registered is plugin):
            self.pm.unregister(name=name)

    def _hook_names(self, plugin: object) -> list[str]:
        return sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])

    # -- plugins found broken later --------------------------------------------------------

    def break_plugin(self, name: str, reason: str) -> None:
        """Remove a loaded plugin entirely and list it as broken with ``reason``.

        The registry calls this when a plugin's registration hook fails; the warning is
        sent by :meth:`report_broken`, once the registry is consistent again.
        """
        info = self._infos[name]
        self._unregister_hooks(name)
        info.status, info.error = "broken", reason
        info.hooks, info.components = [], {}
        if self._registry is not None:
            self._registry.forget(name)
        self._unreported.append(_broken_warning(info))

    def record_clash(self, kind: Kind, component: str, claims: list[Entry]) -> None:
        """Break every plugin in ``claims``, which all registered ``component`` of ``kind``."""
        from imacs.registry import a_label

        self._clashes[(kind, component)] = [(e.plugin, e.class_path) for e in claims]
        for entry in claims:
            others = [e for e in claims if e.plugin != entry.plugin]
            listed = " and ".join(f"{e.plugin!r} ({e.class_path})" for e in others)
            self.break_plugin(
                entry.plugin,
                f"plugin {entry.plugin!r} registers {a_label(kind)} named {component!r} "
                f"({entry.class_path}), and so does {listed}; imacs cannot tell which "
                f"one you mean, so neither plugin is loaded. Uninstall or disable one of them "
                f"({DISABLE_ENV}=name)",
            )

    def clash_error(self, kind: Kind, component: str) -> DuplicateComponentError | None:
        """The error for asking for a name that two plugins claimed, if that is the case."""
        from imacs.registry import a_label

        claims = self._clashes.get((kind, component))
        if claims is None:
            return None
        listed = " and ".join(f"{plugin!r} ({path})" for plugin, path in claims)
        return DuplicateComponentError(
            f"two plugins register {a_label(kind)} named {component!r}: {listed}; imacs "
            "cannot tell which one you mean, so neither plugin is loaded. Uninstall or "
            f"disable one of them ({DISABLE_ENV}=name) and the other one loads"
        )

    def report_broken(self) -> None:
        """Send a :class:`PluginLoadWarning` for each plugin found broken since the last call."""
        unreported, self._unreported = self._unreported, []
        for message in unreported:
            warnings.warn(message, PluginLoadWarning, stacklevel=2)

    # -- runtime registration (tests, notebooks) ------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object now, checked at once; the registry is rebuilt on next use.

        Raises :class:`~imacs.errors.PluginError` (naming the plugin) if it implements an
        unknown hook or one with wrong arguments, registers something that is not a
        component, or uses a component name another plugin has; the host is then left as
        it was.
        """
        self.load()
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        if name in self._infos:
            raise PluginError(
                f"a plugin named {name!r} is already known ({self._infos[name].status}); "
                "register this one under another name, or unregister the other first"
            )
        problem = self._register_hooks(plugin, name)
        if problem is not None:
            raise PluginError(problem)
        try:
            # the newcomer is not listed yet, so the registry holds only the others
            self.registry.check_newcomer(name, plugin)
        except BaseException:
            self._unregister_hooks(name, plugin)
            raise
        self._infos[name] = PluginInfo(name, "runtime", "loaded", hooks=self._hook_names(plugin))
        self._registry = None
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin registered by name; the registry is rebuilt on next use."""
        self._unregister_hooks(name)
        self._infos.pop(name, None)
        self._registry = None

    # -- what is installed ----------------------------------------------------------------

    @property
    def registry(self) -> Registry:
        """The typed registry of components, built on first use."""
        if self._registry is None:
            from imacs.registry import Registry

            self.load()
            self._registry = Registry(self)
        return self._registry

    def plugin_infos(self) -> list[PluginInfo]:
        """Every known plugin, loaded, broken or blocked, with what it provides."""
        registry = self.registry
        registry.collect_all()  # every fault is known before anything is listed
        for info in self._infos.values():
            info.components = registry.provided_by(info.name) if info.status == "loaded" else {}
        return list(self._infos.values())

    def broken_plugins(self) -> list[str]:
        """Names of the plugins listed as broken, in registration order."""
        return [info.name for info in self._infos.values() if info.status == "broken"]

    def loaded_plugins(self) -> list[tuple[str, object]]:
        """(name, plugin object) for every loaded plugin, in registration order."""
        return [
            (name, self.pm.get_plugin(name))
            for name, info in self._infos.items()
            if info.status == "loaded"
        ]


def _say(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _origin(info: PluginInfo) -> str:
    if info.source == "builtin":
        return f"{info.name!r} (built into imacs)"
    if info.source == "runtime":
        return f"{info.name!r} (registered at run time)"
    return f"{info.name!r} (from {info.distribution or 'an unknown distribution'})"


def _broken_warning(info: PluginInfo) -> str:
    where = f" ({info.distribution} {info.version})" if info.source == "entry-point" else ""
    return (
        f"{info.error}. imacs skips this plugin{where}; the others keep working, and "
        f"`imacs plugins` lists it as broken. Set {DISABLE_ENV}={info.name} to silence this, "
        "or fix or reinstall the plugin."
    )


def _core_version() -> str | None:
    try:
        return version("imacs")
    except PackageNotFoundError:
        return None


def _distribution_of(ep: EntryPoint) -> tuple[str | None, str | None]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return None, None
    return dist.metadata["Name"], dist.version


_host: PluginHost | None = None


def get_host() -> PluginHost:
    """The process-wide plugin host, created and loaded on first use."""
    global _host
    if _host is None:
        _host = PluginHost()
    _host.load()
    return _host


def reset() -> None:
    """Forget the loaded plugins; the next use finds them again (after an install)."""
    global _host
    _host = None
    importlib.invalidate_caches()
