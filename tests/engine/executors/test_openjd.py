"""The OpenJD executor on a real FarmWorker with real openjd-sessions sessions (bash actions):
environments kept across tasks, exits in reverse order, progress/status/fail messages,
NOTIFY_THEN_TERMINATE and TERMINATE cancels, timeouts, command not found, a failing onEnter,
and the worker's path mapping rules. Each test takes a second or two."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.openjd._util import as_request, bash, compiled, env, step, template
from wanhe.engine.worker import FarmWorker

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def worker() -> Iterator[FarmWorker]:
    w = FarmWorker("w1", node="n1", gpu_ids=())
    yield w
    w.shutdown()


def out_param() -> list[dict[str, Any]]:
    return [{"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT"}]


def test_environments_are_entered_once_per_session_and_exited_newest_first(
    worker: FarmWorker, tmp_path: Path,
) -> None:
    log = tmp_path / "events.log"
    doc = template(
        params=out_param(),
        job_envs=[env("Dcc", f"echo job-enter >> {log}; echo 'openjd_env: LOADED=yes'",
                      f"echo job-exit >> {log}")],
        steps=[
            step("Render", f"echo task {{{{Task.Param.F}}}} $LOADED $STEPVAR >> {log}",
                 params=[{"name": "F", "type": "INT", "range": "1-5"}],
                 envs=[env("Scene", f"echo step-enter >> {log}; echo 'openjd_env: STEPVAR=s'",
                           f"echo step-exit >> {log}")]),
            step("Encode", f"echo encode $LOADED ${{STEPVAR:-unset}} >> {log}",
                 dependencies=[{"dependsOn": "Render"}]),
        ],
    )
    tasks = compiled(doc, {"Out": str(tmp_path / "out")}, tmp_path)
    for task in tasks:
        result = worker.run(as_request(task, tmp_path))
        assert result["ok"], result
        assert result["warm"] == f"openjd:{task.payload['job']}:{task.payload['step']}"
        assert result["warm_scope"] == "job"
    worker.release(result["warm"])
    lines = log.read_text().splitlines()
    assert lines == [
        "job-enter", "step-enter",
        *[f"task {i} yes s" for i in range(1, 6)],
        "step-exit",  # the next step's task: this step's environment goes, the job's stays
        "encode yes unset",
        "job-exit",  # the job ended (release): the rest is exited
    ]
    second = (tmp_path / "logs" / "Render_F=2.log").read_text()
    assert "session kept from the previous task" in second


def test_a_task_of_another_job_ends_the_previous_session(worker: FarmWorker,
                                                        tmp_path: Path) -> None:
    log = tmp_path / "events.log"
    doc = template(job_envs=[env("E", f"echo enter >> {log}", f"echo exit >> {log}")],
                   steps=[step("S", f"echo run >> {log}")])
    first = compiled(doc, {}, tmp_path / "a")
    second = compiled(doc, {}, tmp_path / "b")  # same template, another job (folder)
    assert first[0].payload["job"] != second[0].payload["job"]
    for task, root in ((first[0], tmp_path / "a"), (second[0], tmp_path / "b")):
        assert worker.run(as_request(task, root))["ok"]
    worker.shutdown()
    assert log.read_text().split() == ["enter", "run", "exit", "enter", "run", "exit"]


def test_progress_status_and_fail_messages(worker: FarmWorker, tmp_path: Path) -> None:
    gate = tmp_path / "gate"
    doc = template(steps=[
        step("P", f"echo openjd_progress: 40; echo 'openjd_status: rendering tile 3'; "
                  f"while [ ! -e {gate} ]; do sleep 0.05; done; echo openjd_progress: 100"),
        step("F", "echo 'openjd_fail: the licence server refused'; exit 3"),
    ])
    tasks = compiled(doc, {}, tmp_path)
    seen: dict[str, Any] = {}

    def watch() -> None:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            activity = worker.activity()
            if activity["status"]:
                seen.update(activity)
                gate.touch()
                return
            time.sleep(0.05)

    watcher = threading.Thread(target=watch)
    watcher.start()
    done = worker.run(as_request(tasks[0], tmp_path))
    watcher.join()
    assert seen == {"progress": pytest.approx(0.4), "status": "rendering tile 3"}
    assert done["ok"] and done["output"]["status"] == "rendering tile 3"
    failed = worker.run(as_request(tasks[1], tmp_path))
    assert not failed["ok"] and failed["outcome"] == "failed"
    assert failed["error"] == "openjd_fail: the licence server refused"


@pytest.mark.parametrize("mode", ["NOTIFY_THEN_TERMINATE", "TERMINATE"])
def test_cancel_modes(worker: FarmWorker, tmp_path: Path, mode: str) -> None:
    marks = tmp_path / "marks"
    cancelation: dict[str, Any] = {"mode": mode}
    if mode == "NOTIFY_THEN_TERMINATE":
        cancelation["notifyPeriodInSeconds"] = 5
    doc = template(steps=[step(
        "Long", f"trap 'echo notified >> {marks}; sleep 0.5; echo tidied >> {marks}; exit 0' "
                f"TERM; echo started >> {marks}; for i in $(seq 200); do sleep 0.1; done",
        action={"cancelation": cancelation})])
    task = compiled(doc, {}, tmp_path)[0]
    answer: dict[str, Any] = {}
    runner = threading.Thread(target=lambda: answer.update(
        worker.run(as_request(task, tmp_path))))
    runner.start()
    deadline = time.monotonic() + 20
    while not (marks.exists() and "started" in marks.read_text()):
        assert time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    started = time.monotonic()
    worker.cancel()
    runner.join(30)
    assert answer["outcome"] == "cancelled"
    text = marks.read_text().split()
    if mode == "NOTIFY_THEN_TERMINATE":  # SIGTERM first: the action tidies up in its notice
        assert text == ["started", "notified", "tidied"]
    else:  # killed at once: no notice
        assert text == ["started"]
    assert time.monotonic() - started < 10


def test_timeout_and_command_not_found(worker: FarmWorker, tmp_path: Path) -> None:
    doc = template(steps=[
        step("Slow", "sleep 30", action={"timeout": 1}),
        {"name": "Missing", "script": {"actions": {"onRun": {
            "command": "ffmpeg-not-installed", "args": ["-i", "in.mov"]}}}},
    ])
    slow, missing = compiled(doc, {}, tmp_path)
    started = time.monotonic()
    timed_out = worker.run(as_request(slow, tmp_path))
    assert timed_out["outcome"] == "timeout" and time.monotonic() - started < 15
    gone = worker.run(as_request(missing, tmp_path))
    assert gone["outcome"] == "failed"
    assert gone["error"] == "command not found: ffmpeg-not-installed on n1"


def test_a_failing_on_enter_fails_the_task_with_the_environment_log(
    worker: FarmWorker, tmp_path: Path,
) -> None:
    doc = template(job_envs=[env("Licence", "echo 'licence server down: flexlm 27000'; exit 4")],
                   steps=[step("S", "echo never", params=[
                       {"name": "I", "type": "INT", "range": "1-2"}])])
    for task in compiled(doc, {}, tmp_path):
        answer = worker.run(as_request(task, tmp_path))
        assert answer["outcome"] == "failed"
        assert "job environment 'Licence' failed to enter" in answer["error"]
        assert "licence server down: flexlm 27000" in answer["error"]


def test_the_workers_path_mapping_rules_apply_to_path_parameters(
    worker: FarmWorker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    studio = tmp_path / "studio"
    (studio / "shots").mkdir(parents=True)
    (studio / "shots" / "plate.txt").write_text("plate on this worker\n")
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps({"version": "pathmapping-1.0", "path_mapping_rules": [
        {"source_path_format": "POSIX", "source_path": "/mnt/studio",
         "destination_path": str(studio)}]}))
    monkeypatch.setenv("WANHE_PATH_MAPPING", str(rules))
    out = tmp_path / "seen.txt"
    doc = template(
        params=[{"name": "Plate", "type": "PATH", "objectType": "FILE", "dataFlow": "IN"}],
        steps=[step("Read", f"cat {{{{Param.Plate}}}} > {out}; "
                            f"echo {{{{RawParam.Plate}}}} >> {out}")])
    task = compiled(doc, {"Plate": "/mnt/studio/shots/plate.txt"}, tmp_path)[0]
    assert worker.run(as_request(task, tmp_path))["ok"]
    assert out.read_text().splitlines() == ["plate on this worker",
                                            "/mnt/studio/shots/plate.txt"]


def test_a_worker_without_the_attribute_refuses_the_step(worker: FarmWorker,
                                                          tmp_path: Path) -> None:
    doc = template(steps=[step("Nuke", "true", hostRequirements={"attributes": [
        {"name": "attr.license", "anyOf": ["nuke"]}]})])
    answer = worker.run(as_request(compiled(doc, {}, tmp_path)[0], tmp_path))
    assert answer["outcome"] == "failed"
    assert "attr.license anyOf ['nuke']" in answer["error"]


def test_bash_helper_is_plain() -> None:
    assert bash("true") == {"command": "bash", "args": ["-c", "true"]}

