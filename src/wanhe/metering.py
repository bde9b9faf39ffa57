"""CPU seconds of work that runs inside this process, counted once.

On the farm each worker is a process of its own running one task at a time, so the process's
rusage is the task's. A local run (`wanhe render --workers 2`, `wanhe story render`, …) runs its
workers as threads of one process: two in-process tasks running at once would each see the
other's CPU (and each other's children) in the process's rusage, and the bill would count it
twice. So every in-process task is metered here (`task()`): whenever a task starts or ends, the
process's CPU since the last such moment (its own, and its waited children's) is split evenly
among the tasks that were running; the sum over tasks is the process's CPU while tasks ran. A
task alone gets the process's whole delta, exactly as before; one that overlapped another is
marked `apportioned`.

A child whose usage is known exactly (`os.wait4`) is taken out of the split: `claim_children`
gives it to the task of the calling thread (`run` does that for a program a task runs and
waits for), `exclude_children` to nobody (it is metered elsewhere: a command task's process
group, a worker's Blender).

This module is in the core layer (standard library only) so the domain code that runs the
programs (voice, Blender) can claim their exact figures where it waits for them.
"""

from __future__ import annotations

import contextlib
import os
import resource
import subprocess
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

Clock = Callable[[], tuple[float, float]]


def _cpu(usage: resource.struct_rusage) -> float:
    return usage.ru_utime + usage.ru_stime


def process_cpu() -> tuple[float, float]:
    """This process's CPU seconds so far: (its own threads, its waited-for children)."""
    return (_cpu(resource.getrusage(resource.RUSAGE_SELF)),
            _cpu(resource.getrusage(resource.RUSAGE_CHILDREN)))


@dataclass(slots=True, eq=False)  # each task's share is itself: never equal to another
class Share:
    """One task's CPU seconds: its share of the process's own CPU and of its children's,
    plus the children it waited for itself (exact). `apportioned`: it overlapped another
    in-process task, so its figure is a share, not a measurement of it alone."""

    own_s: float = 0.0
    children_s: float = 0.0
    exact_s: float = 0.0
    apportioned: bool = False

    @property
    def cpu_s(self) -> float:
        return self.own_s + self.children_s + self.exact_s


class Meter:
    """The process-wide meter (see the module's docstring). `clock` reads the process's CPU
    (own, children); tests may give another."""

    def __init__(self, clock: Clock = process_cpu) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._running: list[Share] = []
        self._last = clock()
        self._debt = 0.0  # exact children's CPU still inside the next deltas: not to split
        self._local = threading.local()

    def _advance(self) -> None:
        """Split the process's CPU since the last call among the running tasks (lock held)."""
        own, kids = self._clock()
        d_own, d_kids = own - self._last[0], kids - self._last[1]
        self._last = (own, kids)
        if not self._running:
            self._debt = 0.0  # nobody to give it to: nothing to hold back either
            return
        held = min(max(d_kids, 0.0), self._debt)
        self._debt -= held
        d_kids -= held
        n = len(self._running)
        for share in self._running:
            share.own_s += d_own / n
            share.children_s += d_kids / n

    def current(self) -> Share | None:
        """The task the calling thread is running, if any."""
        share: Share | None = getattr(self._local, "share", None)
        return share

    @contextlib.contextmanager
    def task(self) -> Iterator[Share]:
        """Meter the work done inside the block as one task; the share is final on exit.
        Nested in a task of the same thread, it is the outer task's CPU during the block."""
        outer = self.current()
        if outer is not None:
            yield from self._nested(outer)
            return
        share = Share()
        with self._lock:
            self._advance()
            if self._running:
                share.apportioned = True
                for other in self._running:
                    other.apportioned = True
            self._running.append(share)
        self._local.share = share
        try:
            yield share
        finally:
            self._local.share = None
            with self._lock:
                self._advance()
                self._running.remove(share)
                if not self._running:
                    self._debt = 0.0

    def _nested(self, outer: Share) -> Iterator[Share]:
        with self._lock:
            self._advance()
            start = Share(outer.own_s, outer.children_s, outer.exact_s)
        inner = Share()
        try:
            yield inner
        finally:
            with self._lock:
                self._advance()
                inner.own_s = outer.own_s - start.own_s
                inner.children_s = outer.children_s - start.children_s
                inner.exact_s = outer.exact_s - start.exact_s
                inner.apportioned = outer.apportioned

    def read(self, share: Share) -> float:
        """`share`'s CPU seconds so far (mid-task: what a failing attempt reports)."""
        with self._lock:
            if share in self._running:
                self._advance()
            return share.cpu_s

    def claim_children(self, cpu_s: float) -> None:
        """A child the calling thread has just waited for used `cpu_s` (wait4's figure): it
        is the calling thread's task's, exactly, and no other task's share. Called from no
        task, it is nobody's (as `exclude_children`)."""
        with self._lock:
            self._debt += max(cpu_s, 0.0)
            self._advance()
            share = self.current()
            if share is not None and share in self._running:
                share.exact_s += max(cpu_s, 0.0)

    def exclude_children(self, cpu_s: float) -> None:
        """A waited-for child whose `cpu_s` is metered elsewhere: no in-process task's."""
        with self._lock:
            self._debt += max(cpu_s, 0.0)
            self._advance()


METER = Meter()
"""The one meter of this process."""


class Waited(subprocess.Popen):  # type: ignore[type-arg]
    """A Popen that reaps its child with wait4, keeping the child's rusage."""

    rusage: resource.struct_rusage | None = None

    def _try_wait(self, wait_flags: int) -> tuple[int, int]:
        # CPython's Popen reaps through this hook (wait, communicate, run's clean-up);
        # the same contract, with wait4 instead of waitpid.
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:  # SIGCHLD ignored, or reaped elsewhere: status unknown
            return self.pid, 0
        if pid == self.pid:
            self.rusage = usage
        return pid, status


class Completed(subprocess.CompletedProcess[Any]):
    """`subprocess.CompletedProcess` with the program's CPU seconds (None: not reaped here)."""

    cpu_s: float | None = None


def run(args: Sequence[str], *, input: str | bytes | None = None,
        capture_output: bool = False, timeout: float | None = None, check: bool = False,
        **kwargs: Any) -> Completed:
    """`subprocess.run` for a program a task runs and waits for: its CPU (and its waited-for
    descendants') is given to the calling thread's task exactly (`claim_children`)."""
    if input is not None:
        kwargs["stdin"] = subprocess.PIPE
    if capture_output:
        kwargs["stdout"] = kwargs["stderr"] = subprocess.PIPE
    proc = Waited(list(args), **kwargs)
    try:
        with proc:
            try:
                out, err = proc.communicate(input, timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.communicate()
                raise
            except BaseException:
                proc.kill()
                raise
    finally:
        if proc.rusage is not None:
            METER.claim_children(_cpu(proc.rusage))
    code = proc.returncode
    if check and code:
        raise subprocess.CalledProcessError(code, proc.args, output=out, stderr=err)
    done = Completed(proc.args, code, out, err)
    done.cpu_s = _cpu(proc.rusage) if proc.rusage is not None else None
    return done
