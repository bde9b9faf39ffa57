"""The job types registry, keyed by a job's kind.

Every module of the `wanhe.jobtypes` package is a job type that registers itself when the
registry first answers (a new kind is a new file there, named nowhere else); plugins
(`wanhe.plugins`) add theirs. A job stored with a kind this process does not know still runs
(its tasks carry all they need) under default rules, and is labelled plainly.
"""

from __future__ import annotations

from typing import TypeVar

from wanhe.jobtypes.base import JobType, TaskView
from wanhe.lifecycle import RetryRules
from wanhe.plugins import package_then_plugins

_IMPORTS = package_then_plugins("wanhe.jobtypes", skip=frozenset({"base", "registry"}))

_by_kind: dict[str, JobType] = {}

J = TypeVar("J", bound=type[JobType])


class UnknownJobKind(LookupError):
    """No job type is registered for a kind."""


def register_job_type(cls: J) -> J:
    """Class decorator: make `cls` the job type of `cls.kind`."""
    known = _by_kind.get(cls.kind)
    if known is not None and type(known).__qualname__ != cls.__qualname__:
        raise ValueError(f"job kind {cls.kind!r} is already {type(known).__name__}")
    _by_kind[cls.kind] = cls()
    return cls


def _load() -> None:
    _IMPORTS.ensure()


def _load_for(kind: str) -> None:
    """What a lookup of `kind` needs: its own module first (`wanhe.jobtypes.<kind>`), the
    others only when that is not where it lives (`ImportOnce.ensure_one`)."""
    module = f"wanhe.jobtypes.{kind.replace('-', '_')}"
    _IMPORTS.ensure_one(module, lambda: type(_by_kind.get(kind)).__module__ == module)


def job_type(kind: str) -> JobType:
    _load_for(kind)
    try:
        return _by_kind[kind]
    except KeyError:
        known = ", ".join(sorted(_by_kind))
        raise UnknownJobKind(
            f"unknown job kind {kind!r} (this farm runs: {known}) — install the plugin that "
            "provides it (WANHE_PLUGINS or an entry point)"
        ) from None


def find_job_type(kind: str) -> JobType | None:
    _load_for(kind)
    return _by_kind.get(kind)


def job_types() -> list[JobType]:
    _load()
    return [_by_kind[k] for k in sorted(_by_kind)]


def retry_rules(kind: str, spec: dict[str, object]) -> RetryRules:
    found = find_job_type(kind)
    if found is None:
        return RetryRules()
    return found.retry_rules(dict(spec))


def any_device(kind: str, spec: dict[str, object]) -> bool:
    found = find_job_type(kind)
    return False if found is None else found.any_device(dict(spec))


def task_label(kind: str, task: TaskView) -> str:
    found = find_job_type(kind)
    return f"task {task.key}" if found is None else found.task_label(task)
