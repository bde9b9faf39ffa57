"""A generation job through the real store, dispatcher and state machine in this process (what
`wanhe gen` runs locally): running out of memory is an `out_of_memory` attempt, retried once
with a smaller batch, then failed with the reason. The device's limit is simulated (payload
`test_oom_over_batch`: there is no GPU here); everything else is real."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from wanhe.ai import catalog
from wanhe.ai.models import inspect_model
from wanhe.ai.spec import GenSpec
from wanhe.engine.dispatcher import Dispatcher
from wanhe.engine.handles import LocalWorker
from wanhe.jobtypes.base import JobFolder
from wanhe.jobtypes.registry import job_type
from wanhe.runs.gen import local_context
from wanhe.store.store import Store


@pytest.mark.parametrize(("limit", "outcomes", "state"), [
    (1, ["out_of_memory", "ok"], "done"),
    (0, ["out_of_memory", "out_of_memory"], "failed"),
])
def test_out_of_memory_is_retried_smaller_then_fails(
    tmp_path: Path, tiny_sd: Path, limit: int, outcomes: list[str], state: str
) -> None:
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    try:
        project = store.ensure_project("local")
        catalog.add_model(store, "sd", inspect_model(tiny_sd))
        spec = GenSpec.model_validate({"batch": 2, "score": False, "shots": [
            {"model": "sd", "prompt": "fox", "size": "32x32", "candidates": 2, "steps": 1}]})
        kind = job_type("gen")
        inspected = kind.inspect(local_context(store, project.id), None, spec)
        out = tmp_path / "out"
        compiled = kind.compile(spec, inspected, None, JobFolder(out, out, out / ".work"))
        for task in compiled.tasks:
            task.payload["test_oom_over_batch"] = limit
        job = store.create_job(project_id=project.id, name="g", kind="gen",
                               spec=compiled.spec, fingerprint=compiled.fingerprint,
                               tasks=compiled.tasks)
        dispatcher = Dispatcher(store, threads=2, workers=1, log_root=tmp_path / "logs",
                                local_workers=[LocalWorker("w0")], use_ray=False)
        try:
            dispatcher.run_jobs([job])
        finally:
            dispatcher.close()
        assert [a["outcome"] for a in store.attempts(job)] == outcomes
        final = store.job(job)
        assert final is not None and final.state.value == state
        if state == "failed":
            assert "out of memory" in final.message and "2 time(s)" in final.message
        else:
            assert len(list(out.glob("shot000/c00*.png"))) == 2
    finally:
        store.dispose()


def test_a_paused_local_gen_job_resumes_like_every_other_kind(
    tmp_path: Path, tiny_sd: Path
) -> None:
    """`wanhe pause` between two `wanhe gen` runs: the second run queues it and finishes it
    (it used to stay paused: gen had its own resume, which ignored PAUSED)."""
    from wanhe.config import Settings
    from wanhe.model import JobState
    from wanhe.runs.gen import run_local

    settings = Settings(home=tmp_path / "home", db=f"sqlite:///{tmp_path / 'db.sqlite'}")
    store = Store(settings.db_url)
    try:
        catalog.add_model(store, "sd", inspect_model(tiny_sd))
    finally:
        store.dispose()
    spec = GenSpec.model_validate({"score": False, "shots": [
        {"model": "sd", "prompt": "fox", "size": "32x32", "candidates": 2, "steps": 1}]})

    def pause(job: Any, tasks: list[Any]) -> None:  # paused before any task starts
        other = Store(settings.db_url)
        try:
            other.set_job_state(job.id, JobState.PAUSED)
        finally:
            other.dispose()

    out = tmp_path / "out"
    first = run_local(spec, settings=settings, output=out, on_job=pause)
    assert first.job.state is JobState.PAUSED and not first.resumed
    again = run_local(spec, settings=settings, output=out)
    assert again.resumed and again.job.id == first.job.id
    assert again.job.state is JobState.DONE, again.job.message
    assert len(list(out.glob("shot000/c00*.png"))) == 2
