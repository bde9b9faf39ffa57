"""A failing job never hangs: out of attempts, stranded by blocklists, or asking for what the
farm lacks, it fails within seconds with the reason in one line; outcomes are typed.

Real local workers (no Ray) running real commands through the command executor; the retry
rules come from a job type registered by this module, as a plugin's would be.
"""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from wanhe.engine.dispatcher import Dispatcher
from wanhe.engine.handles import LocalWorker
from wanhe.jobtypes.base import CompiledJob, Inspected, JobFolder, JobType
from wanhe.jobtypes.registry import register_job_type
from wanhe.lifecycle import RetryRules
from wanhe.model import JobState, Resources, TaskKind, TaskSpec
from wanhe.store.store import Store

KIND = "test_commands"


class _NoOptions(BaseModel):
    pass


@register_job_type
class CommandsJob(JobType):
    """Runs the command tasks its spec lists; its rules come from the spec."""

    kind = KIND
    title = "test commands"
    options_model = _NoOptions
    main_file = "none"

    def compile(self, options: BaseModel, inspected: Inspected, main: Path | None,
                folder: JobFolder) -> CompiledJob:
        raise NotImplementedError("stored directly by these tests")

    def retry_rules(self, spec: dict[str, Any]) -> RetryRules:
        return RetryRules(max_attempts=spec["max_attempts"], blocklist_after=spec["blocklist"])


def commands_job(store: Store, commands: list[list[str]], *, max_attempts: int = 3,
                 blocklist: int = 3, resources: Resources | None = None,
                 timeout_s: float | None = None) -> int:
    project = store.ensure_project("local")
    tasks = [
        TaskSpec(f"c{i}", TaskKind.COMMAND, {"argv": argv, "timeout_s": timeout_s, "grace_s": 0.5},
                 resources=resources or Resources(cpus=1))
        for i, argv in enumerate(commands)
    ]
    return store.create_job(
        project_id=project.id, name="cmds", kind=KIND,
        spec={"max_attempts": max_attempts, "blocklist": blocklist},
        fingerprint=f"cmds-{time.monotonic()}", tasks=tasks,
    )


def run_bounded(store: Store, tmp_path: Path, job: int, limit_s: float = 30.0) -> float:
    """Run the job on one local worker (and a local image worker); fail the test if it has
    not ended within `limit_s`. Returns the seconds it took."""
    dispatcher = Dispatcher(store, threads=1, workers=1, log_root=tmp_path / "logs",
                            local_workers=[LocalWorker("w0")], use_ray=False)
    started = time.monotonic()
    runner = threading.Thread(target=dispatcher.run_jobs, args=([job],), daemon=True)
    runner.start()
    runner.join(limit_s)
    try:
        assert not runner.is_alive(), f"job {job} still running after {limit_s} s: it hangs"
    finally:
        dispatcher.close()
    return time.monotonic() - started


def outcomes(store: Store, job: int) -> list[str]:
    return [str(a["outcome"]) for a in store.attempts(job)]


def test_a_task_out_of_attempts_fails_its_job_with_the_reason(
    store: Store, tmp_path: Path
) -> None:
    job = commands_job(store, [["sh", "-c", "echo boom >&2; exit 3"]])
    run_bounded(store, tmp_path, job)
    failed = store.job(job)
    assert failed is not None and failed.state is JobState.FAILED
    assert outcomes(store, job) == ["failed"] * 3
    assert failed.message.startswith("task c0 failed 3 time(s), last on ")
    assert "exited with status 3" in failed.message and "\n" not in failed.message


def test_max_attempts_one_runs_one_attempt(store: Store, tmp_path: Path) -> None:
    job = commands_job(store, [["false"]], max_attempts=1)
    run_bounded(store, tmp_path, job)
    assert outcomes(store, job) == ["failed"]
    assert store.job(job).state is JobState.FAILED  # type: ignore[union-attr]


def test_timeouts_are_typed_metered_and_end_the_job(store: Store, tmp_path: Path) -> None:
    burn = [sys.executable, "-c", "import time\nt=time.time()\nwhile True: pass"]
    job = commands_job(store, [burn], max_attempts=2, timeout_s=1.0)
    took = run_bounded(store, tmp_path, job)
    assert took < 15
    attempts = store.attempts(job)
    assert [a["outcome"] for a in attempts] == ["timeout", "timeout"]
    # killed, still metered (how much CPU 1 s of wall gives depends on the machine's load)
    assert all(a["cpu_s"] and a["cpu_s"] > 0 for a in attempts)
    failed = store.job(job)
    assert failed is not None and "timed out 2 time(s)" in failed.message


def test_a_node_blocklisted_for_the_job_strands_nothing_silently(
    store: Store, tmp_path: Path
) -> None:
    """Three tasks each fail once on the only node: it is blocklisted for the job, so their
    retries could never run; the job fails at once saying so."""
    once = "test -e {m} && exit 0; touch {m}; echo 'first try fails' >&2; exit 1"
    commands = [["sh", "-c", once.format(m=tmp_path / f"m{i}")] for i in range(3)]
    job = commands_job(store, commands, max_attempts=5, blocklist=3)
    took = run_bounded(store, tmp_path, job)
    assert took < 15
    failed = store.job(job)
    assert failed is not None and failed.state is JobState.FAILED
    assert "cannot run anywhere" in failed.message and "blocklisted" in failed.message
    assert "first try fails" in failed.message
    assert outcomes(store, job).count("failed") == 3  # no attempt after the blocklist


def test_a_gpu_task_on_a_farm_without_gpus_fails_at_once(store: Store, tmp_path: Path) -> None:
    job = commands_job(store, [["true"]], resources=Resources(cpus=1, gpus=1))
    took = run_bounded(store, tmp_path, job)
    assert took < 10
    failed = store.job(job)
    assert failed is not None and failed.state is JobState.FAILED
    assert failed.message == ("task c0 cannot run on this farm: it needs 1 GPU(s) and no "
                              "worker of this farm has one")
    assert outcomes(store, job) == []  # it never ran


@pytest.mark.parametrize("argv", [["sh", "-c", "exit 0"]])
def test_a_healthy_command_job_is_done(store: Store, tmp_path: Path, argv: list[str]) -> None:
    job = commands_job(store, [argv, argv])
    run_bounded(store, tmp_path, job)
    assert store.job(job).state is JobState.DONE  # type: ignore[union-attr]
    assert outcomes(store, job) == ["ok", "ok"]
