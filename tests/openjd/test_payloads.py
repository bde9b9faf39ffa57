"""An OpenJD action task's payload is typed: built by the job type's compiler, read back by
the executor; a row stored without the newer fields still reads."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.openjd._util import compiled, step, template
from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.openjd import OpenJDExecutor
from wanhe.lifecycle import TaskFailed
from wanhe.openjd.payloads import ActionTask
from wanhe.payloads import PayloadError


def test_every_compiled_action_payload_reads_back_as_what_was_built(tmp_path: Path) -> None:
    doc = template(steps=[
        step("A", "echo {{Task.Param.F}}", params=[{"name": "F", "type": "INT", "range": "1-3"}]),
        step("B", "true", dependencies=[{"dependsOn": "A"}]),
    ])
    tasks = [t for t in compiled(doc, {}, tmp_path) if t.kind == "openjd"]
    assert len(tasks) == 4
    for task in tasks:
        typed = ActionTask.read(task.payload)
        assert typed.stored() == task.payload
        assert typed.warm_key == f"openjd:{typed.job}:{typed.step}"
    assert [ActionTask.read(t.payload).params for t in tasks[:3]] == [
        {"F": {"type": "INT", "value": v}} for v in ("1", "2", "3")]  # OpenJD's strings


def test_a_row_without_the_newer_fields_still_reads() -> None:
    old = {"job": "k", "job_file": "/f.json", "job_root": "/jobs/1", "sessions": "/s",
           "step": "A", "params": {}, "index": 0}
    task = ActionTask.read(old)
    assert (task.adaptive, task.ledger, task.host, task.outputs) == (None, None, {}, [])


def test_a_bad_payload_fails_the_task_in_one_line() -> None:
    with pytest.raises(PayloadError, match="openjd task's payload is not valid: job_file"):
        ActionTask.read({"job": "k", "job_root": "/j", "sessions": "/s", "step": "A"})
    executor = OpenJDExecutor(WorkerInfo(name="w"))
    with pytest.raises(TaskFailed, match=r"payload is not valid: step"):
        executor.run("openjd", {"job": "k", "job_file": "/f", "job_root": "/j",
                                "sessions": "/s"}, TaskContext())
