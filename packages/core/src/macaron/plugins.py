"""The plugin host: built-ins, entry points of group ``macaron``, and run-time plugins.

Environment variables (documented in docs/plugins.md):

``MACARON_LOAD_PLUGINS``
    Comma-separated allow-list of entry-point plugin names. When set, only those
    load; set and empty, no entry-point plugin loads. Built-ins always load.
``MACARON_DISABLE_PLUGINS``
    Comma-separated block-list of plugin names, built-ins included.
``MACARON_STRICT_PLUGINS``
    ``1`` makes a plugin that fails to import stop macaron instead of being skipped.
``MACARON_TRACE_PLUGINS``
    ``1`` prints every hook call and its result to stderr.
"""

from __future__ import annotations

import importlib
import os
import sys
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from macaron import hookspecs

ENTRY_POINT_GROUP = "macaron"

# The core's own features, registered as plugins on the same hooks as everybody else's.
DEFAULT_PLUGINS = (
    "macaron.builtins.swagger2",
    "macaron.builtins.openapi3",
    "macaron.builtins.ping",
    "macaron.builtins.reporting",
    "macaron.builtins.requests",
    "macaron.builtins.auth",
    "macaron.builtins.docs",
)


class PluginLoadError(RuntimeError):
    """A plugin failed to import while MACARON_STRICT_PLUGINS was set."""


@dataclass
class PluginInfo:
    name: str
    module: str
    distribution: str | None = None
    version: str | None = None
    builtin: bool = False
    hooks: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "distribution": self.distribution,
            "version": self.version,
            "module": self.module,
            "builtin": self.builtin,
            "hooks": self.hooks,
        }


def _names_from_env(variable: str) -> set[str] | None:
    value = os.environ.get(variable)
    if value is None:
        return None
    return {name.strip() for name in value.split(",") if name.strip()}


class MacaronPluginManager(pluggy.PluginManager):
    """pluggy's manager, plus where each plugin came from and why some did not load."""

    def __init__(self) -> None:
        super().__init__(ENTRY_POINT_GROUP)
        self.add_hookspecs(hookspecs)
        self.origins: dict[str, PluginInfo] = {}
        self.failures: list[str] = []

    def register_plugin(self, plugin: Any, name: str | None = None) -> str:
        """Register a plugin object (module, class or instance) at run time; return its name."""
        registered = self.register(plugin, name=name)
        if registered is None:
            raise ValueError(f"plugin {name or plugin!r} is blocked (MACARON_DISABLE_PLUGINS)")
        if registered not in self.origins:
            self.origins[registered] = PluginInfo(registered, _module_name(plugin))
        return registered

    def load_builtins(self) -> None:
        for module_name in DEFAULT_PLUGINS:
            module = importlib.import_module(module_name)
            name = module_name.rsplit(".", 1)[-1]
            if self.is_blocked(name):
                continue
            self.register(module, name=name)
            self.origins[name] = PluginInfo(name, module_name, "macaron-core", _version("macaron-core"), builtin=True)

    def load_entrypoints(self, strict: bool | None = None) -> None:
        if strict is None:
            strict = os.environ.get("MACARON_STRICT_PLUGINS", "") not in ("", "0", "false")
        allowed = _names_from_env("MACARON_LOAD_PLUGINS")
        for entry_point in metadata.entry_points(group=ENTRY_POINT_GROUP):
            name = entry_point.name
            if self.is_blocked(name) or self.has_plugin(name):
                continue
            if allowed is not None and name not in allowed:
                continue
            dist = entry_point.dist
            dist_name = dist.metadata["Name"] if dist is not None else None
            dist_version = dist.version if dist is not None else None
            try:
                plugin = entry_point.load()
            except Exception as exc:  # any import-time failure of third-party code
                line = (
                    f"macaron: plugin {name!r} from {dist_name or 'an unknown distribution'} "
                    f"{dist_version or ''} failed to load: {type(exc).__name__}: {exc}".replace("  ", " ")
                )
                if strict:
                    raise PluginLoadError(line) from exc
                self.failures.append(line)
                print(line, file=sys.stderr)
                continue
            self.register(plugin, name=name)
            self.origins[name] = PluginInfo(name, _module_name(plugin), dist_name, dist_version)

    def plugin_infos(self) -> list[PluginInfo]:
        """Every registered plugin with the hooks it implements, built-ins first."""
        infos = []
        for name, plugin in self.list_name_plugin():
            if plugin is None:  # blocked
                continue
            info = self.origins.get(name) or PluginInfo(name, _module_name(plugin))
            info.hooks = sorted(caller.name for caller in self.get_hookcallers(plugin) or [])
            infos.append(info)
        return sorted(infos, key=lambda info: (not info.builtin, info.name))


def _module_name(plugin: Any) -> str:
    if isinstance(plugin, ModuleType):
        return plugin.__name__
    return getattr(plugin, "__module__", None) or type(plugin).__module__


def _version(distribution: str) -> str | None:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return None


def get_plugin_manager(load_entrypoints: bool = True) -> MacaronPluginManager:
    """A new plugin manager with the built-ins and, unless told not to, the installed plugins."""
    pm = MacaronPluginManager()
    for name in _names_from_env("MACARON_DISABLE_PLUGINS") or ():
        pm.set_blocked(name)
    pm.load_builtins()
    if load_entrypoints:
        pm.load_entrypoints()
    pm.check_pending()
    if os.environ.get("MACARON_TRACE_PLUGINS", "") not in ("", "0", "false"):
        pm.trace.root.setwriter(lambda message: print(message, end="", file=sys.stderr))
        pm.enable_tracing()
    return pm


_pm: MacaronPluginManager | None = None


def pm() -> MacaronPluginManager:
    """The process-wide plugin manager, created on first use."""
    global _pm
    if _pm is None:
        _pm = get_plugin_manager()
    return _pm


def reset() -> None:
    """Forget the process-wide manager, so the next ``pm()`` reads the environment again."""
    global _pm
    _pm = None
