"""Task cgroups: what a task may use (memory, processes) and what it used (CPU, peak memory).

One cgroup per task (or per warm process, re-limited per task), made under the cgroup this
process is in — never at the root, which a container may not let us write. Both kernels'
layouts are served:

- cgroup v1 (this farm's machines): one folder per controller, `memory`, `pids`, `cpuacct`
  and `freezer`, each at `/sys/fs/cgroup/<controller>/<our cgroup>/wanhe/<name>`;
- cgroup v2: one folder `/sys/fs/cgroup/<our cgroup>/wanhe/<name>` with the `memory`, `pids`
  and `cpu` controllers enabled above it.

Killing a cgroup kills every process in it however it left its session or process group
(`setsid`, a double fork): freeze it, SIGKILL every member, thaw, until it is empty. The
kernel's out-of-memory killer acting inside the cgroup is counted (`oom_kill`), so a task it
killed is reported as out of memory with its peak, not as a mysterious SIGKILL.

Creating cgroups needs root (or a delegated subtree); `available()` says why not otherwise.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import signal
import threading
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path("/sys/fs/cgroup")
V1_CONTROLLERS = ("memory", "pids", "cpuacct", "freezer")
PARENT = "wanhe"  # our cgroups' folder under this process's own cgroup
_KILL_ROUNDS_S = 10.0
_lock = threading.Lock()
_layout: _Layout | str | None = None  # None: not looked at yet; str: why there is none


class CgroupError(OSError):
    """A cgroup could not be made or changed (the message says which file and why)."""


@dataclass(frozen=True, slots=True)
class _Layout:
    version: int  # 1 or 2
    bases: dict[str, Path]  # v1: controller -> our folder under it; v2: {"": our folder}


def _own_paths() -> dict[str, str]:
    """This process's cgroup path per v1 controller, and "" -> its v2 path."""
    found: dict[str, str] = {}
    with open("/proc/self/cgroup", encoding="utf-8") as f:
        for line in f:
            parts = line.rstrip("\n").split(":", 2)
            if len(parts) != 3:
                continue
            for controller in parts[1].split(",") if parts[1] else [""]:
                found[controller] = parts[2]
    return found


def _discover() -> _Layout | str:
    if os.geteuid() != 0:
        return "not running as root: cgroups cannot be made"
    try:
        own = _own_paths()
    except OSError as exc:
        return f"cannot read /proc/self/cgroup ({exc.strerror})"
    v1 = {c: ROOT / c for c in V1_CONTROLLERS}
    if all((v1[c] / "cgroup.procs").exists() for c in V1_CONTROLLERS):
        bases = {c: v1[c] / outside_ours(own.get(c, "/")) / PARENT for c in V1_CONTROLLERS}
        try:
            for base in bases.values():
                base.mkdir(exist_ok=True)
        except OSError as exc:
            return f"cannot make cgroup folders under {ROOT} ({exc.strerror})"
        found = _Layout(1, bases)
        _sweep(found)
        return found
    if (ROOT / "cgroup.controllers").exists():
        return _discover_v2(ROOT / outside_ours(own.get("", "/")))
    return f"no cgroup v1 memory/pids/cpuacct/freezer or cgroup v2 hierarchy under {ROOT}"


def _discover_v2(mine: Path) -> _Layout | str:
    base = mine / PARENT
    wanted = {"memory", "pids", "cpu"}
    try:
        have = set((mine / "cgroup.controllers").read_text().split())
        if not wanted <= have:
            return f"cgroup v2 at {mine} lacks the {', '.join(sorted(wanted - have))} controller"
        base.mkdir(exist_ok=True)
        for folder in (mine, base):
            try:
                _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
            except CgroupError:
                # v2 lets a cgroup with processes in it have no controlled children: move this
                # process into a leaf of its own, then enable them.
                leaf = mine / "service"
                leaf.mkdir(exist_ok=True)
                for pid in (mine / "cgroup.procs").read_text().split():
                    with contextlib.suppress(CgroupError):
                        _write(leaf / "cgroup.procs", pid)
                _write(folder / "cgroup.subtree_control", " ".join(f"+{c}" for c in wanted))
    except (OSError, CgroupError) as exc:
        return f"cannot set up cgroup v2 under {mine}: {exc}"
    found = _Layout(2, {"": base})
    _sweep(found)
    return found


def outside_ours(path: str) -> str:
    """The cgroup `path` (as /proc/self/cgroup gives it), relative, above any cgroup of ours.
    A process started inside one of our cgroups (a worker's child, a process of a contained
    worker) makes its cgroups beside its parent's, not nested in them: a nested one would
    count against the outer one's memory limit, and could not be removed before it."""
    parts = [p for p in path.split("/") if p]
    if PARENT in parts:
        parts = parts[:parts.index(PARENT)]
    return "/".join(parts)


def _sweep(found: _Layout) -> None:
    """Remove the cgroups of worker processes that died without removing theirs (a cgroup's
    name starts with its maker's pid), killing whatever they left running. Runs once per
    process, at its first task: it must cost nothing when there is nothing to remove (each
    removal is one rmdir per folder, no waiting)."""
    for name in _dead_makers(found.bases):
        with contextlib.suppress(CgroupError, OSError):
            TaskCgroup(name, found).remove(wait=False)


def _dead_makers(bases: dict[str, Path]) -> list[str]:
    names: set[str] = set()
    for base in bases.values():
        with contextlib.suppress(OSError):
            names.update(entry.name for entry in os.scandir(base) if entry.is_dir())
    found = []
    for name in sorted(names):
        maker = name.split("-", 1)[0]
        if maker.isdigit() and int(maker) != os.getpid() and not _alive(int(maker)):
            found.append(name)
    return found


def _nested(folder: Path) -> list[Path]:
    """The cgroups inside `folder` (cgroup folders hold only files and child cgroups)."""
    try:
        return [Path(e.path) for e in os.scandir(folder) if e.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def layout() -> _Layout | str:
    """This machine's cgroup layout for tasks, or why there is none (looked at once)."""
    global _layout
    with _lock:
        if _layout is None:
            _layout = _discover()
        return _layout


def available() -> str | None:
    """None when task cgroups can be made here, else why not (one line)."""
    found = layout()
    return found if isinstance(found, str) else None


def _write(path: Path, value: str) -> None:
    try:
        fd = os.open(path, os.O_WRONLY)
    except OSError as exc:
        raise CgroupError(f"cannot open {path}: {exc.strerror}") from None
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        raise CgroupError(f"cannot write {value!r} to {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def _field(text: str, name: str) -> int:
    m = re.search(rf"^{re.escape(name)} (\d+)$", text, re.M)
    return int(m.group(1)) if m else 0


def folder_name(pid: int, name: str) -> str:
    """The folder of process `pid`'s cgroup `name` (see `TaskCgroup.create`)."""
    return f"{pid}-" + re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:100]


class TaskCgroup:
    """One task's cgroup (see the module's docstring). Make it with `TaskCgroup.create`."""

    def __init__(self, name: str, found: _Layout) -> None:
        self.name = name
        self.version = found.version
        self.folders = {c: base / name for c, base in found.bases.items()}

    @classmethod
    def create(cls, name: str, *, memory_bytes: int | None = None,
               pids_max: int | None = None) -> TaskCgroup:
        """Make (or take over, emptied) this process's cgroup `name`; raise CgroupError if
        impossible. Its folder is named `<this pid>-<name>`: another service on the machine
        never takes it over, and one left by a dead worker is swept away."""
        found = layout()
        if isinstance(found, str):
            raise CgroupError(found)
        group = cls(folder_name(os.getpid(), name), found)
        for folder in group.folders.values():
            try:
                folder.mkdir(exist_ok=True)
            except OSError as exc:
                raise CgroupError(f"cannot make the cgroup {folder}: {exc.strerror}") from None
        group.kill_all()  # a cgroup left by a worker that died: nothing of it may live on
        group.set_memory(memory_bytes)
        if pids_max is not None:
            _write(group._file("pids", "pids.max"), str(pids_max))
        group.reset_peak()
        return group

    def _file(self, controller: str, name: str) -> Path:
        return self.folders["" if self.version == 2 else controller] / name

    # -- limits -----------------------------------------------------------------------------

    def set_memory(self, memory_bytes: int | None) -> None:
        """Limit the cgroup's memory (RAM, and swap too where the kernel counts it); None: no
        limit. A limit below what it holds now is kept at what it holds (the kernel could not
        take it back) — the next allocation then fails into the OOM killer as it should."""
        if self.version == 2:
            value = "max" if memory_bytes is None else str(memory_bytes)
            _write(self._file("memory", "memory.max"), value)
            swap = self._file("memory", "memory.swap.max")
            if swap.exists():
                _write(swap, "max" if memory_bytes is None else "0")
            return
        value = "-1" if memory_bytes is None else str(memory_bytes)
        limit = self._file("memory", "memory.limit_in_bytes")
        memsw = self._file("memory", "memory.memsw.limit_in_bytes")
        files = [limit, memsw] if memsw.exists() else [limit]
        current = int(_read(limit) or 0)
        if memory_bytes is None or memory_bytes > current:
            files.reverse()  # raising: the swap+memory limit first (it may not be below RAM's)
        for path in files:
            try:
                _write(path, value)
            except CgroupError as exc:
                cause = exc.__cause__
                if not (isinstance(cause, OSError) and cause.errno == errno.EBUSY):
                    raise

    # -- what it used ----------------------------------------------------------------------

    def cpu_s(self) -> float:
        """CPU seconds used by every process that ran in the cgroup (user + system)."""
        if self.version == 2:
            return _field(_read(self._file("cpu", "cpu.stat")), "usage_usec") / 1e6
        text = _read(self._file("cpuacct", "cpuacct.usage")).strip()
        return int(text) / 1e9 if text else 0.0

    def memory_limit(self) -> int | None:
        """The cgroup's memory limit in bytes (None: none)."""
        name = "memory.max" if self.version == 2 else "memory.limit_in_bytes"
        text = _read(self._file("memory", name)).strip()
        # v1 says "no limit" with a huge page-rounded number
        return int(text) if text.isdigit() and int(text) < 2**62 else None

    def exists(self) -> bool:
        return all(folder.is_dir() for folder in self.folders.values())

    def peak_memory(self) -> int:
        """The most memory the cgroup held since `reset_peak` (0 when the kernel cannot say)."""
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        text = _read(self._file("memory", name)).strip()
        return int(text) if text.isdigit() else 0

    def reset_peak(self) -> None:
        name = "memory.peak" if self.version == 2 else "memory.max_usage_in_bytes"
        with contextlib.suppress(CgroupError):  # v2 before Linux 6.12 cannot reset it
            _write(self._file("memory", name), "0")

    def oom_kills(self) -> int:
        """How many processes the kernel's out-of-memory killer has killed in the cgroup."""
        if self.version == 2:
            return _field(_read(self._file("memory", "memory.events")), "oom_kill")
        return _field(_read(self._file("memory", "memory.oom_control")), "oom_kill")

    def pids_refused(self) -> int:
        """How many forks the process limit refused."""
        return _field(_read(self._file("pids", "pids.events")), "max")

    # -- its processes ---------------------------------------------------------------------

    def attach(self, pid: int) -> None:
        """Move process `pid` (and, in v1 and v2 alike, all its threads) into the cgroup."""
        for folder in self.folders.values():
            _write(folder / "cgroup.procs", str(pid))

    def attach_files(self) -> list[str]:
        """The files a starting process writes its own pid to, to enter the cgroup."""
        return [str(folder / "cgroup.procs") for folder in self.folders.values()]

    def pids(self) -> list[int]:
        """Every process in the cgroup now (as this process's pid namespace numbers them)."""
        seen: set[int] = set()
        for folder in self.folders.values():
            seen.update(int(p) for p in _read(folder / "cgroup.procs").split() if p.isdigit())
        return sorted(seen)

    def kill(self, pids: list[int], timeout_s: float = _KILL_ROUNDS_S) -> bool:
        """SIGKILL `pids` (members of the cgroup), frozen so none can fork meanwhile; True once
        none of them is left in it."""
        targets = set(pids)
        deadline = time.monotonic() + timeout_s
        while True:
            left = targets & set(self.pids())
            if not left:
                return True
            if time.monotonic() >= deadline:
                return False
            self._freeze(True)
            try:
                for pid in left:
                    with contextlib.suppress(ProcessLookupError, PermissionError):
                        os.kill(pid, signal.SIGKILL)
            finally:
                self._freeze(False)  # a frozen process cannot act on its SIGKILL
            time.sleep(0.01)

    def kill_all(self, timeout_s: float = _KILL_ROUNDS_S) -> bool:
        """Kill every process in the cgroup, however it got there; True once it is empty."""
        deadline = time.monotonic() + timeout_s
        kill_file = self._file("", "cgroup.kill") if self.version == 2 else None
        while True:
            members = self.pids()
            if not members:
                return True
            if time.monotonic() >= deadline:
                return False
            if kill_file is not None and kill_file.exists():
                with contextlib.suppress(CgroupError):
                    _write(kill_file, "1")
                    time.sleep(0.01)
                    continue
            self.kill(members, max(0.0, deadline - time.monotonic()))

    def _freeze(self, frozen: bool) -> None:
        if self.version == 2:
            with contextlib.suppress(CgroupError):
                _write(self._file("", "cgroup.freeze"), "1" if frozen else "0")
            return
        state = self._file("freezer", "freezer.state")
        with contextlib.suppress(CgroupError):
            _write(state, "FROZEN" if frozen else "THAWED")
        if frozen:  # freezing takes effect over a moment: wait (briefly) until it has
            deadline = time.monotonic() + 0.5
            while _read(state).strip() == "FREEZING" and time.monotonic() < deadline:
                time.sleep(0.001)

    def remove(self, *, wait: bool = True) -> None:
        """Kill what is left and remove the cgroup's folders. A cgroup nested inside (an
        older worker's layout) is swept first when its maker is dead, and otherwise left with
        its parent (a live process's). `wait=False`: no waiting for the kernel to let go of
        the last member (a sweep at start must not stall a worker)."""
        self.kill_all(timeout_s=_KILL_ROUNDS_S if wait else 1.0)
        for folder in self.folders.values():
            inner = folder / PARENT
            if inner.is_dir():
                for name in _dead_makers({"": inner}):
                    _remove_folder(inner / name, wait=wait)
                _remove_folder(inner, wait=False)
            _remove_folder(folder, wait=wait)


def _remove_folder(folder: Path, *, wait: bool) -> None:
    """rmdir a cgroup folder; a folder that still holds a cgroup is left (no waiting)."""
    for _ in range(50 if wait else 3):  # the kernel lets go of the last member a moment later
        try:
            folder.rmdir()
            return
        except FileNotFoundError:
            return
        except OSError:
            if _nested(folder):
                return
            for pid in _read(folder / "cgroup.procs").split():
                with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
            time.sleep(0.02)
