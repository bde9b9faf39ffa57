"""The executors registry: which executor class runs which task kind.

Every module of the `wanhe.engine.executors` package registers its executors when this
module first answers (a new executor is a new file there); plugins (`wanhe.plugins`) add
theirs. A kind has exactly one executor: registering a second one for it is an error.
"""

from __future__ import annotations

from typing import TypeVar

from wanhe.engine.executors.base import Executor
from wanhe.plugins import package_then_plugins

_IMPORTS = package_then_plugins("wanhe.engine.executors",
                                skip=frozenset({"base", "registry"}))

_by_kind: dict[str, type[Executor]] = {}

E = TypeVar("E", bound=type[Executor])


class UnknownTaskKind(LookupError):
    """No executor is registered for a task kind."""


def register_executor(cls: E) -> E:
    """Class decorator: `cls` runs every kind in `cls.kinds`."""
    if not cls.kinds:
        raise ValueError(f"{cls.__name__} names no task kinds")
    for kind in cls.kinds:
        known = _by_kind.get(kind)
        if known is not None and known is not cls and known.__qualname__ != cls.__qualname__:
            raise ValueError(f"task kind {kind!r} already runs on {known.__name__}")
        _by_kind[kind] = cls
    return cls


def _load() -> None:
    _IMPORTS.ensure()


def executor_class(kind: str) -> type[Executor]:
    # its own module first (`wanhe.engine.executors.<kind>`), the others only when that is
    # not where it lives (`ImportOnce.ensure_one`)
    module = f"wanhe.engine.executors.{kind.replace('-', '_')}"
    _IMPORTS.ensure_one(module, lambda: getattr(_by_kind.get(kind), "__module__", "") == module)
    try:
        return _by_kind[kind]
    except KeyError:
        known = ", ".join(sorted(_by_kind))
        raise UnknownTaskKind(
            f"no executor runs task kind {kind!r} on this worker (known: {known}) — install "
            "the plugin that provides it on every worker (WANHE_PLUGINS or an entry point)"
        ) from None


def known_kinds() -> list[str]:
    _load()
    return sorted(_by_kind)
