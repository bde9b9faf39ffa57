"""Loading job types and executors that live outside wanhe.

A plugin is a Python module that registers job types (`wanhe.jobtypes.registry`) and task
executors (`wanhe.engine.executors.registry`) when imported. wanhe imports, once per process
(the service, `wanhe render`, and every Ray worker, which needs the executors):

- every entry point in the group ``wanhe.plugins`` of the installed packages
  (``[project.entry-points."wanhe.plugins"] mytool = "mystudio.wanhe_plugin"``);
- every module named in ``WANHE_PLUGINS`` (comma-separated), e.g. for a studio's own tools
  on the farm's shared path, or a test.

A plugin that fails to import stops the process with its name: a farm that silently lacks
a job type would queue work nothing can run.
"""

from __future__ import annotations

import importlib
import os
import pkgutil
import threading
from collections.abc import Callable
from importlib.metadata import entry_points

ENV_VAR = "WANHE_PLUGINS"
GROUP = "wanhe.plugins"


class PluginError(RuntimeError):
    """A plugin named by an entry point or WANHE_PLUGINS could not be imported."""


class ImportOnce:
    """Modules to import once per process, the first time something needs them (thread-safe).

    The registries use it for their built-ins, then the plugins; importing at first use
    rather than at import time keeps `wanhe` quick to start and free of import cycles."""

    def __init__(self, modules: Callable[[], list[str]], *, after: ImportOnce | None = None,
                 plugins: bool = False) -> None:
        self._modules = modules
        self._after = after
        self._plugins = plugins
        self._done = False
        self._listed: list[str] | None = None
        self._lock = threading.Lock()

    def ensure(self) -> None:
        if not self._done:
            self._import()
        # every time, not only the first: plugins that failed to import fail every caller
        if self._after is not None:
            self._after.ensure()

    def ensure_one(self, module: str, answered: Callable[[], bool]) -> None:
        """What a lookup of one kind needs: the module of this set named after it (when the
        set has one), then the `after` set (the plugins, always: one that fails still fails
        every lookup, and one that claims the same kind still clashes); the rest of this set
        only when `answered()` is still False. A short local run of one kind then does not
        import every job type's and executor's libraries."""
        if not self._done and module in self._names():
            importlib.import_module(module)
            if answered():
                if self._after is not None:
                    self._after.ensure()
                if answered():
                    return
        self.ensure()

    def look_up_ahead(self) -> None:
        """List the modules now, in a background thread (reading every installed package's
        entry points waits on the disk more than it computes): the next `ensure` imports
        that list."""
        threading.Thread(target=self._names, name="wanhe-plugins", daemon=True).start()

    def _names(self) -> list[str]:
        with self._lock:
            if self._listed is None:
                self._listed = self._modules()
            return self._listed

    def _import(self) -> None:
        with self._lock:
            if self._done:
                return
            names = self._listed if self._listed is not None else self._modules()
            if self._plugins:
                self._listed = None  # after a failed import, the next caller looks afresh
            for name in names:
                try:
                    importlib.import_module(name)
                except Exception as exc:
                    if not self._plugins:
                        raise
                    raise PluginError(
                        f"wanhe plugin {name!r} could not be imported ({type(exc).__name__}: "
                        f"{exc}) — fix it, or remove it from {ENV_VAR} / the {GROUP!r} entry "
                        "points"
                    ) from exc
            self._done = True


def plugin_modules() -> list[str]:
    """The modules to import: entry points first, then WANHE_PLUGINS, each once."""
    names = [ep.value.split(":")[0] for ep in entry_points(group=GROUP)]
    names += [n.strip() for n in os.environ.get(ENV_VAR, "").split(",") if n.strip()]
    return list(dict.fromkeys(names))


PLUGINS = ImportOnce(plugin_modules, plugins=True)


def find_plugins_ahead() -> None:
    """Look the plugins up in the background, for a command that will load them soon."""
    PLUGINS.look_up_ahead()


def load_plugins() -> None:
    """Import every plugin module once per process (thread-safe, idempotent)."""
    PLUGINS.ensure()


def package_modules(package: str, *, skip: frozenset[str] = frozenset()) -> list[str]:
    """Every module of `package` (one level, sorted), less those named in `skip`: a
    registry's built-ins are whatever modules its package holds, so adding one is adding a
    file, never editing a list."""
    found = importlib.import_module(package)
    return sorted(f"{package}.{m.name}" for m in pkgutil.iter_modules(found.__path__)
                  if m.name not in skip and not m.name.startswith("_"))


def package_then_plugins(package: str, *, skip: frozenset[str] = frozenset()) -> ImportOnce:
    """What a registry imports before it answers: every module of its package (see
    `package_modules`), then the plugins."""
    return ImportOnce(lambda: package_modules(package, skip=skip), after=PLUGINS)
