"""Any job type on this machine from its options alone (`wanhe run --kind K --options FILE`):
the job type checks, inspects and compiles them exactly as the farm's intake does, then the
one run layer (`wanhe.runs.local`) finds or resumes the job by its fingerprint and drives
it. Nothing here names a kind: a job type that is one module in `wanhe.jobtypes` runs here
as it is."""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanhe.config import Settings
from wanhe.jobtypes.base import InputError, IntakeContext, JobFolder
from wanhe.jobtypes.registry import UnknownJobKind, job_type
from wanhe.store.store import JobRow, Store


class KindError(ValueError):
    """A user mistake in what was asked (the kind, its options or inputs): one line."""


@dataclass(slots=True)
class KindOutcome:
    job: JobRow
    resumed: bool
    tasks_total: int
    tasks_skipped: int
    wall_s: float
    core_seconds: float
    deliverables: list[str]
    summary: str


def run_kind(
    kind: str, raw: dict[str, Any], *, settings: Settings, base: Path, output: Path,
    main: Path | None = None, name: str | None = None, workers: int = 1,
    on_prepared: Callable[[JobRow, bool, int, list[Any]], None] | None = None,
    on_event: Callable[[Any], None] | None = None,
) -> KindOutcome:
    """Run a job of `kind` with options `raw` here. Files the options name are relative to
    `base` (the options file's folder); what the job makes goes to `output`."""
    from wanhe.runs.local import NewJob, open_or_resume, run_local_job

    started = time.monotonic()
    try:
        jt = job_type(kind)
    except UnknownJobKind as exc:
        raise KindError(str(exc)) from None
    try:
        jt.check_main(None if main is None else main.name)
        options = jt.parse_options(raw)
        jt.check(options)
        context = IntakeContext(blender=settings.blender, local_paths=True, inputs=base,
                                cache_dir=settings.home / "cache")
        inspected = jt.inspect(context, main, options)
        output.mkdir(parents=True, exist_ok=True)
        folder = JobFolder(input=base, output=output, work=output / ".work")
        compiled = jt.compile(options, inspected, main, folder)
    except InputError as exc:
        raise KindError(f"{exc.field}: {exc.message}") from None
    store = Store(settings.db_url)
    try:
        local = open_or_resume(store, compiled.fingerprint, lambda: NewJob(
            name=name or (main.name if main else jt.title), kind=jt.kind, spec=compiled.spec,
            tasks=compiled.tasks, work_dir=str(folder.work)))
        if on_prepared is not None:
            on_prepared(local.job, local.resumed, local.done_before, local.tasks)
        # each worker gets its share of the cores: a task asks for what it uses
        threads = max(1, (os.cpu_count() or 1) // max(1, workers))
        run_local_job(store, local, settings=settings, threads=threads, workers=workers,
                      on_event=on_event, join_cluster=False)
        final = store.job(local.job.id)
        assert final is not None
        core = sum(store.core_seconds_by_job([final.id]).values())
        return KindOutcome(final, local.resumed, len(local.tasks), local.done_before,
                           time.monotonic() - started, core, jt.deliverables(final.spec),
                           jt.summary(final.spec))
    finally:
        store.dispose()
