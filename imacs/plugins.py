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

A plugin that fails to import is reported with a :class:`~imacs.errors.PluginLoadWarning`
and listed as broken; the others keep working. A plugin that implements a hook imacs does
not know, or implements one with wrong arguments, is an error naming the plugin.
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
from imacs.errors import PluginError, PluginLoadWarning

if TYPE_CHECKING:
    from imacs.registry import Registry

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
)

Status = Literal["loaded", "broken", "blocked"]


@dataclass
class PluginInfo:
    """One plugin as ``imacs plugins`` shows it."""

    name: str
    source: Literal["builtin", "entry-point", "runtime"]
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

    # -- loading -------------------------------------------------------------------------

    def load(self) -> None:
        """Register built-in and installed plugins once; later calls do nothing."""
        if self._loaded:
            return
        self._loaded = True
        blocked = _names_from_env(self._environ, DISABLE_ENV) or set()
        core_version = _core_version()
        for module_name in self._builtins:
            if module_name in blocked:
                self._infos[module_name] = PluginInfo(
                    module_name, "builtin", "blocked", "imacs", core_version
                )
                continue
            module = importlib.import_module(module_name)
            self._register(module, module_name, "builtin", "imacs", core_version)
        self._load_entry_points(blocked)
        self._check_unknown_hooks()

    def _load_entry_points(self, blocked: set[str]) -> None:
        allowed = _names_from_env(self._environ, LOAD_ENV)
        seen: set[str] = set()
        for ep in entry_points(group=ENTRY_POINT_GROUP):
            if ep.name in seen:  # the same distribution found twice on sys.path
                continue
            seen.add(ep.name)
            dist_name, version = _distribution_of(ep)
            names = {ep.name, dist_name} - {None}
            if names & blocked or (allowed is not None and not names & allowed):
                self._infos[ep.name] = PluginInfo(
                    ep.name, "entry-point", "blocked", dist_name, version
                )
                continue
            try:
                plugin = ep.load()
            except Exception as exc:  # any import failure must not take imacs down
                message = f"{type(exc).__name__}: {exc}"
                self._infos[ep.name] = PluginInfo(
                    ep.name, "entry-point", "broken", dist_name, version, error=message
                )
                warnings.warn(
                    f"imacs plugin {ep.name!r} (from {dist_name or 'an unknown distribution'}) "
                    f"failed to import and is skipped: {message}. Set {DISABLE_ENV}={ep.name} "
                    "to silence this, or reinstall the plugin.",
                    PluginLoadWarning,
                    stacklevel=3,
                )
                continue
            self._register(plugin, ep.name, "entry-point", dist_name, version)

    def _register(
        self,
        plugin: object,
        name: str,
        source: Literal["builtin", "entry-point", "runtime"],
        distribution: str | None = None,
        version: str | None = None,
    ) -> None:
        if self.pm.has_plugin(name):
            raise PluginError(
                f"two plugins are named {name!r}: rename one of them or disable one with "
                f"{DISABLE_ENV}"
            )
        try:
            self.pm.register(plugin, name=name)
        except pluggy.PluginValidationError as exc:
            raise PluginError(
                f"plugin {name!r} implements a hook with the wrong arguments: {exc}. See "
                f"docs/plugins.md for the signatures, or disable it with {DISABLE_ENV}={name}"
            ) from exc
        hooks = sorted(caller.name for caller in self.pm.get_hookcallers(plugin) or [])
        self._infos[name] = PluginInfo(name, source, "loaded", distribution, version, hooks=hooks)

    def _check_unknown_hooks(self) -> None:
        known = [name for name in dir(hookspecs) if hasattr(getattr(hookspecs, name), "imacs_spec")]
        for caller_name, caller in vars(self.pm.hook).items():
            if caller.spec is not None:
                continue
            for impl in caller.get_hookimpls():
                if impl.optionalhook:
                    continue
                close = difflib.get_close_matches(caller_name, known, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise PluginError(
                    f"plugin {impl.plugin_name!r} implements unknown hook {caller_name!r}"
                    f"{hint}; the hooks are listed in imacs.hookspecs and docs/plugins.md. "
                    f"Disable the plugin with {DISABLE_ENV}={impl.plugin_name} meanwhile."
                )

    # -- runtime registration (tests, notebooks) ------------------------------------------

    def register(self, plugin: object, name: str | None = None) -> str:
        """Register a plugin object now; the registry is rebuilt on next use."""
        self.load()
        name = name or getattr(plugin, "__name__", None) or type(plugin).__name__
        self._register(plugin, name, "runtime")
        self._check_unknown_hooks()
        self._registry = None
        return name

    def unregister(self, name: str) -> None:
        """Remove a plugin registered by name; the registry is rebuilt on next use."""
        self.pm.unregister(name=name)
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
        infos = []
        for info in self._infos.values():
            info.components = registry.provided_by(info.name)
            infos.append(info)
        return infos

    def loaded_plugins(self) -> list[tuple[str, object]]:
        """(name, plugin object) for every loaded plugin, in registration order."""
        return [
            (name, self.pm.get_plugin(name))
            for name, info in self._infos.items()
            if info.status == "loaded"
        ]


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
