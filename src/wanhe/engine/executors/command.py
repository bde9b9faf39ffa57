"""The command executor: one command line per attempt, in its own working directory.

Used for OpenJD actions and any tool a job type wants to run (a converter, a simulation, a
user's script). The command runs in its own session and process group, so a timeout, a log
silence, a cancel or the worker's shutdown stops the whole tree: SIGTERM to the group, then
SIGKILL to the group after `grace_s`. Its stdout and stderr are merged and logged line by line;
`openjd_progress: <percent>` lines report progress and `openjd_status: <text>` lines the
task's status line (both stay in the log).

Metering comes from `os.wait4`: user + system CPU of every process of the tree that was waited
for, so a killed attempt keeps the CPU seconds it burnt. Its peak RSS is wait4's too where that
can be trusted (see `_peak_rss`), else the largest VmHWM sampled from the tree as it runs.

To reap the whole tree — and never leave a zombie behind, even where PID 1 does not reap
orphans (many containers) — the worker process makes itself a child subreaper (Linux `prctl`)
on the first attempt: orphaned grandchildren are re-parented to it and reaped here, with their
usage.

Where the farm runs as root, each attempt runs in its own sandbox (`wanhe.sandbox`): a
cgroup holding every process it starts — a process that leaves the session (`setsid`, a
daemon) is still in it, killed when the attempt ends and its CPU seconds metered to the task
(the cgroup's CPU accounting, not wait4's) — limited to the task's memory (the kernel's OOM
kill inside it is reported as out of memory, with the cgroup's peak) and to a number of
processes. A payload that names its `job_root` runs as its project's OS user and sees only
that job's folders (and its cwd). Without cgroups (not root) a daemon escapes the group and
is not stopped.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import errno
import math
import os
import queue
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, WorkerInfo
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import (
    TaskCancelled,
    TaskFailed,
    TaskOutOfMemory,
    TaskSilent,
    TaskTimedOut,
)
from wanhe.metering import METER
from wanhe.sandbox.box import Sandbox, job_spec, mode, task_memory
from wanhe.sandbox.spec import SandboxSpec

_PROGRESS_RE = re.compile(r"^\s*openjd_progress:\s*(\S+)\s*$")
_TAIL_LINES = 50  # output lines kept for error messages
_TAIL_LINE_CHARS = 500  # a kept line is cut to this many characters
_MAX_READ = 64 * 1024  # a longer line is logged in pieces of this many bytes
_POLL_S = 0.05  # how often the attempt checks its process, limits and cancel flag
_SAMPLE_S = 0.5  # how often the tree's peak RSS is sampled
_SETTLE_S = 0.2  # how long processes left behind by an exited command get to end alone
_KILL_WAIT_S = 10.0  # how long to wait for the group to go after SIGKILL
_DRAIN_S = 2.0  # how long to wait for the last output once the group is gone
_PR_SET_CHILD_SUBREAPER = 36
_PR_GET_CHILD_SUBREAPER = 37


class CommandPayload(BaseModel):
    """A `command` task's payload."""

    model_config = ConfigDict(extra="forbid")

    argv: list[str] = Field(min_length=1)
    """The program and its arguments; no shell unless you write ["sh", "-c", "..."]."""
    cwd: str | None = None
    """The working directory (created if missing; a relative one is taken under work_root).
    None: a fresh directory named after the task under work_root, kept after the attempt."""
    work_root: str | None = None
    """Where fresh working directories go; None: the system temporary directory."""
    env: dict[str, str] = Field(default_factory=dict)
    """Added to the worker's environment. CUDA_VISIBLE_DEVICES is set from the worker's GPUs
    (empty for a CPU worker) unless given here."""
    timeout_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Wall-clock limit of the attempt."""
    silence_s: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    """Longest time without an output line."""
    grace_s: float = Field(default=5.0, ge=0, allow_inf_nan=False)
    """Between SIGTERM and SIGKILL when the command is stopped."""
    stdin: str | None = None
    """Text fed to the command's standard input (closed after it); None: /dev/null."""
    job_root: str | None = None
    """The job's folder (`<work>/jobs/<id>`): the command then runs as the project's user
    and sees only `input/` (read-only), `output/`, `work/` and its cwd (see wanhe.sandbox)."""
    outputs: list[str] = Field(default_factory=list, max_length=100_000)
    """Files the command must leave (absolute, or relative to cwd): an exit status of 0
    without them is a failure, never a silent success. The farm publishes those inside the
    job's output folder to storage."""

    @field_validator("argv")
    @classmethod
    def _check_argv(cls, argv: list[str]) -> list[str]:
        if not argv[0]:
            raise ValueError("argv[0], the program to run, is empty")
        if any("\0" in a for a in argv):
            raise ValueError("an argument contains a NUL character")
        return argv

    @field_validator("env")
    @classmethod
    def _check_env(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not name or "=" in name or "\0" in name or "\0" in value:
                raise ValueError(f"{name!r} is not a valid environment variable "
                                 "(names must be non-empty without '=' or NUL)")
        return env


def parse_payload(payload: Any) -> CommandPayload:
    """The validated payload; a bad one raises TaskFailed naming each wrong field."""
    if not isinstance(payload, dict):
        raise TaskFailed(f"command task payload must be a JSON object, not "
                         f"{type(payload).__name__}")
    try:
        return CommandPayload.model_validate(payload)
    except ValidationError as e:
        problems = []
        for err in e.errors():
            where = ""
            for part in err["loc"]:
                where += f"[{part}]" if isinstance(part, int) else (f".{part}" if where else
                                                                    str(part))
            problems.append(f"{where or 'payload'}: {err['msg']}")
        raise TaskFailed("command task payload is invalid: " + "; ".join(problems)) from None


def parse_progress(line: str) -> float | None:
    """The fraction 0..1 of an `openjd_progress: <percent>` line, or None."""
    m = _PROGRESS_RE.match(line)
    if m is None:
        return None
    try:
        percent = float(m.group(1).rstrip("%"))
    except ValueError:
        return None
    if not math.isfinite(percent):
        return None
    return min(1.0, max(0.0, percent / 100.0))


def sanitise_key(key: str) -> str:
    """A task key as a safe directory name."""
    return re.sub(r"[^A-Za-z0-9._-]+", "_", key).strip("._")[:80] or "task"


_subreaper_lock = threading.Lock()
_subreaper: bool | None = None


def become_subreaper() -> bool:
    """Make this process the reaper of its orphaned descendants (Linux); True if it is."""
    global _subreaper
    with _subreaper_lock:
        if _subreaper is None:
            _subreaper = False
            if sys.platform.startswith("linux"):
                with contextlib.suppress(OSError, AttributeError):
                    libc = ctypes.CDLL(None, use_errno=True)
                    one, zero = ctypes.c_ulong(1), ctypes.c_ulong(0)
                    libc.prctl(_PR_SET_CHILD_SUBREAPER, one, zero, zero, zero)
                    flag = ctypes.c_int(0)
                    if libc.prctl(_PR_GET_CHILD_SUBREAPER, ctypes.byref(flag), zero, zero,
                                  zero) == 0:
                        _subreaper = flag.value != 0
        return _subreaper


@dataclass(slots=True)
class _Running:
    """One started command: its process group and what reaping it has measured."""

    proc: subprocess.Popen[bytes]
    pgid: int
    status: int | None = None  # the leader's raw wait status, once reaped
    cpu_s: float = 0.0
    peak_rss: int = 0
    metered: bool = False
    gone: bool = False  # no process of the group is left
    spawn_peak: int = 0  # this process's own peak RSS when it started the command
    sampled_peak: int = 0  # the largest VmHWM seen of a process of the tree


@register_executor
class CommandExecutor(Executor):
    """Runs `command` tasks: one command line per attempt (see `CommandPayload`)."""

    kinds = frozenset({"command"})

    def __init__(self, worker: WorkerInfo) -> None:
        super().__init__(worker)
        self._lock = threading.Lock()
        self._cancel = threading.Event()
        self._idle = threading.Event()
        self._idle.set()
        self._running: _Running | None = None
        self._box: Sandbox | None = None
        self._run_thread: int | None = None
        self.last_pgid: int | None = None
        """The process group of the latest attempt (diagnostics and tests)."""

    # -- the Executor interface ----------------------------------------------------------------

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        spec = parse_payload(payload)
        if ctx.cancelled.is_set():
            raise TaskCancelled(f"command {spec.argv[0]!r} was cancelled before it started")
        env = self._environment(spec)
        cwd = self._workdir(spec, ctx.key)
        exe = self._executable(spec.argv[0], cwd, env)
        become_subreaper()
        box = self._sandbox(spec, ctx, cwd)
        self._idle.clear()
        self._run_thread = threading.get_ident()
        try:
            return self._attempt(spec, ctx, env, cwd, exe, box)
        finally:
            self._run_thread = None
            box.close()
            self._idle.set()

    def _sandbox(self, spec: CommandPayload, ctx: TaskContext, cwd: Path) -> Sandbox:
        from wanhe.sandbox import accounts

        project = ctx.project or accounts.LOCAL_PROJECT
        confine = spec.job_root is not None and project != accounts.LOCAL_PROJECT
        account = accounts.session_account(project if confine else accounts.LOCAL_PROJECT,
                                           ctx.project_id if confine else None)
        memory = task_memory(ctx.memory_bytes or None)
        if confine:
            assert spec.job_root is not None
            box_spec = job_spec(Path(spec.job_root), memory_bytes=memory,
                                extra_writable=(cwd,), gpu=bool(self.worker.gpu_ids))
            if account.isolated:
                with contextlib.suppress(OSError):
                    os.chown(cwd, account.uid, account.gid)
        else:
            box_spec = SandboxSpec(memory_bytes=memory)
        try:
            if confine:  # the job's inputs readable by its project's user (they are root's)
                assert spec.job_root is not None
                accounts.prepare_job(account, Path(spec.job_root),
                                     namespaced=mode().namespace is not None)
            return Sandbox.open(f"cmd-{self.worker.name}-{sanitise_key(ctx.key)}", box_spec,
                                account, confine=confine)
        except (OSError, ValueError) as exc:  # CgroupError, MountError
            raise TaskFailed(f"cannot make the sandbox for the command on {self._where()}: "
                             f"{exc}") from None

    def cancel(self) -> None:
        """Ask the running attempt to stop; returns at once. The attempt's thread sends
        SIGTERM to its process group, SIGKILL after grace_s, and raises TaskCancelled."""
        self._cancel.set()

    def close(self) -> None:
        """Kill whatever is still running (SIGKILL to its group) and wait for it to be reaped."""
        self._cancel.set()
        with self._lock:
            running = self._running
            box = self._box
            if running is not None and not running.gone:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(running.pgid, signal.SIGKILL)
        if box is not None:
            box.kill_all()
        if running is not None and self._run_thread != threading.get_ident():
            self._idle.wait(_KILL_WAIT_S + _DRAIN_S + 1.0)

    # -- preparing an attempt ------------------------------------------------------------------

    def _environment(self, spec: CommandPayload) -> dict[str, str]:
        env = dict(os.environ)
        env.update(spec.env)
        if "CUDA_VISIBLE_DEVICES" not in spec.env:
            # A CPU worker's tasks must never see a GPU: "" hides them all.
            env["CUDA_VISIBLE_DEVICES"] = ",".join(self.worker.gpu_ids)
        env.setdefault("PYTHONUNBUFFERED", "1")  # Python tools log as they go
        return env

    def _workdir(self, spec: CommandPayload, key: str) -> Path:
        root = Path(spec.work_root).expanduser() if spec.work_root else Path(tempfile.gettempdir())
        target = root if spec.cwd is None else root / Path(spec.cwd).expanduser()
        try:
            target.mkdir(parents=True, exist_ok=True)
            if spec.cwd is None:
                target = Path(tempfile.mkdtemp(prefix=f"{sanitise_key(key)}-", dir=target))
        except OSError as e:
            what = "working directory" if spec.cwd is not None else "work_root"
            raise TaskFailed(
                f"cannot create the {what} {str(target)!r} for the command on worker "
                f"{self._where()}: {e.strerror or e}; give a cwd (or work_root) that the "
                "worker can create and write to"
            ) from None
        if not target.is_dir():
            raise TaskFailed(f"the working directory {str(target)!r} is not a directory; "
                             "give a cwd that is a directory or does not exist yet")
        return target.absolute()

    def _executable(self, program: str, cwd: Path, env: dict[str, str]) -> str:
        if "/" not in program:
            found = shutil.which(program, path=env.get("PATH", os.defpath))
            if found is None:
                raise TaskFailed(
                    f"command {program!r} was not found (or is not executable) on the PATH of "
                    f"worker {self._where()}: install it on every worker that may run this "
                    "task, or give its full path as argv[0]"
                )
            return found
        path = Path(program).expanduser()
        if not path.is_absolute():
            path = cwd / path
        if not path.exists():
            raise TaskFailed(f"command {program!r} does not exist on worker {self._where()} "
                             f"(looked for {str(path)!r}): check the path in argv[0]")
        if path.is_dir() or not os.access(path, os.X_OK):
            raise TaskFailed(
                f"command {program!r} is not executable on worker {self._where()} "
                f"({str(path)!r}): make it executable (chmod +x) or run it through its "
                f"interpreter, e.g. argv [\"sh\", {program!r}]"
            )
        return str(path)

    def _where(self) -> str:
        name = self.worker.name
        node = self.worker.node
        return f"{name!r} on {node}" if node else repr(name)

    # -- running it ----------------------------------------------------------------------------

    def _attempt(
        self, spec: CommandPayload, ctx: TaskContext, env: dict[str, str], cwd: Path, exe: str,
        box: Sandbox,
    ) -> TaskResult:
        program = spec.argv[0]
        lines: queue.Queue[str | None] = queue.Queue()
        tail: collections.deque[str] = collections.deque(maxlen=_TAIL_LINES)
        spawn_peak = _own_peak_rss()
        started = time.monotonic()
        with self._lock:
            self._cancel.clear()
            argv = box.command([exe, *spec.argv[1:]]) if box.mode.on else spec.argv
            try:
                proc = subprocess.Popen(
                    argv,
                    executable=argv[0] if box.mode.on else exe,
                    cwd=cwd,
                    env=env,
                    stdin=subprocess.PIPE if spec.stdin is not None else subprocess.DEVNULL,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,  # one stream keeps the order of the lines
                    start_new_session=True,  # own session and group: killpg takes the tree
                    close_fds=True,
                )
            except OSError as e:
                raise TaskFailed(self._start_error(program, exe, e)) from None
            running = self._running = _Running(proc, proc.pid, spawn_peak=spawn_peak)
            self._box = box
            self.last_pgid = proc.pid
        assert proc.stdout is not None
        reader = threading.Thread(target=_pump, args=(proc.stdout, lines), daemon=True,
                                  name=f"command-out-{proc.pid}")
        reader.start()
        if spec.stdin is not None:
            assert proc.stdin is not None
            threading.Thread(target=_feed, args=(proc.stdin, spec.stdin.encode()), daemon=True,
                             name=f"command-in-{proc.pid}").start()

        reason: str | None = None
        eof = False
        try:
            last_line = started
            next_sample = started
            while True:
                self._reap(running)
                if running.proc.returncode is not None:  # the leader exited (and was reaped)
                    break
                if self._cancel.is_set() or ctx.cancelled.is_set():
                    reason = "cancel"
                    break
                now = time.monotonic()
                if now >= next_sample:
                    _sample_peak(running)
                    next_sample = now + _SAMPLE_S
                wait = _POLL_S
                if spec.timeout_s is not None:
                    left = started + spec.timeout_s - now
                    if left <= 0:
                        reason = "timeout"
                        break
                    wait = min(wait, left)
                if spec.silence_s is not None:
                    left = last_line + spec.silence_s - now
                    if left <= 0:
                        reason = "silence"
                        break
                    wait = min(wait, left)
                if eof:  # stdout closed, the process still runs
                    time.sleep(wait)
                    continue
                try:
                    line = lines.get(timeout=wait)
                except queue.Empty:
                    continue
                if line is None:
                    eof = True
                    continue
                last_line = time.monotonic()
                _handle(line, ctx, tail)
            if reason is None and (self._cancel.is_set() or ctx.cancelled.is_set()):
                reason = "cancel"  # close() killed it
            if not eof:
                eof = _drain(lines, ctx, tail, 0.0)  # what it printed before it ended
            if reason is not None:
                self._stop(running, spec.grace_s)
            elif self._alive(running):
                # It exited but left processes in its group: they may end alone, or be stopped.
                settle = time.monotonic() + _SETTLE_S
                while self._alive(running) and time.monotonic() < settle:
                    if eof:
                        time.sleep(0.01)
                    else:
                        eof = _drain(lines, ctx, tail, 0.01)
                if self._alive(running):
                    ctx.log(f"[wanhe] {program!r} exited but left processes running in its "
                            "process group: stopping them")
                    self._stop(running, spec.grace_s)
            if not eof:
                eof = _drain(lines, ctx, tail, _DRAIN_S)
        finally:
            if self._alive(running):  # an error above (a log sink raised, an interrupt)
                self._signal(running, signal.SIGKILL)
                self._await_gone(running, _KILL_WAIT_S)
            # What left the process group (a `setsid` daemon) is still in the cgroup: it ends
            # with the attempt, and what it burnt until now is metered below.
            escaped = box.pids()
            if escaped:
                ctx.log(f"[wanhe] {program!r} left {len(escaped)} process(es) outside its "
                        "process group: killed with its cgroup")
                box.kill_all()
                self._reap(running)
            with self._lock:
                self._running = None
                self._box = None
            reader.join(timeout=0.5)
            pipes = [proc.stdin] if reader.is_alive() else [proc.stdin, proc.stdout]
            for pipe in pipes:  # (a reader still blocked, by an escaped process, keeps its pipe)
                if pipe is not None:
                    with contextlib.suppress(OSError, ValueError):
                        pipe.close()
        wall_s = time.monotonic() - started
        return self._outcome(spec, running, reason, tail, wall_s, cwd, box)

    def _outcome(
        self, spec: CommandPayload, running: _Running, reason: str | None,
        tail: collections.deque[str], wall_s: float, cwd: Path, box: Sandbox,
    ) -> TaskResult:
        cpu_s = running.cpu_s if running.metered else None
        peak = _peak_rss(running) if running.metered else None
        if box.group is not None:  # every process of the cgroup, escaped ones included
            cpu_s, peak = box.cpu_s(), box.peak_memory() or peak
        usage: dict[str, Any] = {"cpu_s": cpu_s, "peak_rss": peak, "wall_s": wall_s}
        what = f"command {spec.argv[0]!r}"
        last = _last_output(tail)
        if reason == "timeout":
            raise TaskTimedOut(f"{what} passed its wall-clock limit timeout_s={spec.timeout_s:g}"
                               f" and was killed with its process group; {last}", **usage)
        if reason == "silence":
            raise TaskSilent(f"{what} printed no output line for silence_s={spec.silence_s:g} s"
                             f" and was killed with its process group; {last}", **usage)
        if reason == "cancel":
            raise TaskCancelled(f"{what} was cancelled and stopped with its process group",
                                **usage)
        if box.out_of_memory():
            raise TaskOutOfMemory(
                f"{what} ran out of memory: the kernel killed it in its cgroup "
                f"({box.limit_text()}, peak {(peak or 0) / 2**20:.0f} MiB) — give the task "
                f"more memory or make it use less; {last}", **usage)
        if running.status is None:
            raise TaskFailed(f"{what} ended but its exit status could not be read; {last}",
                             **usage)
        code = os.waitstatus_to_exitcode(running.status)
        if code == 0:
            missing = [p for p in spec.outputs if not (cwd / p).exists()]
            if missing:
                raise TaskFailed(
                    f"{what} exited with status 0 but did not write {len(missing)} of its "
                    f"outputs, e.g. {missing[0]} — check the command's arguments; {last}",
                    **usage)
            output: dict[str, Any] = {"exit_code": 0, "cwd": str(cwd)}
            if spec.outputs:
                output["outputs"] = spec.outputs
            return TaskResult(wall_s, cpu_s or 0.0, peak or 0, output)
        if code in (126, 127) and tail and tail[-1].startswith("wanhe-sandbox:"):
            # The sandbox's shell could not exec it: the same one line as a failed start.
            failed = tail[-1]
            err = (errno.ENOEXEC if "format error" in failed else errno.EACCES
                   if "ermission denied" in failed else errno.ENOENT)
            raise TaskFailed(self._start_error(spec.argv[0], spec.argv[0],
                                               OSError(err, os.strerror(err))), **usage)
        if code > 0:
            raise TaskFailed(f"{what} exited with status {code}; {last}", **usage)
        sig = -code
        if sig == signal.SIGKILL:
            mib = f"; peak RSS {peak / 2**20:.0f} MiB" if peak else ""
            raise TaskOutOfMemory(
                f"{what} was killed by SIGKILL (not by wanhe), as the kernel's out-of-memory "
                f"killer does{mib}; give the task more memory or make it use less; {last}",
                **usage,
            )
        raise TaskFailed(f"{what} was killed by signal {_signal_name(sig)}; {last}", **usage)

    @staticmethod
    def _start_error(program: str, exe: str, e: OSError) -> str:
        if e.errno == errno.ENOEXEC:
            return (f"command {program!r} ({exe}) could not be started: it is neither a "
                    "program nor a script with a #! line; run it through its interpreter, "
                    f"e.g. argv [\"sh\", {program!r}]")
        if e.errno in (errno.EACCES, errno.EPERM):
            return (f"command {program!r} ({exe}) could not be started: permission denied; "
                    "make it executable (chmod +x) and its directories searchable")
        if e.errno == errno.ENOENT:
            return (f"command {program!r} ({exe}) could not be started: it (or its #! "
                    "interpreter) does not exist; check argv[0] and the script's first line")
        return f"command {program!r} ({exe}) could not be started: {e.strerror or e}"

    # -- the process group ---------------------------------------------------------------------

    def _reap(self, running: _Running) -> None:
        """Reap every exited child of the group (the leader and adopted orphans), adding up
        their usage; never blocks."""
        with self._lock:
            while True:
                try:
                    pid, status, ru = os.wait4(-running.pgid, os.WNOHANG)
                except ChildProcessError:
                    if running.status is None and running.proc.returncode is None:
                        running.proc.returncode = -1  # reaped elsewhere: status unknown
                    return
                if pid == 0:
                    return
                running.metered = True
                running.cpu_s += ru.ru_utime + ru.ru_stime
                # metered here: in-process tasks of a local run must not share it too
                METER.exclude_children(ru.ru_utime + ru.ru_stime)
                rss = ru.ru_maxrss if sys.platform == "darwin" else ru.ru_maxrss * 1024
                running.peak_rss = max(running.peak_rss, rss)
                if pid == running.proc.pid:
                    running.status = status
                    running.proc.returncode = os.waitstatus_to_exitcode(status)

    def _alive(self, running: _Running) -> bool:
        """Whether any process of the group is left (reaping what has exited first)."""
        if running.gone:
            return False
        self._reap(running)
        with self._lock:
            try:
                os.killpg(running.pgid, 0)
            except ProcessLookupError:
                running.gone = True
                return False
            except PermissionError:
                return True
            return True

    def _signal(self, running: _Running, sig: int) -> None:
        with self._lock:
            if not running.gone:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.killpg(running.pgid, sig)

    def _stop(self, running: _Running, grace_s: float) -> None:
        """SIGTERM the group; SIGKILL it if anything is left after grace_s."""
        _sample_peak(running)
        self._signal(running, signal.SIGTERM)
        if self._await_gone(running, grace_s):
            return
        self._signal(running, signal.SIGKILL)
        self._await_gone(running, _KILL_WAIT_S)

    def _await_gone(self, running: _Running, timeout_s: float) -> bool:
        """Wait until no process of the group is left; False if some still are after
        `timeout_s`."""
        start = time.monotonic()
        while self._alive(running):
            waited = time.monotonic() - start
            if waited >= timeout_s:
                return False
            if not _subreaper and waited >= 0.5 and not _has_live_member(running.pgid):
                # Not a subreaper: orphans left as zombies under a PID 1 that never reaps
                # them keep the group "alive" for ever; none of them runs any more.
                return True
            time.sleep(0.01)
        return True


def _own_peak_rss() -> int:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_maxrss if sys.platform == "darwin" else usage.ru_maxrss * 1024


def _peak_rss(running: _Running) -> int:
    """The tree's peak RSS.

    On Linux, exec() folds the high-water RSS of the process image it replaces into the
    process's ru_maxrss, and a child spawned from this process starts out sharing (vfork) or
    copying (fork) this process's memory: wait4 reports at least this worker's own peak RSS
    for every command. So wait4's figure counts only when it is above that; otherwise the peak
    comes from sampling the tree's VmHWM while it runs.
    """
    if not _HAVE_PROC:
        return running.peak_rss
    trusted = running.peak_rss if running.peak_rss > running.spawn_peak else 0
    return max(trusted, running.sampled_peak)


_HAVE_PROC = os.path.isdir("/proc/self/task")


def _sample_peak(running: _Running) -> None:
    if not _HAVE_PROC or running.proc.returncode is not None:
        return
    for pid in _tree(running.proc.pid):
        running.sampled_peak = max(running.sampled_peak, _vm_hwm(pid))


def _tree(root: int) -> list[int]:
    """`root` and its descendants (Linux /proc/PID/task/TID/children)."""
    found: list[int] = []
    todo = [root]
    while todo and len(found) < 10_000:
        pid = todo.pop()
        found.append(pid)
        try:
            for tid in os.listdir(f"/proc/{pid}/task"):
                with open(f"/proc/{pid}/task/{tid}/children", "rb") as f:
                    todo.extend(int(c) for c in f.read().split())
        except (OSError, ValueError):
            continue
    return found


def _vm_hwm(pid: int) -> int:
    """A process's peak RSS in bytes (0 when unknown)."""
    try:
        with open(f"/proc/{pid}/status", "rb") as f:
            for line in f:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return 0


def _pump(stream: IO[bytes], out: queue.Queue[str | None]) -> None:
    try:
        for raw in iter(lambda: stream.readline(_MAX_READ), b""):
            out.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    except (OSError, ValueError):
        pass
    finally:
        out.put(None)


def _feed(stream: IO[bytes], data: bytes) -> None:
    with contextlib.suppress(OSError, ValueError):
        stream.write(data)
    with contextlib.suppress(OSError, ValueError):
        stream.close()


def _handle(line: str, ctx: TaskContext, tail: collections.deque[str]) -> None:
    ctx.log(line)
    if line.strip():
        tail.append(line[:_TAIL_LINE_CHARS])
    fraction = parse_progress(line)
    if fraction is not None:
        ctx.progress(fraction)
    elif line.startswith("openjd_status:"):
        ctx.status(line[len("openjd_status:"):].strip())


def _drain(lines: queue.Queue[str | None], ctx: TaskContext, tail: collections.deque[str],
           timeout_s: float) -> bool:
    """Log what is left of the output: until end of file or `timeout_s` (0: only the lines
    already read). True at end of file."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = deadline - time.monotonic()
        try:
            line = lines.get(timeout=left) if left > 0 else lines.get_nowait()
        except queue.Empty:
            return False
        if line is None:
            return True
        _handle(line, ctx, tail)


def _last_output(tail: collections.deque[str]) -> str:
    if not tail:
        return "last output: (none)"
    if len(tail) == 1:
        return f"last output: {tail[-1]}"
    return f"last output: {tail[-1]}\n--- last {len(tail)} lines ---\n" + "\n".join(tail)


def _signal_name(sig: int) -> str:
    try:
        name = signal.Signals(sig).name
    except ValueError:
        return str(sig)
    text = signal.strsignal(sig)
    return f"{name} ({text})" if text else name


def _has_live_member(pgid: int) -> bool:
    """Whether a process of group `pgid` other than a zombie is left (Linux /proc)."""
    try:
        entries = os.listdir("/proc")
    except OSError:
        return False
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] != b"Z":
            return True
    return False
