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
import threading
from importlib.metadata import entry_points

ENV_VAR = "WANHE_PLUGINS"
GROUP = "wanhe.plugins"

_loaded = False
_lock = threading.Lock()


class PluginError(RuntimeError):
    """A plugin named by an entry point or WANHE_PLUGINS could not be imported."""


def plugin_modules() -> list[str]:
    """The modules to import: entry points first, then WANHE_PLUGINS, each once."""
    names = [ep.value.split(":")[0] for ep in entry_points(group=GROUP)]
    names += [n.strip() for n in os.environ.get(ENV_VAR, "").split(",") if n.strip()]
    return list(dict.fromkeys(names))


def load_plugins() -> None:
    """Import every plugin module once per process (thread-safe, idempotent)."""
    global _loaded
    if _loaded:
        return
    with _lock:
        if _loaded:
            return
        for name in plugin_modules():
            try:
                importlib.import_module(name)
            except Exception as exc:
                raise PluginError(
                    f"wanhe plugin {name!r} could not be imported ({type(exc).__name__}: {exc})"
                    f" — fix it, or remove it from {ENV_VAR} / the {GROUP!r} entry points"
                ) from exc
        _loaded = True
