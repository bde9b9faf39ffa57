"""The sandbox a task's processes run in: the project's OS user, a mount namespace, a cgroup.

    box = Sandbox.open("job7-frame3", spec, account)   # the cgroup is made here
    proc = subprocess.Popen(box.command(argv), ...)     # argv, wrapped
    ...
    box.cpu_s(); box.peak_memory(); box.out_of_memory()
    box.close()                                         # every process in it killed

Which parts are on is decided once per process (`mode()`), in this one place, for every
executor: all of them when the farm runs as root on Linux with bubblewrap and cgroups; none
on a laptop (not root), where tasks run as the service's user and the service says so once;
`WANHE_SANDBOX=off` turns it off on purpose (to measure what it costs).
"""

from __future__ import annotations

import logging
import os
import shlex
import threading
from dataclasses import dataclass
from pathlib import Path

from wanhe.sandbox import cgroup, mounts
from wanhe.sandbox.accounts import Account
from wanhe.sandbox.spec import SandboxSpec

log = logging.getLogger("wanhe.sandbox")
_lock = threading.Lock()
_mode: Mode | None = None
_said = False


@dataclass(frozen=True, slots=True)
class Mode:
    """What this process's sandbox can do, and why not the rest."""

    users: bool  # tasks run as their project's OS user
    namespace: str | None  # bubblewrap's path: tasks see only their own files
    cgroups: bool  # tasks' memory and processes are limited, their CPU metered
    why_not: str = ""

    @property
    def on(self) -> bool:
        return self.users or self.namespace is not None or self.cgroups


def mode() -> Mode:
    """The sandbox this process gives its tasks (looked at once)."""
    global _mode
    with _lock:
        if _mode is None:
            _mode = _decide()
        return _mode


def _decide() -> Mode:
    if os.environ.get("WANHE_SANDBOX", "").lower() in ("off", "0", "no", "false"):
        return Mode(False, None, False, "turned off (WANHE_SANDBOX=off)")
    if os.name != "posix" or os.geteuid() != 0:
        return Mode(False, None, False, "not running as root")
    missing: list[str] = []
    tool = mounts.bwrap()
    if tool is None:
        missing.append("bubblewrap is not installed (apt-get install bubblewrap): tasks see "
                       "every file their user may read")
    no_cgroups = cgroup.available()
    if no_cgroups is not None:
        missing.append(f"no task cgroups ({no_cgroups}): tasks' memory and processes are not "
                       "limited")
    return Mode(True, tool, no_cgroups is None, "; ".join(missing))


def describe() -> str:
    """One line for the service's start: what the sandbox does here."""
    found = mode()
    if not found.on:
        return (f"sandbox off ({found.why_not}): tasks run unsandboxed as the service's user, "
                "and a task can read and use what that user can")
    parts = ["each project's own OS user"]
    if found.namespace:
        parts.append("a mount namespace showing only the job's folders and the farm's software")
    if found.cgroups:
        parts.append("a cgroup limiting memory and processes and metering CPU")
    line = "sandbox on: tasks run in " + ", ".join(parts)
    return line + (f" — but {found.why_not}" if found.why_not else "")


def say_once() -> None:
    """Log `describe()` once per process (a worker says it at its first task)."""
    global _said
    with _lock:
        if _said:
            return
        _said = True
    found = mode()
    # A warning only where the farm runs as root yet a part is missing; a laptop's (not
    # root) is expected, and `wanhe serve` has printed it at start.
    (log.warning if found.on and found.why_not else log.info)(describe())


class Sandbox:
    """One task's (or one warm process's) sandbox. `close` kills everything left in it."""

    def __init__(self, name: str, spec: SandboxSpec, account: Account,
                 group: cgroup.TaskCgroup | None, found: Mode) -> None:
        self.name = name
        self.spec = spec
        self.account = account
        self.group = group
        self.mode = found
        self._oom0 = group.oom_kills() if group is not None else 0
        self._cpu0 = group.cpu_s() if group is not None else 0.0

    @classmethod
    def open(cls, name: str, spec: SandboxSpec, account: Account, *,
             confine: bool = True) -> Sandbox:
        """Make the sandbox (its cgroup, when cgroups are on); raise cgroup.CgroupError.
        `confine=False`: no mount namespace — a local run (`wanhe run`) uses its user's own
        paths, which is the user's right; the cgroup still holds and meters it."""
        say_once()
        found = mode()
        if not confine and found.namespace is not None:
            found = Mode(found.users, None, found.cgroups, found.why_not)
        group = None
        if found.cgroups:
            group = cgroup.TaskCgroup.create(name, memory_bytes=spec.memory_bytes,
                                             pids_max=spec.pids_max)
        return cls(name, spec, account, group, found)

    def adopt(self, name: str, spec: SandboxSpec) -> None:
        """Make a sandbox opened before its task was known (a session host started ahead,
        `wanhe.openjd.hostpool`) that task's: its spec, and the memory limit in it, from now
        on. Only a sandbox without a mount namespace: a namespace's mounts are fixed when its
        first process starts."""
        if self.isolated:
            raise ValueError("a sandbox with a mount namespace cannot take another task's spec")
        if spec.pids_max != self.spec.pids_max:
            raise ValueError("the task's process limit differs from the sandbox's")
        self.name = name
        self.spec = spec
        self.set_memory(spec.memory_bytes)

    @property
    def isolated(self) -> bool:
        """Whether the task sees only its own files (a mount namespace)."""
        return self.mode.namespace is not None

    def command(self, argv: list[str], *, drop: bool = True) -> list[str]:
        """`argv` run in this sandbox: entering the cgroup, then the mount namespace, then
        becoming the project's user. `drop=False`: the program drops to the user itself
        (the OpenJD session host, which must read its interpreter first)."""
        wrapped = list(argv)
        if drop and self.account.isolated:
            wrapped = mounts.setpriv_args(self.account.uid, self.account.gid) + wrapped
        if self.mode.namespace is not None:
            wrapped = mounts.bwrap_args(self.spec, bwrap_path=self.mode.namespace,
                                        become_user=self.account.isolated) + wrapped
        if self.group is not None:
            # The shell enters the cgroup before anything else runs: no child escapes it.
            # (Strictly: a task that cannot enter its cgroup does not run at all.)
            enter = " && ".join(f"echo $$ > {shlex.quote(f)}"
                                for f in self.group.attach_files())
            wrapped = ["/bin/sh", "-c", f'{enter} && exec "$@"', "wanhe-sandbox", *wrapped]
        return wrapped

    # -- what it used, and the end -------------------------------------------------------------

    def mark(self) -> None:
        """Start counting a new task's use here (a warm process's next task)."""
        if self.group is not None:
            self._oom0 = self.group.oom_kills()
            self._cpu0 = self.group.cpu_s()
            self.group.reset_peak()

    def set_memory(self, memory_bytes: int | None) -> None:
        if self.group is not None:
            self.group.set_memory(memory_bytes)

    def cpu_s(self) -> float | None:
        """CPU seconds of every process in the sandbox since `mark` (None without cgroups)."""
        return None if self.group is None else self.group.cpu_s() - self._cpu0

    def peak_memory(self) -> int | None:
        return None if self.group is None else self.group.peak_memory()

    def out_of_memory(self) -> bool:
        """Whether the kernel killed a process of the sandbox for memory since `mark`."""
        return self.group is not None and self.group.oom_kills() > self._oom0

    def pids(self) -> list[int]:
        return [] if self.group is None else self.group.pids()

    def kill(self, pids: list[int]) -> bool:
        return True if self.group is None else self.group.kill(pids)

    def kill_all(self) -> bool:
        """Kill every process in the sandbox, daemons included; True once none is left."""
        return True if self.group is None else self.group.kill_all()

    def close(self) -> None:
        if self.group is not None:
            self.group.remove()

    def limit_text(self) -> str:
        memory = self.spec.memory_bytes
        return "no memory limit" if memory is None else f"memory limit {memory / 2**20:.0f} MiB"


_contained: dict[str, cgroup.TaskCgroup] = {}


def in_process_cgroup(worker: str) -> str:
    """The name of worker `worker`'s own cgroup (`contain_this_process`)."""
    return f"inproc-{worker}"


def contain_this_process(name: str, memory_bytes: int | None) -> bool:
    """Put this process (a worker running tasks in-process, e.g. diffusion) in a cgroup of
    its own limited to `memory_bytes`, re-limited at each call: a task that grows past it
    is killed by the kernel inside this cgroup (this worker, which the farm replaces, and
    requeues its attempt) instead of the machine running out and Ray's memory monitor killing
    other workers. False where cgroups are off."""
    if not mode().cgroups:
        return False
    say_once()
    with _lock:
        group = _contained.get(name)
        if group is None:
            group = cgroup.TaskCgroup.create(name, memory_bytes=memory_bytes)
            group.attach(os.getpid())
            _contained[name] = group
            return True
    group.set_memory(memory_bytes)
    return True


@dataclass(frozen=True, slots=True)
class KilledForMemory:
    """A contained worker the kernel killed in its cgroup for memory."""

    limit: int | None
    peak: int

    def reason(self) -> str:
        limit = "its" if self.limit is None else f"its {_size(self.limit)}"
        return (f"the task used more than {limit} memory limit (peak {_size(self.peak)}) and "
                "the kernel stopped its worker — ask for more memory for the task (for a "
                "generation shot: register the model's need with `wanhe models add "
                "--gpu-memory`, or render fewer or smaller images per task)")


def killed_for_memory(pid: int, name: str) -> KilledForMemory | None:
    """Whether worker process `pid` (now dead) was killed by the kernel for memory inside its
    own cgroup `name` (`contain_this_process`): its limit and peak. None when it was not, or
    where that cannot be known (no cgroups, a worker on another node)."""
    if not pid or not mode().cgroups:
        return None
    found = cgroup.layout()
    if isinstance(found, str):
        return None
    group = cgroup.TaskCgroup(cgroup.folder_name(pid, name), found)
    if not group.exists() or group.oom_kills() == 0:
        return None
    return KilledForMemory(group.memory_limit(), group.peak_memory())


def _size(n: int) -> str:
    return f"{n / 2**30:.1f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


def default_memory_bytes(share: float = 0.8) -> int | None:
    """A task's memory limit when it asked for none: `share` of this machine's (or this
    container's) memory, so one task cannot bring the machine into Ray's OOM killer."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        return None
    return int(total * share)


def task_memory(requested: int | None) -> int | None:
    """A task's memory limit: what it asked for, else `default_memory_bytes()`."""
    return requested if requested else default_memory_bytes()


def job_spec(job_root: Path, *, memory_bytes: int | None, extra_writable: tuple[Path, ...] = (),
             software: tuple[Path, ...] = (), gpu: bool = False,
             hidden: tuple[Path, ...] = ()) -> SandboxSpec:
    """The usual spec of a job's task: `<job>/input` read-only, `<job>/output` and
    `<job>/work` read-write, nothing else of the work area (`<job>/../..`)."""
    from wanhe.sandbox.spec import farm_hidden, gpu_devices, pids_limit

    work_area = job_root.parent.parent
    return SandboxSpec(
        inputs=(job_root / "input",),
        writable=(job_root / "output", job_root / "work", *extra_writable),
        software=software, hidden=farm_hidden(work_area, *hidden),
        memory_bytes=memory_bytes, pids_max=pids_limit(),
        devices=gpu_devices() if gpu else (),
    )
