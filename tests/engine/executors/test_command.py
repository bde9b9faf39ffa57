"""CommandExecutor against real processes (sh, sleep, python -c); each test takes seconds."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.command import (
    CommandExecutor,
    parse_progress,
    sanitise_key,
)
from wanhe.lifecycle import (
    AttemptError,
    TaskCancelled,
    TaskFailed,
    TaskOutOfMemory,
    TaskSilent,
    TaskTimedOut,
)
from wanhe.sandbox.box import mode as sandbox_mode

PY = sys.executable
pytestmark = pytest.mark.timeout(30)


class Recorder:
    """A TaskContext that keeps what the attempt logged and reported."""

    def __init__(self, key: str = "job1-t1") -> None:
        self.lines: list[str] = []
        self.progress: list[float] = []
        self.seen = threading.Event()  # a line was logged
        self.ctx = TaskContext(log=self._log, progress=self.progress.append, key=key)

    def _log(self, line: str) -> None:
        self.lines.append(line)
        self.seen.set()


@pytest.fixture
def executor() -> Iterator[CommandExecutor]:
    ex = CommandExecutor(WorkerInfo(name="w1", node="n1"))
    yield ex
    ex.close()
    if ex.last_pgid is not None:
        assert group_gone(ex.last_pgid), "an attempt left a process of its group behind"


def group_gone(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return True
    return False


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def run(ex: CommandExecutor, payload: dict[str, Any], rec: Recorder | None = None) -> Any:
    rec = rec or Recorder()
    return ex.run("command", payload, rec.ctx)


def fails(ex: CommandExecutor, payload: dict[str, Any], error: type[AttemptError],
          rec: Recorder | None = None) -> tuple[AttemptError, float]:
    started = time.monotonic()
    with pytest.raises(error) as info:
        run(ex, payload, rec)
    assert type(info.value) is error
    return info.value, time.monotonic() - started


# ---------------------------------------------------------------------- success


def test_registered_for_command_kind() -> None:
    from wanhe.engine.executors import registry

    assert CommandExecutor.kinds == frozenset({"command"})
    assert registry._by_kind["command"] is CommandExecutor


def test_success_logs_lines_and_progress(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    script = ("echo hello; echo 'openjd_progress: 25'; echo oops >&2; "
              "echo 'openjd_progress: 100.0'; echo bye")
    result = run(executor, {"argv": ["sh", "-c", script], "work_root": str(tmp_path)}, rec)
    assert rec.lines == ["hello", "openjd_progress: 25", "oops", "openjd_progress: 100.0",
                         "bye"]
    assert rec.progress == [0.25, 1.0]
    assert result.output["exit_code"] == 0
    assert Path(result.output["cwd"]).is_dir()
    assert result.wall_s > 0 and result.cpu_s >= 0 and result.peak_rss >= 0


def test_progress_lines_parse() -> None:
    assert parse_progress("openjd_progress: 12.5") == 0.125
    assert parse_progress("  openjd_progress:50%") == 0.5
    assert parse_progress("openjd_progress: 250") == 1.0
    assert parse_progress("openjd_progress: nan") is None
    assert parse_progress("openjd_progress: soon") is None
    assert parse_progress("progress: 50") is None
    assert parse_progress("x openjd_progress: 50") is None


def test_env_and_explicit_cwd(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    cwd = tmp_path / "made" / "for" / "it"  # does not exist yet: created
    code = "import os; print(os.getcwd()); print(os.environ['WANHE_X'])"
    result = run(executor, {"argv": [PY, "-c", code], "cwd": str(cwd),
                            "env": {"WANHE_X": "forty two"}}, rec)
    assert rec.lines == [str(cwd), "forty two"]
    assert result.output == {"exit_code": 0, "cwd": str(cwd)}


def test_fresh_cwd_named_after_key_is_kept(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder(key="job 7/frame:3")
    result = run(executor, {"argv": ["sh", "-c", "pwd; echo made > out.txt"],
                            "work_root": str(tmp_path / "root")}, rec)
    cwd = Path(result.output["cwd"])
    assert cwd.parent == tmp_path / "root"
    assert cwd.name.startswith(sanitise_key("job 7/frame:3") + "-")
    assert "/" not in sanitise_key("job 7/frame:3") and " " not in sanitise_key("job 7/frame:3")
    assert rec.lines == [str(cwd)]
    assert (cwd / "out.txt").read_text() == "made\n"  # kept for inspection
    second = run(executor, {"argv": ["true"], "work_root": str(tmp_path / "root")},
                 Recorder(key="job 7/frame:3"))
    assert second.output["cwd"] != str(cwd)  # each attempt gets a fresh one


@pytest.mark.parametrize(("gpu_ids", "seen"), [((), ""), (("0",), "0"), (("1", "3"), "1,3")])
def test_cuda_visible_devices_from_worker(gpu_ids: tuple[str, ...], seen: str,
                                          tmp_path: Path) -> None:
    ex = CommandExecutor(WorkerInfo(gpu_ids=gpu_ids))
    rec = Recorder()
    code = "import os; print(repr(os.environ['CUDA_VISIBLE_DEVICES']))"
    run(ex, {"argv": [PY, "-c", code], "work_root": str(tmp_path)}, rec)
    assert rec.lines == [repr(seen)]


def test_payload_env_may_set_cuda_visible_devices(tmp_path: Path) -> None:
    ex = CommandExecutor(WorkerInfo(gpu_ids=()))
    rec = Recorder()
    run(ex, {"argv": ["sh", "-c", 'echo "[$CUDA_VISIBLE_DEVICES]"'], "work_root": str(tmp_path),
             "env": {"CUDA_VISIBLE_DEVICES": "2"}}, rec)
    assert rec.lines == ["[2]"]


def test_stdin_is_fed(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    run(executor, {"argv": ["cat"], "stdin": "line one\nline two\n", "work_root": str(tmp_path)},
        rec)
    assert rec.lines == ["line one", "line two"]


def test_cpu_seconds_of_a_successful_child(executor: CommandExecutor, tmp_path: Path) -> None:
    code = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.4: pass"
    result = run(executor, {"argv": [PY, "-c", code], "work_root": str(tmp_path)})
    assert result.cpu_s > 0.3


def test_peak_rss_is_the_commands_not_the_workers(executor: CommandExecutor,
                                                  tmp_path: Path) -> None:
    code = "import time\nx = bytearray(200 * 2**20)\nprint('big', flush=True)\ntime.sleep(1.2)"
    big = run(executor, {"argv": [PY, "-c", code], "work_root": str(tmp_path)})
    assert big.peak_rss > 190 * 2**20
    small = run(executor, {"argv": ["sleep", "0.6"], "work_root": str(tmp_path)})
    assert small.peak_rss < 100 * 2**20


def test_leftover_background_process_is_stopped(executor: CommandExecutor,
                                                tmp_path: Path) -> None:
    rec = Recorder()
    result = run(executor, {"argv": ["sh", "-c", "sleep 30 & echo $!"],
                            "work_root": str(tmp_path), "grace_s": 1}, rec)
    assert result.output["exit_code"] == 0
    background = [int(line) for line in rec.lines if line.isdigit()]
    assert len(background) == 1 and pid_gone(background[0])
    assert any("left processes running" in line for line in rec.lines)
    assert executor.last_pgid is not None and group_gone(executor.last_pgid)


# ---------------------------------------------------------------------- failures


def test_nonzero_exit_is_task_failed_with_output(executor: CommandExecutor,
                                                 tmp_path: Path) -> None:
    err, _ = fails(executor, {"argv": ["sh", "-c", "echo working; echo 'no such frame' >&2; "
                                       "exit 3"], "work_root": str(tmp_path)}, TaskFailed)
    message = str(err)
    assert message.splitlines()[0] == ("command 'sh' exited with status 3; "
                                       "last output: no such frame")
    assert "working" in message
    assert err.cpu_s is not None and err.wall_s is not None and err.peak_rss is not None


def test_killed_by_sigkill_is_out_of_memory(executor: CommandExecutor, tmp_path: Path) -> None:
    err, _ = fails(executor, {"argv": ["sh", "-c", "echo eating; kill -KILL $$"],
                              "work_root": str(tmp_path)}, TaskOutOfMemory)
    assert "killed by SIGKILL" in str(err) and "out-of-memory" in str(err)
    assert err.cpu_s is not None


def test_killed_by_another_signal_is_task_failed(executor: CommandExecutor,
                                                 tmp_path: Path) -> None:
    err, _ = fails(executor, {"argv": ["sh", "-c", "kill -USR1 $$"],
                              "work_root": str(tmp_path)}, TaskFailed)
    assert "killed by signal SIGUSR1" in str(err)


def test_timeout_kills_the_whole_tree(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    # limits of 1.5 s or more: sh must print its lines first, even on a loaded machine
    err, took = fails(executor, {"argv": ["sh", "-c", "echo $$; sleep 30 & echo $!; sleep 30"],
                                 "timeout_s": 1.5, "grace_s": 3, "work_root": str(tmp_path)},
                      TaskTimedOut, rec)
    assert 1.5 <= took < 4.5  # SIGTERM was enough: no grace period spent
    pgid, grandchild = int(rec.lines[0]), int(rec.lines[1])
    assert pgid == executor.last_pgid
    assert group_gone(pgid) and pid_gone(grandchild)
    assert "timeout_s=1.5" in str(err) and err.wall_s is not None and err.wall_s >= 1.5


def test_sigterm_trapping_tree_is_sigkilled_after_grace(executor: CommandExecutor,
                                                        tmp_path: Path) -> None:
    rec = Recorder()
    script = 'trap "" TERM; echo $$; sleep 30 & sleep 30'  # the sleeps inherit the ignore
    _, took = fails(executor, {"argv": ["sh", "-c", script], "timeout_s": 1.5, "grace_s": 0.7,
                               "work_root": str(tmp_path)}, TaskTimedOut, rec)
    assert 2.1 <= took < 4.5  # the limit, then the grace period: SIGKILL
    assert group_gone(int(rec.lines[0]))


def test_silence_limit(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    # 1.5 s: sh must print its line first, even on a loaded machine (0.5 s did not, once)
    err, took = fails(executor, {"argv": ["sh", "-c", "echo start; sleep 30"], "silence_s": 1.5,
                                 "grace_s": 1, "work_root": str(tmp_path)}, TaskSilent, rec)
    assert 1.5 <= took < 4.0
    assert rec.lines == ["start"]
    assert "silence_s=1.5" in str(err) and "last output: start" in str(err)


def test_output_keeps_silence_limit_away(executor: CommandExecutor, tmp_path: Path) -> None:
    # 4.8 s of run against a 2.5 s silence limit: each line resets it. The limit leaves room
    # for Python's start on a loaded machine (0.6 s did not, at a load of 8 on 2 cores).
    code = "import time\nfor i in range(6):\n    print(i, flush=True)\n    time.sleep(0.8)"
    rec = Recorder()
    run(executor, {"argv": [PY, "-c", code], "silence_s": 2.5, "work_root": str(tmp_path)}, rec)
    assert rec.lines == [str(i) for i in range(6)]


BURN_THEN_SLEEP = ("import time\nt = time.process_time()\n"
                   "while time.process_time() - t < 0.2: pass\n"
                   "print('burnt', flush=True)\ntime.sleep(30)")


@pytest.mark.parametrize("through_shell", [False, True], ids=["child", "grandchild"])
def test_killed_attempt_keeps_its_cpu_seconds(executor: CommandExecutor, tmp_path: Path,
                                              through_shell: bool) -> None:
    argv = [PY, "-c", BURN_THEN_SLEEP]
    if through_shell:  # the burner is a grandchild; sh dies on SIGTERM first or with it
        argv = ["sh", "-c", f'"{PY}" -c "$0"; echo never', BURN_THEN_SLEEP]
    rec = Recorder()
    err, _ = fails(executor, {"argv": argv, "timeout_s": 4.0, "grace_s": 1,
                              "work_root": str(tmp_path)}, TaskTimedOut, rec)
    assert rec.lines == ["burnt"]  # 4 s of wall time leaves room on a loaded machine
    assert err.cpu_s is not None and err.cpu_s > 0.15


def test_cancel_from_another_thread(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    caught: list[BaseException] = []
    ended = threading.Event()

    def attempt() -> None:
        try:
            run(executor, {"argv": ["sh", "-c", "echo $$; sleep 30 & sleep 30"], "grace_s": 1,
                           "work_root": str(tmp_path)}, rec)
        except BaseException as e:
            caught.append(e)
        ended.set()

    thread = threading.Thread(target=attempt)
    thread.start()
    assert rec.seen.wait(5)
    asked = time.monotonic()
    executor.cancel()
    assert ended.wait(1 + 1)  # grace_s + 1
    assert time.monotonic() - asked < 2
    thread.join()
    assert len(caught) == 1 and type(caught[0]) is TaskCancelled
    assert group_gone(int(rec.lines[0]))
    assert caught[0].wall_s is not None


def test_cancel_of_sigterm_trapping_child_within_grace(executor: CommandExecutor,
                                                       tmp_path: Path) -> None:
    rec = Recorder()
    caught: list[BaseException] = []

    def attempt() -> None:
        try:
            run(executor, {"argv": ["sh", "-c", 'trap "" TERM; echo $$; sleep 30'],
                           "grace_s": 0.5, "work_root": str(tmp_path)}, rec)
        except BaseException as e:
            caught.append(e)

    thread = threading.Thread(target=attempt)
    thread.start()
    assert rec.seen.wait(5)
    asked = time.monotonic()
    executor.cancel()
    thread.join(0.5 + 1)
    assert not thread.is_alive()
    assert 0.5 <= time.monotonic() - asked < 1.5
    assert len(caught) == 1 and type(caught[0]) is TaskCancelled
    assert group_gone(int(rec.lines[0]))


def test_task_context_cancelled_event_also_stops(executor: CommandExecutor,
                                                 tmp_path: Path) -> None:
    rec = Recorder()
    threading.Timer(0.3, rec.ctx.cancelled.set).start()
    _, took = fails(executor, {"argv": ["sleep", "30"], "work_root": str(tmp_path)},
                    TaskCancelled, rec)
    assert took < 2


def test_close_kills_the_running_attempt(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    caught: list[BaseException] = []

    def attempt() -> None:
        try:
            run(executor, {"argv": ["sh", "-c", 'trap "" TERM; echo $$; sleep 30'],
                           "work_root": str(tmp_path)}, rec)
        except BaseException as e:
            caught.append(e)

    thread = threading.Thread(target=attempt)
    thread.start()
    assert rec.seen.wait(5)
    started = time.monotonic()
    executor.close()  # SIGKILL at once, whatever grace_s is (5 s by default)
    assert time.monotonic() - started < 2
    thread.join(2)
    assert not thread.is_alive()
    assert len(caught) == 1 and type(caught[0]) is TaskCancelled
    assert group_gone(int(rec.lines[0]))


def test_close_when_idle_is_harmless() -> None:
    ex = CommandExecutor(WorkerInfo())
    ex.close()
    ex.cancel()


# ---------------------------------------------------------------------- bad tasks


@pytest.mark.parametrize(("payload", "words"), [
    ({"argv": []}, ["argv", "at least 1"]),
    ({}, ["argv", "Field required"]),
    ({"argv": [""]}, ["argv", "empty"]),
    ({"argv": ["sh", 3]}, ["argv[1]", "string"]),
    ({"argv": ["true"], "shell": True}, ["shell", "Extra inputs"]),
    ({"argv": ["true"], "timeout_s": -1}, ["timeout_s", "greater than 0"]),
    ({"argv": ["true"], "env": {"A": 1}}, ["env.A", "string"]),
    ({"argv": ["true"], "env": {"A=B": "1"}}, ["env", "not a valid environment variable"]),
])
def test_bad_payload_names_the_field(executor: CommandExecutor, payload: dict[str, Any],
                                     words: list[str]) -> None:
    err, _ = fails(executor, payload, TaskFailed)
    message = str(err)
    assert message.startswith("command task payload is invalid: ")
    for word in words:
        assert word in message
    assert "\n" not in message


def test_missing_executable(executor: CommandExecutor, tmp_path: Path) -> None:
    err, _ = fails(executor, {"argv": ["wanhe-no-such-program", "-x"],
                              "work_root": str(tmp_path)}, TaskFailed)
    message = str(err)
    assert "'wanhe-no-such-program' was not found" in message
    assert "PATH" in message and "full path" in message and "'w1' on n1" in message
    assert "\n" not in message and "Traceback" not in message


def test_missing_executable_path(executor: CommandExecutor, tmp_path: Path) -> None:
    err, _ = fails(executor, {"argv": [str(tmp_path / "nope.sh")], "work_root": str(tmp_path)},
                   TaskFailed)
    assert "does not exist" in str(err) and "nope.sh" in str(err)


def test_not_executable(executor: CommandExecutor, tmp_path: Path) -> None:
    script = tmp_path / "job.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o644)
    err, _ = fails(executor, {"argv": ["./job.sh"], "cwd": str(tmp_path)}, TaskFailed)
    assert "is not executable" in str(err) and "chmod +x" in str(err)


def test_script_without_shebang(executor: CommandExecutor, tmp_path: Path) -> None:
    script = tmp_path / "raw"
    script.write_bytes(b"\x7fnot a program\n")
    script.chmod(0o755)
    err, _ = fails(executor, {"argv": [str(script)], "work_root": str(tmp_path)}, TaskFailed)
    assert "could not be started" in str(err)
    assert "\n" not in str(err)


def test_cwd_that_cannot_be_created(executor: CommandExecutor, tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    err, _ = fails(executor, {"argv": ["true"], "cwd": str(blocker / "sub")}, TaskFailed)
    message = str(err)
    assert "cannot create the working directory" in message and "a-file" in message
    assert "\n" not in message


def test_cancelled_before_start_runs_nothing(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    rec.ctx.cancelled.set()
    marker = tmp_path / "ran"
    fails(executor, {"argv": ["touch", str(marker)], "work_root": str(tmp_path)},
          TaskCancelled, rec)
    assert not marker.exists()


def test_no_zombie_children_left(executor: CommandExecutor, tmp_path: Path) -> None:
    import psutil

    before = {p.pid for p in psutil.Process().children()}
    rec = Recorder()
    fails(executor, {"argv": ["sh", "-c", "sleep 30 & sleep 30 & echo $$; sleep 30"],
                     "timeout_s": 1.5, "grace_s": 1, "work_root": str(tmp_path)},
          TaskTimedOut, rec)
    after = [p for p in psutil.Process().children() if p.pid not in before]
    assert after == []
    assert group_gone(int(rec.lines[0]))


def test_sends_sigterm_first(executor: CommandExecutor, tmp_path: Path) -> None:
    rec = Recorder()
    script = "trap 'echo got TERM; exit 0' TERM; echo ready; sleep 30 & wait"
    fails(executor, {"argv": ["sh", "-c", script], "timeout_s": 1.5, "grace_s": 2,
                     "work_root": str(tmp_path)}, TaskTimedOut, rec)
    assert rec.lines == ["ready", "got TERM"]  # its last words are logged


def test_failing_log_sink_still_stops_the_tree(executor: CommandExecutor,
                                               tmp_path: Path) -> None:
    def broken(line: str) -> None:
        raise OSError("log disk full")

    ctx = TaskContext(log=broken, key="k")
    with pytest.raises(OSError, match="log disk full"):
        executor.run("command", {"argv": ["sh", "-c", "echo hi; sleep 30"],
                                 "work_root": str(tmp_path)}, ctx)
    assert executor.last_pgid is not None and group_gone(executor.last_pgid)


def test_an_exit_status_of_zero_without_the_promised_outputs_is_a_failure(
    tmp_path: Path,
) -> None:
    executor = CommandExecutor(WorkerInfo())
    made = tmp_path / "made.txt"
    ok = executor.run("command", {"argv": ["sh", "-c", f"echo hi > {made}"], "cwd": str(tmp_path),
                                  "outputs": [str(made), "made.txt"]}, TaskContext())
    assert ok.output["outputs"] == [str(made), "made.txt"]
    with pytest.raises(TaskFailed, match=r"did not write 1 of its outputs, e\.g\. nope\.txt"):
        executor.run("command", {"argv": ["true"], "cwd": str(tmp_path),
                                 "outputs": ["made.txt", "nope.txt"]}, TaskContext())


def test_the_command_executor_reports_status_lines_too(tmp_path: Path) -> None:
    seen: list[str] = []
    ctx = TaskContext(status=seen.append, key="c1")
    ex = CommandExecutor(WorkerInfo(name="w1", node="n1"))
    try:
        ex.run("command", {"argv": ["sh", "-c", "echo 'openjd_status: encoding pass 2'"],
                           "cwd": str(tmp_path)}, ctx)
    finally:
        ex.close()
    assert seen == ["encoding pass 2"]


# ---------------------------------------------------------------------- the sandbox's cgroup

needs_cgroups = pytest.mark.skipif(
    not sandbox_mode().cgroups,
    reason="needs task cgroups (root, cgroup v1 memory/pids/cpuacct/freezer or v2)")


@needs_cgroups
def test_a_setsid_daemon_ends_with_the_attempt_and_is_billed(
    executor: CommandExecutor, tmp_path: Path,
) -> None:
    rec = Recorder()
    # The daemon counts to 300,000 (≈ 0.4 s of CPU here, however loaded the machine) before the
    # task may end; its loop names this test alone, so no other test's loop (another worker's)
    # is taken for it.
    tag = f"wanhe-spin-{uuid.uuid4().hex[:12]}"
    spun = tmp_path / "spun"
    daemon = (f"i=0; while [ $i -lt 300000 ]; do i=$((i+1)); done; touch {spun}; "
              f"while :; do :; done # {tag}")
    script = (f"setsid sh -c '{daemon}' >/dev/null 2>&1 < /dev/null & "
              f"while [ ! -e {spun} ]; do sleep 0.1; done")
    result = run(executor, {"argv": ["sh", "-c", script], "work_root": str(tmp_path)}, rec)
    assert result.cpu_s >= 0.1  # the daemon's counting is the task's (sh and sleep use ~0)
    assert any("killed with its cgroup" in line for line in rec.lines)
    spinning = subprocess.run(["pgrep", "-f", tag], capture_output=True,
                              text=True).stdout.split()
    assert spinning == []


@needs_cgroups
def test_memory_past_the_request_is_out_of_memory_with_the_peak(
    executor: CommandExecutor, tmp_path: Path,
) -> None:
    rec = Recorder()
    rec.ctx.memory_bytes = 64 * 2**20
    err, _ = fails(executor, {"argv": [PY, "-c", "b = bytearray(512 * 2**20)"],
                              "work_root": str(tmp_path)}, TaskOutOfMemory, rec)
    assert "ran out of memory" in str(err) and "memory limit 64 MiB" in str(err)
    assert err.peak_rss is not None and 48 * 2**20 <= err.peak_rss <= 64 * 2**20
