"""The session host: one process per OpenJD session on a worker, holding an
`openjd.sessions.Session` with its environments entered across the tasks it runs.

    python -m wanhe.openjd.host            (started by the OpenJD executor)

It runs as the session's OS user (a project's own unprivileged user when the farm runs as
root), so every action it starts runs as that user and nothing of the session runs as root.
It speaks JSON lines: commands on stdin, events on stdout.

    {"op": "open", "session_id", "job_file", "path_mapping", "session_root", "env"
     [, "cwd", "host_log"]}  (a host started ahead: its working folder and stderr from now on)
    {"op": "enter", "scope": "job"|"step", "step"}   enter the job's / a step's environments
    {"op": "task", "step", "params"}                  run one task
    {"op": "exit", "scope": "step"|"all"}             exit environments, newest first
    {"op": "cancel", "seconds"}                       cancel the running action (any time)
    {"op": "close"}                                   exit every environment and end

    {"ev": "log", "line"} · {"ev": "progress", "value"} · {"ev": "status", "text"} ·
    {"ev": "done", "op", "ok", "state", "exit_code", "fail", "cpu_s", "peak_rss", "wall_s",
     "env"} · {"ev": "error", "message"}
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import resource
import sys
import threading
import time
from pathlib import Path
from typing import IO, Any

_ENDED = ("success", "failed", "canceled", "timeout")
REDACTED = "*" * 8  # what openjd-sessions writes for a redacted value


class Host:
    def __init__(self, out: IO[str]) -> None:
        self.out = out
        self.lock = threading.Lock()
        self.session: Any = None
        self.job: Any = None
        self.symtabs: dict[str, Any] = {}
        self.queue_envs: list[Any] = []
        self.entered: list[tuple[str, str, Any]] = []  # (scope, identifier, symtab)
        self.action_done = threading.Event()
        self.status: Any = None
        self.last_progress: float | None = None
        self.last_status: str | None = None
        self.running = False

    def send(self, **event: Any) -> None:
        line = json.dumps(event, default=str)
        with self.lock:
            self.out.write(line + "\n")
            self.out.flush()

    # -- the session -------------------------------------------------------------------------

    def callback(self, session_id: str, status: Any) -> None:
        self.status = status
        if status.progress is not None and status.progress != self.last_progress:
            self.last_progress = status.progress
            self.send(ev="progress", value=float(status.progress))
        if status.status_message is not None and status.status_message != self.last_status:
            self.last_status = status.status_message
            self.send(ev="status", text=self.redact(str(status.status_message)))
        if status.state.value in _ENDED:
            self.action_done.set()

    def redact(self, text: str | None) -> str | None:
        """`text` with the session's redacted values (REDACTED_ENV_VARS) as `********`, as
        openjd-sessions writes them in the log. Status and fail messages reach us before the
        session's log filter redacts their line, so every text that leaves this process
        passes here. Fails closed: text that cannot be checked is not sent."""
        if text is None:
            return None
        found = getattr(self.session, "_log_filter", None)
        if found is None or not hasattr(found, "apply_message_redaction"):
            return text
        record = logging.LogRecord("openjd", logging.INFO, __file__, 0, text, (), None)
        try:
            found.apply_message_redaction(record)
        except Exception:
            return REDACTED
        return str(record.msg)

    def open(self, cmd: dict[str, Any]) -> None:
        from openjd.sessions import PathMappingRule, Session

        from wanhe.openjd.template import load_job, queue_environments

        if cmd.get("host_log"):  # started ahead of its session: its folder and log now
            _move(Path(cmd["host_log"]), Path(cmd.get("cwd") or Path(cmd["host_log"]).parent))
        self.job, values, self.symtabs, revision = load_job(cmd["job_file"])
        self.queue_envs = queue_environments(cmd["job_file"])
        rules = [PathMappingRule.from_dict(r) for r in cmd.get("path_mapping") or []]
        root = Path(cmd["session_root"])
        root.mkdir(parents=True, exist_ok=True)
        self.session = Session(
            session_id=str(cmd["session_id"]), job_parameter_values=values,
            job_name=str(self.job.name), path_mapping_rules=rules or None,
            callback=self.callback, os_env_vars=dict(cmd.get("env") or {}),
            session_root_directory=root, revision_extensions=revision,
        )
        self.send(ev="done", op="open", ok=True, workdir=str(self.session.working_directory))

    def _step(self, name: str) -> Any:
        for step in self.job.steps:
            if step.name == name:
                return step
        raise ValueError(f"the job has no step {name!r}")

    def _wait(self, op: str, started: float, usage0: Any, **extra: Any) -> bool:
        self.action_done.wait()
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        status = self.status
        state = status.state.value if status is not None else "success"
        self.send(
            ev="done", op=op, ok=state == "success", state=state,
            exit_code=None if status is None else status.exit_code,
            fail=None if status is None else self.redact(status.fail_message),
            cpu_s=(usage.ru_utime + usage.ru_stime) - (usage0.ru_utime + usage0.ru_stime),
            peak_rss=usage.ru_maxrss * 1024, wall_s=time.monotonic() - started, **extra,
        )
        return state == "success"

    def _begin(self) -> tuple[float, Any]:
        self.action_done.clear()
        self.status = None
        self.last_progress = None
        self.last_status = None
        return time.monotonic(), resource.getrusage(resource.RUSAGE_CHILDREN)

    def enter(self, cmd: dict[str, Any]) -> None:
        if cmd["scope"] == "job":  # the queue's environments first, as `openjd run --env`
            envs = [("EXTERNAL", e) for e in self.queue_envs] + [
                ("JOB", e) for e in self.job.jobEnvironments or []]
            step_name, symtab = None, None
        else:
            step = self._step(cmd["step"])
            envs, step_name = [("STEP", e) for e in step.stepEnvironments or []], step.name
            symtab = self.symtabs.get(step.name)
        for kind, env in envs:
            ident = f"{kind} - {env.name}"
            started, usage0 = self._begin()
            kwargs: dict[str, Any] = {"resolved_symtab": symtab}
            if step_name is not None:
                kwargs["step_name"] = step_name
            try:
                self.session.enter_environment(environment=env, identifier=ident, **kwargs)
            except (RuntimeError, ValueError) as exc:
                self.send(ev="done", op="enter", ok=False, state="failed", exit_code=None,
                          fail=self.redact(str(exc)), cpu_s=0.0, peak_rss=0, wall_s=0.0,
                          env=env.name)
                return
            self.entered.append((cmd["scope"], ident, symtab))
            if not self._wait("enter-env", started, usage0, env=env.name):
                self.send(ev="done", op="enter", ok=False, state="failed", env=env.name)
                return
        self.send(ev="done", op="enter", ok=True, state="success")

    def task(self, cmd: dict[str, Any]) -> None:
        from wanhe.openjd.template import parameter_values

        step = self._step(cmd["step"])
        started, usage0 = self._begin()
        self.session.run_task(
            step_script=step.script, task_parameter_values=parameter_values(cmd["params"]),
            step_name=step.name, resolved_symtab=self.symtabs.get(step.name),
        )
        self._wait("task", started, usage0)

    def exit(self, scope: str) -> None:
        failed: list[str] = []
        while self.entered and (scope == "all" or self.entered[-1][0] == scope):
            _, ident, symtab = self.entered.pop()
            _started, _usage0 = self._begin()
            try:
                self.session.exit_environment(identifier=ident, keep_session_running=True,
                                              resolved_symtab=symtab)
            except (RuntimeError, ValueError) as exc:
                failed.append(f"{ident}: {self.redact(str(exc))}")
                continue
            self.action_done.wait()
            state = self.status.state.value if self.status is not None else "success"
            if state != "success":
                failed.append(f"{ident}: {state}")
        self.send(ev="done", op="exit", ok=not failed, state="success" if not failed else
                  "failed", fail="; ".join(failed) or None)

    def cancel(self, seconds: float | None) -> None:
        from datetime import timedelta

        session = self.session
        if session is None or session.state.value != "running":
            return
        with contextlib.suppress(RuntimeError):  # it ended meanwhile
            session.cancel_action(time_limit=None if seconds is None else
                                  timedelta(seconds=seconds))


class _Forward(logging.Handler):
    def __init__(self, host: Host) -> None:
        super().__init__(logging.INFO)
        self.host = host

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:
            return
        for line in (self.host.redact(message) or "").splitlines() or [""]:
            self.host.send(ev="log", line=line)


def _move(log: Path, cwd: Path) -> None:
    """Make `cwd` this process's working folder and `log` its stderr (appended), and its
    stdout's old file descriptor too (`main` pointed it at stderr)."""
    cwd.mkdir(parents=True, exist_ok=True)
    os.chdir(cwd)
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o666)
    try:
        os.dup2(fd, 2)
        os.dup2(fd, 1)
    finally:
        os.close(fd)


def _preload() -> None:
    """Import what a session will need, while this process may still read the interpreter's
    own folders (which a project's user may not: the farm's Python can live anywhere)."""
    import importlib
    import pkgutil

    import openjd.model
    import openjd.sessions

    for package in (openjd.model, openjd.sessions):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if "win" in info.name.rsplit(".", 1)[-1]:
                continue
            with contextlib.suppress(Exception):
                importlib.import_module(info.name)
    for name in ("wanhe.openjd.template", "yaml", "shlex", "tempfile", "shutil", "signal",
                 "subprocess", "datetime", "uuid", "hashlib", "stat", "glob", "fnmatch",
                 "locale", "encodings.idna", "encodings.utf_8", "encodings.latin_1",
                 "decimal", "fractions", "pwd", "grp", "ctypes", "ctypes.util", "selectors",
                 "concurrent.futures", "concurrent.futures.thread", "string", "textwrap",
                 "traceback", "weakref", "copy", "dataclasses", "enum", "typing", "pathlib"):
        with contextlib.suppress(Exception):
            importlib.import_module(name)


def _drop_privileges() -> None:
    """Become the session's user (WANHE_HOST_USER=uid:gid), never to return to root."""
    target = os.environ.pop("WANHE_HOST_USER", "")
    if not target:
        return
    uid, gid = (int(x) for x in target.split(":"))
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.geteuid() != uid or os.getegid() != gid:
        raise SystemExit("the session host could not become its user")
    try:
        os.setuid(0)
    except PermissionError:
        return
    raise SystemExit("the session host could return to root: refusing to run")


def main() -> None:
    out = os.fdopen(os.dup(sys.stdout.fileno()), "w", buffering=1, encoding="utf-8")
    os.dup2(sys.stderr.fileno(), sys.stdout.fileno())  # stray prints never reach the protocol
    if os.environ.get("WANHE_HOST_USER"):
        _preload()
    _drop_privileges()
    host = Host(out)
    from openjd.sessions import LOG

    LOG.setLevel(logging.INFO)
    LOG.addHandler(_Forward(host))
    LOG.propagate = False
    work: queue.Queue[dict[str, Any] | None] = queue.Queue()

    def runner() -> None:
        while True:
            cmd = work.get()
            if cmd is None:
                return
            op = cmd.get("op")
            try:
                if op == "open":
                    host.open(cmd)
                elif op == "enter":
                    host.enter(cmd)
                elif op == "task":
                    host.task(cmd)
                elif op == "exit":
                    host.exit(str(cmd.get("scope", "all")))
                elif op == "close":
                    if host.session is not None:
                        host.exit("all")
                        host.session.cleanup()
                    host.send(ev="done", op="close", ok=True)
                    return
            except Exception as exc:  # reported, never a silent hang
                host.send(ev="error", op=op,
                          message=host.redact(f"{type(exc).__name__}: {exc}"))

    thread = threading.Thread(target=runner, name="openjd-host", daemon=True)
    thread.start()
    for raw in sys.stdin:
        try:
            cmd = json.loads(raw)
        except ValueError:
            continue
        if cmd.get("op") == "cancel":
            host.cancel(cmd.get("seconds"))
            continue
        work.put(cmd)
        if cmd.get("op") == "close":
            break
    else:  # stdin closed: the worker is gone; end the session as well as we can
        host.cancel(0)
        work.put({"op": "close"})
    thread.join(timeout=60)
    if not thread.is_alive():
        # Closed: every environment exited and the session cleaned up, its answer sent. Skip
        # the interpreter's teardown of openjd's modules (a tenth of a second the worker
        # waits for); nothing is buffered but stderr.
        with contextlib.suppress(OSError, ValueError):
            sys.stderr.flush()
        os._exit(0)


if __name__ == "__main__":
    main()
