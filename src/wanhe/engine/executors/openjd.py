"""The OpenJD executor: runs `openjd` tasks in Open Job Description sessions
(`openjd.sessions.Session`), keeping a session open on the worker across the tasks of a job.

A session lives in a session host process (`wanhe.openjd.host`) that runs as the session's OS
user: the project's own unprivileged user when the worker runs as root (created on first
use, `wanhe.sandbox.accounts`), else the worker's own user. The job's environments are entered
when the session opens, a step's environments when the first task of that step arrives; both
stay entered for the following tasks that land here (warm key: job + step), so a DCC loaded
in `onEnter` stays loaded. They are exited newest first when a task of another job arrives,
when the job ends (`release`), after a failed task (OpenJD then allows only exits), and when
the worker closes.

Stdout messages: `openjd_progress` → the task's progress, `openjd_status` → its status line,
`openjd_fail` → its failure reason; `openjd_env` / `openjd_unset_env` change the session's
environment (openjd-sessions). CPU seconds are the host's children's rusage per action.
"""

from __future__ import annotations

import collections
import contextlib
import json
import os
import queue
import re
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, WorkerInfo
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskCancelled, TaskFailed, TaskOutOfMemory, TaskTimedOut
from wanhe.openjd.hostpool import HOST_MEMORY, host_command
from wanhe.openjd.payloads import ActionTask
from wanhe.payloads import PayloadError

if TYPE_CHECKING:
    from typing import TypeAlias

    from wanhe.openjd.hostspawn import ForkedHost
    from wanhe.sandbox.box import Sandbox
    from wanhe.sandbox.spec import SandboxSpec

    # a host started for its session, or one forked ahead by `wanhe run`'s spawner
    HostProcess: TypeAlias = subprocess.Popen[str] | ForkedHost

KIND = "openjd"
_TAIL = 40
_HOST_START_S = 60.0
_CLOSE_S = 120.0


def path_mapping_file_rules() -> list[dict[str, Any]]:
    """This worker's own path mapping rules: the file named by WANHE_PATH_MAPPING (the
    OpenJD `pathmapping-1.0` document `wanhe serve --path-mapping` was given)."""
    name = os.environ.get("WANHE_PATH_MAPPING")
    if not name:
        return []
    doc = json.loads(Path(name).read_text())
    rules = doc.get("path_mapping_rules", []) if isinstance(doc, dict) else doc
    return list(rules)


class _HostDied(RuntimeError):
    pass


@dataclass(slots=True)
class _Session:
    """One session host process and what it has entered."""

    job: str
    proc: HostProcess
    events: queue.Queue[dict[str, Any] | None]
    user: str
    box: Sandbox
    step: str | None = None
    workdir: str = ""
    env_log: collections.deque[str] = field(
        default_factory=lambda: collections.deque(maxlen=_TAIL))
    sink: TaskContext | None = None
    broken: bool = False

    def send(self, **cmd: Any) -> None:
        assert self.proc.stdin is not None
        try:
            self.proc.stdin.write(json.dumps(cmd) + "\n")
            self.proc.stdin.flush()
        except (OSError, ValueError) as exc:
            raise _HostDied(f"the session host stopped ({exc})") from None

    def wait_done(self, op: str, ctx: TaskContext | None, limit_s: float | None = None,
                  cancelled: threading.Event | None = None) -> dict[str, Any]:
        """Forward log/progress/status events to `ctx` until the `op` is done."""
        deadline = None if limit_s is None else time.monotonic() + limit_s
        while True:
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            try:
                event = self.events.get(timeout=0.2 if left is None else min(0.2, left))
            except queue.Empty:
                if deadline is not None and time.monotonic() >= deadline:
                    raise _HostDied(f"the session host did not answer {op!r} in "
                                    f"{limit_s:g} s") from None
                if self.proc.poll() is not None:
                    raise _HostDied(f"the session host exited with status "
                                    f"{self.proc.returncode}") from None
                continue
            if event is None:
                raise _HostDied("the session host closed its output")
            kind = event.get("ev")
            if kind == "log":
                line = str(event.get("line", ""))
                self.env_log.append(line)
                if ctx is not None:
                    ctx.log(line)
            elif kind == "progress" and ctx is not None:
                ctx.progress(float(event.get("value", 0.0)) / 100.0)
            elif kind == "status" and ctx is not None:
                ctx.status(str(event.get("text", "")))
            elif kind == "error":
                raise _HostDied(str(event.get("message")))
            elif kind == "done" and event.get("op") == op:
                return event


@register_executor
class OpenJDExecutor(Executor):
    """Runs `openjd` tasks (see `wanhe.jobtypes.openjd` for the payload)."""

    kinds = frozenset({KIND})
    warm_scope = "job"

    def __init__(self, worker: WorkerInfo) -> None:
        super().__init__(worker)
        self._session: _Session | None = None
        self._cancel = threading.Event()
        self._jobs: dict[str, dict[str, Any]] = {}

    def warm_key(self, payload: dict[str, Any]) -> str | None:
        return f"openjd:{payload.get('job')}:{payload.get('step')}"

    # -- running a task -------------------------------------------------------------------------

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        self._cancel.clear()
        if ctx.cancelled.is_set():
            raise TaskCancelled("the OpenJD task was cancelled before it started")
        try:
            task = ActionTask.read(payload)
        except PayloadError as exc:
            raise TaskFailed(str(exc)) from None
        try:
            if task.adaptive:
                return self._adaptive(task, ctx)
            session = self._ready(task, ctx)
            return self._task(session, task, ctx)
        except _HostDied as exc:
            self._drop()
            raise TaskFailed(f"the OpenJD session on {self._where()} broke: {exc}") from None

    def _adaptive(self, task: ActionTask, ctx: TaskContext) -> TaskResult:
        """A slot of an adaptive step: claim chunks from the step's ledger and run them, the
        size re-estimated after each (`wanhe.openjd.chunks`)."""
        from wanhe.openjd.chunks import Adaptive, Ledger, lanes
        from wanhe.openjd.template import load_job

        assert task.adaptive is not None
        if task.ledger is None:
            raise TaskFailed("the adaptive OpenJD task's payload names no ledger")
        chunking = Adaptive.from_json(task.adaptive)
        ledger = Ledger(Path(task.ledger), chunking)
        slot = str(task.index)

        def make() -> list[dict[str, Any]]:
            job = load_job(self._job_file(task))[0]
            step = next(s for s in job.steps if s.name == task.step)
            return lanes(step, chunking.param)

        ledger.begin(slot, make)
        ran: list[str] = []
        wall = cpu = 0.0
        peak = 0
        session: _Session | None = None
        while not (ctx.cancelled.is_set() or self._cancel.is_set()):
            claim = ledger.claim(slot, make, first=not ran)
            if claim is None:
                break
            if session is None:
                session = self._ready(task, ctx)
            ctx.log(f"[wanhe] adaptive chunk {claim.text} ({len(claim.values)} task(s))")
            done = self._task(session, task.model_copy(update={"params": claim.params}), ctx)
            before, after = ledger.finished(slot, claim, done.wall_s)
            if after != before:
                ctx.log(f"[wanhe] adaptive chunking: chunk size {before} -> {after} "
                        f"(target {chunking.target_s:g} s a chunk)")
            ran.append(claim.text)
            wall += done.wall_s
            cpu += done.cpu_s
            peak = max(peak, done.peak_rss)
        if ctx.cancelled.is_set() or self._cancel.is_set():
            raise TaskCancelled("the OpenJD task was cancelled between chunks")
        if not ran:
            ctx.log("[wanhe] adaptive chunking: nothing left for this slot (earlier chunks "
                    "grew and took its tasks)")
        return TaskResult(wall, cpu, peak, {"chunks": ran, **(
            {"session": session.workdir, "user": session.user} if session else {})})

    def _where(self) -> str:
        return self.worker.node or self.worker.name

    def _job_file(self, task: ActionTask) -> dict[str, Any]:
        key = task.job
        found = self._jobs.get(key)
        if found is None:
            try:
                found = json.loads(Path(task.job_file).read_text())
            except (OSError, ValueError) as exc:
                raise TaskFailed(f"cannot read the OpenJD job file {task.job_file} on "
                                 f"{self._where()}: {exc}") from None
            self._jobs = {key: found}  # one job's template at a time
        return found

    def _ready(self, task: ActionTask, ctx: TaskContext) -> _Session:
        """The open session for this task's job and step (opened, or switched, as needed)."""
        job = task.job
        self._check_attributes(task)
        session = self._session
        if session is not None and (session.job != job or session.broken
                                    or session.proc.poll() is not None):
            self._end(session, ctx)
            session = None
        if session is None:
            session = self._open(task, ctx)
        if session.step != task.step:
            if session.step is not None:
                ctx.log(f"[wanhe] leaving step {session.step!r}: exiting its environments")
                session.send(op="exit", scope="step")
                session.wait_done("exit", ctx)
            session.step = None
            ctx.log(f"[wanhe] entering the environments of step {task.step!r}")
            session.send(op="enter", scope="step", step=task.step)
            self._entered(session, session.wait_done("enter", ctx), ctx, "step")
            session.step = task.step
        else:
            ctx.log(f"[wanhe] session kept from the previous task: environments of job and "
                    f"step {task.step!r} still entered")
        return session

    def _open(self, task: ActionTask, ctx: TaskContext) -> _Session:
        from wanhe.openjd.dataflow import prepare as prepare_outputs
        from wanhe.sandbox import accounts as users
        from wanhe.sandbox.box import Sandbox, job_spec, mode

        job_file = self._job_file(task)
        project = ctx.project or users.LOCAL_PROJECT
        account = users.session_account(project, ctx.project_id)
        root = Path(task.sessions) / users.user_name(project, ctx.project_id)
        users.prepare_folders(account, root, task.stored(),
                              namespaced=account.isolated and mode().namespace is not None)
        try:  # OUT and INOUT folders, before any session may write them
            for line in prepare_outputs(list(task.outputs)):
                ctx.log(line)
        except OSError as exc:
            raise TaskFailed(f"cannot make the job's output folders on {self._where()}: "
                             f"{exc}") from None
        env = {"CUDA_VISIBLE_DEVICES": ",".join(self.worker.gpu_ids)}
        blender_env, software = self._blender_path(ctx)
        env.update(blender_env)
        try:
            rules = list(task.path_mapping) + path_mapping_file_rules()
        except (OSError, ValueError) as exc:
            raise TaskFailed(f"the path mapping rules of {self._where()} "
                             f"(WANHE_PATH_MAPPING) cannot be read: {exc}") from None
        # One sandbox per session: the host and every action of the job's tasks here, the
        # job's folders and this project's session folder its only files.
        spec = job_spec(Path(task.job_root), memory_bytes=self._memory(task, ctx),
                        extra_writable=(root,), software=software,
                        gpu=bool(self.worker.gpu_ids))
        name = f"openjd-{self.worker.name}-{task.job}"
        ahead = None if account.isolated else self._adopt(name, spec, users.host_env(account, root))
        proc: HostProcess
        if ahead is not None:  # started while the job was planned, in a cgroup of its own
            proc, box = ahead
        else:
            try:
                box = Sandbox.open(name, spec, account, confine=account.isolated)
            except (OSError, ValueError) as exc:  # CgroupError, MountError
                raise TaskFailed(f"cannot make the sandbox for the OpenJD session on "
                                 f"{self._where()}: {exc}") from None
            try:
                proc = users.start_host(account, root, host_command(),
                                        lambda argv, drop: box.command(argv, drop=drop),
                                        namespaced=box.isolated)
            except BaseException:
                box.close()
                raise
        events: queue.Queue[dict[str, Any] | None] = queue.Queue()
        threading.Thread(target=_pump, args=(proc, events), daemon=True,
                         name=f"openjd-host-{proc.pid}").start()
        session = _Session(job=task.job, proc=proc, events=events,
                           user=account.name, box=box)
        self._session = session
        ctx.log(f"[wanhe] OpenJD session for job {task.job} on {self._where()} as user "
                f"{account.name}{'' if account.isolated else ' (the service user)'}"
                f"{', sandboxed' if box.isolated else ''}"
                f"{', its host started ahead' if ahead else ''}")
        # A host started ahead moves to the session's folder and log as it opens.
        moved = {"cwd": str(root), "host_log": str(root / "host.log")} if ahead else {}
        session.send(op="open", session_id=f"{task.job}-{self.worker.name}",
                     job_file=job_file, path_mapping=rules, session_root=str(root), env=env,
                     **moved)
        opened = session.wait_done("open", ctx, _HOST_START_S)
        session.workdir = str(opened.get("workdir", ""))
        session.send(op="enter", scope="job")
        self._entered(session, session.wait_done("enter", ctx), ctx, "job")
        return session

    @staticmethod
    def _adopt(name: str, spec: SandboxSpec, env: dict[str, str]
               ) -> tuple[ForkedHost, Sandbox] | None:
        """A host `wanhe run` started ahead (`wanhe.openjd.hostpool`) with this session's
        environment, its cgroup given the session's spec; None when there is none."""
        from wanhe.openjd import hostpool

        host = hostpool.take(env)
        if host is None:
            return None
        try:
            host.box.adopt(name, spec)
        except (OSError, ValueError):  # a limit it cannot take: start the session's own
            hostpool.discard(host)
            return None
        with contextlib.suppress(OSError):  # the host writes to the session's log once it opens
            host.proc.stderr.close()
        return host.proc, host.box

    def _blender_path(self, ctx: TaskContext) -> tuple[dict[str, str], tuple[Path, ...]]:
        """The session's PATH with the right `blender` first: the worker's own Blender, a new
        enough one on PATH, or wanhe's bpy-backed command (`wanhe.blender_cli`); and the
        folders the sandbox must show for it."""
        from wanhe.blender.session import session_blender

        try:
            chosen = session_blender(self.worker.blender)
        except FileNotFoundError as exc:
            raise TaskFailed(f"{exc} (worker {self._where()})") from None
        ctx.log(f"[wanhe] {chosen.reason}")
        software: list[Path] = []
        if chosen.binary:
            software.append(Path(chosen.binary).resolve().parent)
        if chosen.path_prefix is None:
            return {}, tuple(software)
        software.append(Path(chosen.path_prefix))
        path = f"{chosen.path_prefix}{os.pathsep}{os.environ.get('PATH', os.defpath)}"
        return {"PATH": path}, tuple(software)

    @staticmethod
    def _memory(task: ActionTask, ctx: TaskContext) -> int | None:
        """The session's memory limit: the task's request (the step's
        amount.worker.memory), else the worker's default share, plus the host's own."""
        from wanhe.openjd.hostreq import resources
        from wanhe.openjd.template import HostRequirements
        from wanhe.sandbox.box import task_memory

        asked = ctx.memory_bytes or resources(HostRequirements.from_json(task.host)).memory
        limit = task_memory(asked or None)
        return None if limit is None else limit + HOST_MEMORY

    def _check_attributes(self, task: ActionTask) -> None:
        """This worker has the attributes the step asks for (the farm checked at submit; a
        worker started with other attributes than its farm's refuses here)."""
        from wanhe.openjd.hostreq import FarmFacts, unmet
        from wanhe.openjd.template import HostRequirements

        host = HostRequirements.from_json(task.host)
        why = unmet(HostRequirements((), host.attributes), FarmFacts())
        if why is not None:
            raise TaskFailed(f"worker {self._where()} cannot run step {task.step!r}: "
                             f"its host requirement {why}")

    def _entered(self, session: _Session, done: dict[str, Any], ctx: TaskContext,
                 scope: str) -> None:
        if done.get("ok"):
            return
        session.broken = True
        log = "\n".join(session.env_log)
        what = f"{scope} environment {done.get('env')!r}"
        missing = _command_not_found(list(session.env_log))
        reason = (f"command not found: {missing} on {self._where()}" if missing
                  else f"the {what} failed to enter")
        self._end(session, ctx)
        raise TaskFailed(f"{reason} — onEnter of the {what} failed; its log:\n{log}")

    def _task(self, session: _Session, task: ActionTask, ctx: TaskContext) -> TaskResult:
        session.env_log.clear()
        box = session.box
        box.set_memory(self._memory(task, ctx))
        box.mark()
        kept = set(box.pids())  # the host, and what the environments started: they stay
        started = time.monotonic()
        session.send(op="task", step=task.step, params=task.params)
        try:
            done = session.wait_done("task", ctx, None, self._cancel)
        except _HostDied as exc:
            # The host may have been the kernel's choice when the task ran out of memory.
            if box.out_of_memory():
                raise TaskOutOfMemory(
                    f"the OpenJD task ran out of memory ({box.limit_text()}, peak "
                    f"{(box.peak_memory() or 0) / 2**20:.0f} MiB): its session was killed by "
                    "the kernel — ask for more (amount.worker.memory) or use less",
                    cpu_s=box.cpu_s(), peak_rss=box.peak_memory(),
                    wall_s=time.monotonic() - started) from None
            raise exc from None
        # What the task started and left behind (a `setsid` daemon) ends with it; the CPU it
        # burnt until now is the task's.
        left = [pid for pid in box.pids() if pid not in kept]
        if left:
            ctx.log(f"[wanhe] the task left {len(left)} process(es) running: killed")
            box.kill(left)
        state = str(done.get("state"))
        cpu_s = box.cpu_s()
        usage: dict[str, Any] = {
            "cpu_s": done.get("cpu_s") if cpu_s is None else cpu_s,
            "peak_rss": box.peak_memory() or done.get("peak_rss"), "wall_s": done.get("wall_s")}
        if state != "success" and box.out_of_memory():
            session.broken = True
            raise TaskOutOfMemory(
                f"the OpenJD task ran out of memory ({box.limit_text()}, peak "
                f"{(usage['peak_rss'] or 0) / 2**20:.0f} MiB) and the kernel killed it — ask "
                "for more (the step's amount.worker.memory) or use less", **usage)
        if state == "success":
            return TaskResult(float(done.get("wall_s") or 0.0), float(usage["cpu_s"] or 0),
                              int(usage["peak_rss"] or 0),
                              {"exit_code": done.get("exit_code"), "session": session.workdir,
                               "user": session.user})
        session.broken = True  # OpenJD allows only environment exits after this
        tail = [line for line in session.env_log if line.strip()][-10:]
        last = "; last output: " + " | ".join(tail[-3:]) if tail else ""
        if state == "canceled" or self._cancel.is_set() or ctx.cancelled.is_set():
            raise TaskCancelled(f"the OpenJD task was cancelled{last}", **usage)
        if state == "timeout":
            raise TaskTimedOut(f"the OpenJD task's onRun passed its timeout and was "
                               f"stopped{last}", **usage)
        if done.get("fail"):
            raise TaskFailed(f"openjd_fail: {done['fail']}", **usage)
        missing = _command_not_found(list(session.env_log)) \
            if done.get("exit_code") in (127, None, 2) else None
        if missing:
            raise TaskFailed(f"command not found: {missing} on {self._where()}", **usage)
        raise TaskFailed(f"the OpenJD task's onRun exited with status {done.get('exit_code')}"
                         f"{last}", **usage)

    # -- ending sessions ------------------------------------------------------------------------

    def _end(self, session: _Session, ctx: TaskContext | None) -> None:
        """Exit every environment (newest first) and end the host."""
        if self._session is session:
            self._session = None
        if session.proc.poll() is None:
            try:
                session.send(op="close")
                session.wait_done("close", ctx, _CLOSE_S)
            except _HostDied:
                pass
        _stop(session.proc)
        session.box.close()  # whatever the session left running (a daemon) dies with it

    def _drop(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            _stop(session.proc)
            session.box.close()

    def release(self, key: str) -> None:
        """The job of warm key `key` has ended: end its session here."""
        session = self._session
        if session is not None and key.startswith(f"openjd:{session.job}:"):
            self._end(session, None)

    def cancel(self) -> None:
        self._cancel.set()
        session = self._session
        if session is not None:
            with contextlib.suppress(_HostDied):
                session.send(op="cancel")

    def close(self) -> None:
        session = self._session
        if session is not None:
            with contextlib.suppress(_HostDied):
                session.send(op="cancel", seconds=0)
            self._end(session, None)


def _pump(proc: HostProcess, events: queue.Queue[dict[str, Any] | None]) -> None:
    assert proc.stdout is not None
    try:
        for line in proc.stdout:
            try:
                events.put(json.loads(line))
            except ValueError:
                events.put({"ev": "log", "line": line.rstrip("\n")})
    except (OSError, ValueError):
        pass
    finally:
        events.put(None)


def _stop(proc: HostProcess) -> None:
    if proc.poll() is None:
        with contextlib.suppress(OSError):
            proc.stdin and proc.stdin.close()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(5)


def _command_not_found(lines: list[str]) -> str | None:
    """The program named by a "not found" launch error in an action's log, if any."""
    for line in reversed(lines):
        if "No such file or directory" in line or "not found" in line.lower():
            m = re.search(r"No such file or directory:? '([^']+)'", line)
            if m:
                return os.path.basename(m.group(1))
            m = re.search(r"([\w./+-]+): (?:command )?not found", line)
            if m:
                return os.path.basename(m.group(1))
    return None

