"""A generation job through the real store, dispatcher and state machine in this process (what
`wanhe gen` runs locally): running out of memory is an `out_of_memory` attempt, retried once
with a smaller batch, then failed with the reason. The device's limit is simulated (payload
`test_oom_over_batch`: there is no GPU here); everything else is real."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanhe.ai import catalog
from wanhe.ai.local import local_context
from wanhe.ai.models import inspect_model
from wanhe.ai.spec import GenSpec
from wanhe.engine.dispatcher import Dispatcher
from wanhe.engine.handles import LocalWorker
from wanhe.jobtypes.base import JobFolder
from wanhe.jobtypes.registry import job_type
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
