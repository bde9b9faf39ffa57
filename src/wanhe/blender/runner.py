"""`BlenderProcess`: a warm Blender subprocess that renders one task at a time.

Blender runs out of the caller's process (it can crash, hang or eat memory), with factory
startup and auto-exec off. One process keeps its scene loaded between tasks, so the fixed cost
(import bpy, scene sync, BVH) is paid once per worker and scene, not once per tile.
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
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import psutil

from wanhe.blender.errors import BlenderCrashed, BlenderError, BlenderTaskError, BlenderTimeout
from wanhe.blender.protocol import (
    MARKER,
    InspectRequest,
    RenderReply,
    RenderRequest,
    SceneInfo,
    request_dict,
)
from wanhe.metering import METER

WORKER_SCRIPT = Path(__file__).with_name("worker_script.py")

# "Sample 12/64" in Cycles' status line (ours in module mode, Blender's own from a binary).
_SAMPLE_RE = re.compile(r"\bSample (\d+)/(\d+)")
_LOG_TAIL = 200
_EOF = None  # queue sentinel: the process closed its stdout


def worker_command(blender: str | None = None) -> list[str]:
    """The command line that starts the worker: the `bpy` module or a `blender` binary."""
    if blender is None:
        # -P: do not put the script's folder on sys.path, where our inspect.py would shadow
        # the standard library's inspect module.
        return [sys.executable, "-u", "-P", str(WORKER_SCRIPT)]
    return [
        blender,
        "-b",
        "--factory-startup",
        "--disable-autoexec",
        "--python-exit-code",
        "1",
        "--python",
        str(WORKER_SCRIPT),
    ]


def parse_progress(line: str) -> float | None:
    """Fraction 0..1 from a Cycles status line, or None if the line has no sample count."""
    m = _SAMPLE_RE.search(line)
    if not m:
        return None
    done, total = int(m.group(1)), int(m.group(2))
    return min(1.0, done / total) if total > 0 else None


class BlenderProcess:
    """A lazily started, warm Blender worker. Not thread-safe: one task at a time.

    After a timeout or crash the process is gone and the next call starts a fresh one.
    """

    def __init__(
        self,
        blender: str | None = None,
        *,
        env: dict[str, str] | None = None,
        startup_timeout_s: float = 300.0,
        wrap: Callable[[list[str]], list[str]] | None = None,
    ) -> None:
        self.blender = blender
        self.command = worker_command(blender)
        self.wrap = wrap
        """Puts the command in a sandbox (`wanhe.sandbox`: the farm's executor gives it)."""
        self.env = env
        self.startup_timeout_s = startup_timeout_s
        self.blender_version: str | None = None
        # CPU seconds (process tree) of the last task that was killed, read just before the kill.
        self.last_cpu_s_before_kill: float | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._lines: queue.Queue[str | None] = queue.Queue()
        self._tail: collections.deque[str] = collections.deque(maxlen=_LOG_TAIL)
        self._next_id = 0
        self._ready = False  # the process has said it is ready
        self._spawned_at = 0.0
        self._spawn_lock = threading.Lock()
        self._retired = False  # `retire`d: no process is ever started again

    # -- lifecycle ---------------------------------------------------------------------------

    @property
    def pid(self) -> int | None:
        """The worker's process id, or None when no process is running."""
        return self._proc.pid if self._proc is not None and self._proc.returncode is None else None

    @property
    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def spawn(self) -> None:
        """Start the process (if not running) without waiting for it: Python and bpy load
        while the caller does other work; the next `start` (or request) waits for it."""
        with self._spawn_lock:
            if self._retired:
                raise BlenderError("Blender was stopped for good (its caller's time limit "
                                   "passed): not started again")
            self._spawn()

    def _spawn(self) -> None:
        if self.alive:
            return
        self._discard()
        env = dict(os.environ if self.env is None else self.env)
        # Python-level buffering would hold log lines back from the silence watchdog.
        env["PYTHONUNBUFFERED"] = "1"
        self._spawned_at = time.monotonic()
        self._proc = subprocess.Popen(
            self.command if self.wrap is None else self.wrap(self.command),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,  # one stream keeps log order; replies carry MARKER
            env=env,
            start_new_session=True,  # own process group: killpg takes the whole tree
            close_fds=True,
        )
        self._ready = False
        self._lines = queue.Queue()
        self._tail.clear()
        assert self._proc.stdout is not None
        threading.Thread(
            target=_pump, args=(self._proc.stdout, self._lines), daemon=True, name="blender-out"
        ).start()

    def start(self, on_log: Callable[[str], None] | None = None) -> None:
        """Start the process (if not running) and wait for its ready message."""
        if self.alive and self._ready:
            return
        self.spawn()
        try:
            # the start-up limit counts from the spawn: a process spawned early has had time
            ready = self._await_reply(
                None, self._spawned_at, self.startup_timeout_s, None, on_log, None,
                "starting Blender"
            )
        except BlenderCrashed as e:
            raise BlenderCrashed(
                f"Blender failed to start ({' '.join(self.command)}): {e}",
                returncode=e.returncode,
                wall_s=e.wall_s,
                cpu_s=e.cpu_s,
                peak_rss_bytes=e.peak_rss_bytes,
                log_tail=e.log_tail,
            ) from None
        self._ready = True
        self.blender_version = ready.get("blender_version")

    def close(self, timeout_s: float = 10.0) -> None:
        """Ask the worker to quit; kill its process group if it does not exit in time."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                assert proc.stdin is not None
                proc.stdin.write(b'{"op": "quit"}\n')
                proc.stdin.flush()
                proc.stdin.close()
            except (BrokenPipeError, OSError, ValueError):
                pass
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._kill()
        self._discard()

    def retire(self) -> None:
        """Kill the worker now and start none again, whichever thread was about to (a
        caller past its time limit: what it was doing fails with BlenderError at once,
        instead of starting Blender and running to the end)."""
        with self._spawn_lock:
            self._retired = True
        self.kill()

    def kill(self) -> None:
        """Kill the worker's whole process group now (e.g. to cancel a task)."""
        if self._proc is not None and self._proc.poll() is None:
            self._kill()
        self._discard()

    def __enter__(self) -> BlenderProcess:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __del__(self) -> None:
        # Never leave an orphaned Blender behind when a handle is dropped without close().
        with contextlib.suppress(Exception):
            if self._proc is not None and self._proc.poll() is None:
                os.killpg(self._proc.pid, signal.SIGKILL)
                self._proc.wait(timeout=5)

    # -- tasks ---------------------------------------------------------------------------------

    def render(
        self,
        req: RenderRequest,
        *,
        timeout_s: float | None = None,
        silence_s: float | None = None,
        on_log: Callable[[str], None] | None = None,
        on_progress: Callable[[float], None] | None = None,
    ) -> RenderReply:
        """Render one task. A failed render (bad scene, wrong size, ...) returns ok=False.

        Raises BlenderTimeout when `timeout_s` (wall clock, including a cold start) passes or
        no output line arrives for `silence_s` (Cycles prints progress only every ~30 s in
        background mode, so keep it well above that), and BlenderCrashed when the process dies.
        Both carry the task's usage.
        """
        reply = self._call(req, timeout_s, silence_s, on_log, on_progress)
        fields = {k: v for k, v in reply.items() if k in RenderReply.model_fields}
        return RenderReply(**fields)

    def inspect(
        self,
        path: str | Path,
        *,
        timeout_s: float | None = 120.0,
        on_log: Callable[[str], None] | None = None,
    ) -> SceneInfo:
        """Read a scene's settings. Raises BlenderTaskError when Blender cannot open it."""
        req = InspectRequest(scene=str(Path(path).absolute()))
        reply = self._call(req, timeout_s, None, on_log, None)
        if not reply.get("ok"):
            raise BlenderTaskError(str(reply.get("error") or "inspect failed"))
        return SceneInfo(**reply["info"])

    def warm(self, scene: str | Path, *, timeout_s: float | None = 300.0) -> SceneInfo:
        """Start the process and load `scene` now, so the first task does not pay for it."""
        return self.inspect(scene, timeout_s=timeout_s)

    # -- internals -----------------------------------------------------------------------------

    def _call(
        self,
        req: RenderRequest | InspectRequest,
        timeout_s: float | None,
        silence_s: float | None,
        on_log: Callable[[str], None] | None,
        on_progress: Callable[[float], None] | None,
    ) -> dict[str, Any]:
        t0 = time.monotonic()
        self.last_cpu_s_before_kill = None
        self.start(on_log)  # a cold start counts against the task's wall-clock limit
        proc = self._proc
        assert proc is not None and proc.stdin is not None
        self._next_id += 1
        rid = self._next_id
        cpu0 = _tree_cpu_s(proc.pid)
        try:
            proc.stdin.write((json.dumps(request_dict(req, rid)) + "\n").encode())
            proc.stdin.flush()
        except (BrokenPipeError, OSError):
            pass  # the reader will see EOF and report the crash with the log tail
        return self._await_reply(
            rid, t0, timeout_s, silence_s, on_log, on_progress, f"{req.op} task", cpu0
        )

    def _await_reply(
        self,
        rid: int | None,
        t0: float,
        timeout_s: float | None,
        silence_s: float | None,
        on_log: Callable[[str], None] | None,
        on_progress: Callable[[float], None] | None,
        what: str,
        cpu0: float | None = None,
    ) -> dict[str, Any]:
        proc = self._proc
        assert proc is not None
        last = time.monotonic()
        while True:
            now = time.monotonic()
            waits: list[tuple[float, str]] = []
            if timeout_s is not None:
                waits.append((t0 + timeout_s - now, f"wall-clock limit timeout_s={timeout_s:g}"))
            if silence_s is not None:
                waits.append((last + silence_s - now, f"log silence limit silence_s={silence_s:g}"))
            wait, reason = min(waits) if waits else (None, "")
            if wait is not None and wait <= 0:
                self._timeout(reason, what, t0, cpu0)
            try:
                line = self._lines.get(timeout=wait)
            except queue.Empty:
                continue  # the loop re-checks the limits and raises
            last = time.monotonic()
            if line is _EOF:
                self._crashed(what, t0, cpu0)
            assert line is not None
            i = line.find(MARKER)
            if i < 0:
                self._log(line, on_log)
                if on_progress is not None:
                    frac = parse_progress(line)
                    if frac is not None:
                        on_progress(frac)
                continue
            if i > 0:
                self._log(line[:i], on_log)  # Blender's partial line before our reply
            try:
                msg = json.loads(line[i + len(MARKER) :])
            except json.JSONDecodeError:
                self._log(line, on_log)
                continue
            if not isinstance(msg, dict):
                continue
            if rid is None and msg.get("op") == "ready":
                return msg
            if rid is not None and msg.get("id") == rid:
                return msg
            # A reply to something else (cannot normally happen): log it and keep waiting.
            self._log(line, on_log)

    def _log(self, line: str, on_log: Callable[[str], None] | None) -> None:
        if not line.strip():
            return
        self._tail.append(line)
        if on_log is not None:
            on_log(line)

    def _timeout(self, reason: str, what: str, t0: float, cpu0: float | None) -> None:
        proc = self._proc
        assert proc is not None
        cpu_before = _tree_cpu_s(proc.pid)
        cpu_total, peak = self._kill()
        cpu = _task_cpu(cpu_total if cpu_total is not None else cpu_before, cpu0)
        self.last_cpu_s_before_kill = cpu
        tail = list(self._tail)
        self._discard()
        raise BlenderTimeout(
            f"Blender {what} passed its {reason} s and was killed (pid {proc.pid})",
            silent=reason.startswith("log silence"),
            wall_s=time.monotonic() - t0,
            cpu_s=cpu,
            peak_rss_bytes=peak,
            log_tail=tail,
        )

    def _crashed(self, what: str, t0: float, cpu0: float | None) -> None:
        proc = self._proc
        assert proc is not None
        cpu_total, peak = _reap(proc, timeout_s=10.0)
        if proc.returncode is None:  # closed stdout but still running: make sure it is gone
            cpu_total, peak = self._kill()
        rc = proc.returncode
        tail = list(self._tail)
        self._discard()
        if rc is not None and rc < 0:
            try:
                how = f"was killed by signal {signal.Signals(-rc).name}"
            except ValueError:
                how = f"was killed by signal {-rc}"
        else:
            how = f"exited with status {rc}"
        last = "\n".join(tail[-20:])
        raise BlenderCrashed(
            f"Blender {how} during {what} (pid {proc.pid}). Last log lines:\n{last}",
            returncode=rc,
            wall_s=time.monotonic() - t0,
            cpu_s=_task_cpu(cpu_total, cpu0),
            peak_rss_bytes=peak,
            log_tail=tail,
        )

    def _kill(self) -> tuple[float | None, int | None]:
        """SIGKILL the process group and reap the leader; returns its lifetime (cpu_s, peak)."""
        proc = self._proc
        assert proc is not None
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(proc.pid, signal.SIGKILL)
        return _reap(proc, timeout_s=30.0)

    def _discard(self) -> None:
        proc, self._proc = self._proc, None
        self._ready = False
        if proc is None:
            return
        for f in (proc.stdin, proc.stdout):
            with contextlib.suppress(Exception):
                if f is not None:
                    f.close()
        if proc.returncode is None:
            with contextlib.suppress(Exception):
                proc.wait(timeout=1)


def _pump(stream: IO[bytes], out: queue.Queue[str | None]) -> None:
    try:
        for raw in iter(stream.readline, b""):
            out.put(raw.decode("utf-8", errors="replace").rstrip("\r\n"))
    except (OSError, ValueError):
        pass
    out.put(_EOF)


def _tree_cpu_s(pid: int) -> float | None:
    """User+system CPU seconds of a process and its live children (psutil)."""
    try:
        p = psutil.Process(pid)
        total = 0.0
        for q in [p, *p.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                t = q.cpu_times()
                total += t.user + t.system
        return total
    except psutil.Error:
        return None


def _task_cpu(total: float | None, before: float | None) -> float | None:
    if total is None:
        return None
    return max(0.0, total - (before or 0.0))


def _reap(proc: subprocess.Popen[bytes], timeout_s: float) -> tuple[float | None, int | None]:
    """Wait for the process with wait4, which also returns its final rusage (CPU, peak RSS).

    Returns (None, None) if it does not exit within `timeout_s`.
    """
    if proc.returncode is not None:
        return None, None
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            pid, status, ru = os.wait4(proc.pid, os.WNOHANG)
        except ChildProcessError:  # already reaped elsewhere
            proc.poll()
            return None, None
        if pid == proc.pid:
            proc.returncode = os.waitstatus_to_exitcode(status)
            # Blender's CPU is metered per task here: in-process tasks of a local run must
            # not share its lifetime's CPU too
            METER.exclude_children(ru.ru_utime + ru.ru_stime)
            rss = ru.ru_maxrss if sys.platform == "darwin" else ru.ru_maxrss * 1024
            return ru.ru_utime + ru.ru_stime, rss
        if time.monotonic() > deadline:
            return None, None
        time.sleep(0.01)
