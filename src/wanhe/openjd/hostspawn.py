"""Session hosts forked from one process that imported openjd once.

A session host's start is a Python importing openjd-model and openjd-sessions: about 0.3 CPU
seconds, paid by every host. `wanhe run` starts its hosts ahead (`wanhe.openjd.hostpool`);
instead of one interpreter per host, one *spawner* (`python -m wanhe.openjd.hostspawn`)
imports everything a session needs, then forks the hosts, each with the pipes this process
made for it (its stdin, stdout and stderr), in a process group of its own. On a 2-core machine the
hosts' imports were as much CPU as the command's own.

The spawner stays the hosts' parent: it reaps each and reports its exit status, so this
process sees each host as a `ForkedHost` (the part of `subprocess.Popen` the OpenJD executor
uses: pid, stdin, stdout, poll, wait, returncode). It exits when its last host has and its
stdin is closed.

Having openjd imported, the spawner also plans the job once (`Spawner.ask`: the same
`wanhe.openjd.template.plan` the command would call), so that the command itself never imports
openjd-model (a tenth of a second on its own critical path). A spawner that cannot answer is
no worse than none: the command then plans in-process, as it would have.

    spawner stdin:   "plan B64" (the pickled keyword arguments of `plan`), once
    spawner stdout:  "pids P1 P2 …" once every host is forked, "exit PID CODE" per host, and
                     "plan B64" (the pickled ("ok", Plan) or ("error", field, message))

The spawner runs as this process's user, as the hosts do (only a local run's hosts start
ahead); it runs nothing of a job. Each host is moved into its own cgroup (`hostpool`) before
its session opens.
"""

from __future__ import annotations

import base64
import contextlib
import os
import pickle
import subprocess
import sys
import threading
import time
from typing import IO, TYPE_CHECKING, Any

if TYPE_CHECKING:
    from wanhe.openjd.template import Plan


def spawner_command(fds: list[tuple[int, int, int]]) -> list[str]:
    """The spawner's command line: one `stdin,stdout,stderr` triple of descriptors a host."""
    groups = ";".join(",".join(str(fd) for fd in triple) for triple in fds)
    return [sys.executable, "-m", "wanhe.openjd.hostspawn", groups]


class Spawner:
    """One spawner process and what it reported; `ForkedHost`s read their state here."""

    def __init__(self, proc: subprocess.Popen[str], err: IO[bytes]) -> None:
        self.proc = proc
        self.err = err
        self.pids: list[int] | None = None
        self.exits: dict[int, int] = {}
        self.asked = False  # for its one plan
        self.answer: str | None = None
        self.ended = False  # its report ended: it exited (or was killed)
        self.changed = threading.Condition()
        threading.Thread(target=self._read, daemon=True,
                         name=f"openjd-spawner-{proc.pid}").start()

    @classmethod
    def start(cls, count: int, env: dict[str, str]) -> tuple[Spawner, list[ForkedHost]]:
        """Start a spawner for `count` hosts with environment `env`; the hosts' ends of
        their pipes are this process's to use from now on."""
        child_fds: list[tuple[int, int, int]] = []
        ours: list[tuple[int, int, IO[bytes]]] = []
        try:
            for _ in range(count):
                stdin_r, stdin_w = os.pipe()
                stdout_r, stdout_w = os.pipe()
                err = _temporary_file()
                child_fds.append((stdin_r, stdout_w, err.fileno()))
                ours.append((stdin_w, stdout_r, err))
            spawn_err = _temporary_file()
            try:
                proc = subprocess.Popen(
                    spawner_command(child_fds), stdin=subprocess.PIPE,
                    stdout=subprocess.PIPE, stderr=spawn_err, text=True, encoding="utf-8",
                    env=env, start_new_session=True, close_fds=True,
                    pass_fds=[fd for triple in child_fds for fd in triple],
                )
            except BaseException:
                spawn_err.close()
                raise
        except BaseException:
            for stdin_w, stdout_r, err in ours:
                _close_fds(stdin_w, stdout_r)
                err.close()
            raise
        finally:
            for stdin_r, stdout_w, _err in child_fds:
                _close_fds(stdin_r, stdout_w)
        spawner = cls(proc, spawn_err)
        hosts = [ForkedHost(spawner, i, stdin_w, stdout_r, err)
                 for i, (stdin_w, stdout_r, err) in enumerate(ours)]
        return spawner, hosts

    def _read(self) -> None:
        assert self.proc.stdout is not None
        try:
            for line in self.proc.stdout:
                word, *rest = line.split()
                with self.changed:
                    if word == "pids":
                        self.pids = [int(p) for p in rest]
                    elif word == "exit" and len(rest) == 2:
                        self.exits[int(rest[0])] = int(rest[1])
                    elif word == "plan" and len(rest) == 1:
                        self.answer = rest[0]
                    self.changed.notify_all()
        except (OSError, ValueError):
            pass
        finally:
            with self.changed:
                self.ended = True
                self.changed.notify_all()
            with contextlib.suppress(OSError):
                self.proc.stdout.close()
            self.proc.wait()
            self.err.close()

    def wait_for_pids(self, timeout_s: float) -> list[int] | None:
        """The hosts' pids once forked; None if the spawner ended (or did not answer in
        `timeout_s`) without forking them."""
        with self.changed:
            self.changed.wait_for(lambda: self.pids is not None or self.ended, timeout_s)
            return self.pids

    def ask(self, arguments: dict[str, Any]) -> bool:
        """Send the one request to plan `wanhe.openjd.template.plan(**arguments)`
        (`answer_to` waits for it); whether it was sent: not when it planned already or
        ended."""
        with self.changed:
            if self.asked or self.ended:
                return False
            self.asked = True
        try:
            request = base64.b64encode(pickle.dumps(arguments)).decode("ascii")
            assert self.proc.stdin is not None
            self.proc.stdin.write(f"plan {request}\n")
            self.proc.stdin.flush()
        except (OSError, ValueError, pickle.PicklingError):
            return False
        finally:
            self.close_requests()
        return True

    def answer_to(self, timeout_s: float) -> Plan | None:
        """The plan `ask` asked for; raises its TemplateError as `plan` would here. None when
        the spawner cannot answer (it ended, or took longer than `timeout_s`): plan
        in-process then."""
        from wanhe.openjd.template import TemplateError

        with self.changed:
            self.changed.wait_for(lambda: self.answer is not None or self.ended, timeout_s)
            answer = self.answer
        if answer is None:
            return None
        found = pickle.loads(base64.b64decode(answer))  # our own spawner's answer
        if found[0] == "error":
            raise TemplateError(found[1], found[2])
        return found[1] if found[0] == "ok" else None

    def close_requests(self) -> None:
        """No more requests: the spawner ends once its hosts have."""
        with contextlib.suppress(OSError, ValueError):
            self.proc.stdin and self.proc.stdin.close()

    def kill(self) -> None:
        """Stop a spawner that has not forked yet (its hosts were given up): a host it forked
        meanwhile finds its stdin closed and ends."""
        if self.pids is None and self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.proc.pid, 9)
        with self.changed:
            self.changed.wait_for(lambda: self.ended, 5.0)


class ForkedHost:
    """A host the spawner forked, as the OpenJD executor uses a `subprocess.Popen`."""

    args = "wanhe.openjd.host (forked)"

    def __init__(self, spawner: Spawner, index: int, stdin_fd: int, stdout_fd: int,
                 stderr: IO[bytes]) -> None:
        self.spawner = spawner
        self.index = index
        self.stdin: IO[str] | None = os.fdopen(stdin_fd, "w", encoding="utf-8")
        self.stdout: IO[str] | None = os.fdopen(stdout_fd, "r", encoding="utf-8")
        self.stderr = stderr
        self.returncode: int | None = None
        self._pid: int | None = None

    def started(self, timeout_s: float) -> bool:
        """Whether the spawner forked this host (waiting up to `timeout_s` for it)."""
        if self._pid is None:
            pids = self.spawner.wait_for_pids(timeout_s)
            if pids is None or self.index >= len(pids):
                return False
            self._pid = pids[self.index]
        return True

    @property
    def pid(self) -> int:
        if self._pid is None and not self.started(0):
            raise RuntimeError("the session host has not been forked yet")
        assert self._pid is not None
        return self._pid

    def poll(self) -> int | None:
        if self.returncode is not None:
            return self.returncode
        spawner = self.spawner
        with spawner.changed:
            if self._pid is None:
                if spawner.pids is None:
                    return -9 if spawner.ended else None  # never forked: it never ran
                self._pid = spawner.pids[self.index]
            code = spawner.exits.get(self._pid)
            if code is None and spawner.ended and not _alive(self._pid):
                code = -9  # the spawner was killed before it could say how the host ended
        self.returncode = code
        return code

    def wait(self, timeout: float | None = None) -> int:
        deadline = None if timeout is None else time.monotonic() + timeout
        spawner = self.spawner
        while True:
            code = self.poll()
            if code is not None:
                return code
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise subprocess.TimeoutExpired(self.args, timeout or 0.0)
            with spawner.changed:
                spawner.changed.wait(0.2 if left is None else min(0.2, left))

    def kill(self) -> None:
        """SIGKILL the host and everything in its process group, once forked (one not forked
        yet ends on its closed stdin, or with its spawner: `hostpool.discard`)."""
        if self.poll() is None and self._pid is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self._pid, 9)

    def close_pipes(self) -> None:
        for stream in (self.stdin, self.stdout, self.stderr):
            with contextlib.suppress(OSError):
                stream and stream.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def _temporary_file() -> IO[bytes]:
    import tempfile

    return tempfile.TemporaryFile()  # kept until its host's session opens


def _close_fds(*fds: int) -> None:
    for fd in fds:
        with contextlib.suppress(OSError):
            os.close(fd)


# -- the spawner process ---------------------------------------------------------------------


def _spawn(groups: list[tuple[int, int, int]]) -> None:
    from wanhe.openjd import host

    host._preload()  # once, for every host forked below
    _warm_up()
    report = os.dup(1)
    every = {fd for triple in groups for fd in triple}
    pids: list[int] = []
    for stdin_fd, stdout_fd, stderr_fd in groups:
        sys.stdout.flush()
        sys.stderr.flush()
        pid = os.fork()
        if pid == 0:
            try:
                os.setpgid(0, 0)
                os.dup2(stdin_fd, 0)
                os.dup2(stdout_fd, 1)
                os.dup2(stderr_fd, 2)
                _close_fds(report, *every)  # another host's pipes are not this one's
                host.main()
            finally:
                os._exit(1)
        # its own process group before anyone hears of it, so killpg(pid) kills it and all
        # it starts (the child says so too: whichever runs first); the spawner's session,
        # apart from the command's terminal, is theirs
        with contextlib.suppress(OSError):
            os.setpgid(pid, pid)
        pids.append(pid)
    _close_fds(*every)
    lock = threading.Lock()

    def say(line: str) -> None:
        data = (line + "\n").encode()
        with lock, contextlib.suppress(OSError):
            while data:
                data = data[os.write(report, data):]

    say("pids " + " ".join(map(str, pids)))
    # threads only now, every fork done: the reaper, and planning in this (main) thread
    reaper = threading.Thread(target=_reap, args=(say,), name="reaper")
    reaper.start()
    for line in sys.stdin.buffer:
        word, _, request = line.decode("ascii", "replace").strip().partition(" ")
        if word == "plan":
            say("plan " + _planned(request))
    reaper.join()
    os._exit(0)


# A small job using what most templates do (a PATH parameter, an environment, a task
# parameter range, format strings): reading it once makes openjd-model build its validators,
# so each forked host's first `open` reads the real job in ~1 ms, not ~9 ms.
_WARM_UP_JOB: dict[str, Any] = {
    "template": {
        "specificationVersion": "jobtemplate-2023-09", "name": "warm-up",
        "parameterDefinitions": [
            {"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT"},
            {"name": "N", "type": "INT", "default": 1}],
        "jobEnvironments": [{"name": "E", "variables": {"A": "{{Param.N}}"}}],
        "steps": [{"name": "S", "parameterSpace": {"taskParameterDefinitions": [
            {"name": "F", "type": "INT", "range": "1-2"}]},
            "script": {"actions": {"onRun": {"command": "echo",
                                             "args": ["{{Param.Out}}", "{{Task.Param.F}}"]}}}}]},
    "parameters": {"Out": {"type": "PATH", "value": "/nonexistent"},
                   "N": {"type": "INT", "value": "1"}},
    "extensions": []}


def _warm_up() -> None:
    from wanhe.openjd.template import load_job, queue_environments

    with contextlib.suppress(Exception):  # only an optimisation
        load_job(_WARM_UP_JOB)
        queue_environments(_WARM_UP_JOB)


def _reap(say: Any) -> None:
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return
        say(f"exit {pid} {os.waitstatus_to_exitcode(status)}")


def _planned(request: str) -> str:
    """The answer to a plan request: ("ok", Plan), ("error", field, message) for the
    template's own mistake, or ("failed", why) for anything else (the command then plans
    in-process and says what is wrong as it would have)."""
    from wanhe.openjd.template import TemplateError, plan

    try:
        arguments = pickle.loads(base64.b64decode(request))  # the command's own request
        found: tuple[Any, ...] = ("ok", plan(**arguments))
    except TemplateError as exc:
        found = ("error", exc.field, exc.message)
    except Exception as exc:  # not this process's to explain
        found = ("failed", f"{type(exc).__name__}: {exc}")
    return base64.b64encode(pickle.dumps(found)).decode("ascii")


def main() -> None:
    groups = [tuple(int(fd) for fd in triple.split(",")) for triple in sys.argv[1].split(";")]
    _spawn([(g[0], g[1], g[2]) for g in groups])


if __name__ == "__main__":
    main()
