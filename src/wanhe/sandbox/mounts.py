"""The bubblewrap command line that shows a task only what its `SandboxSpec` allows.

The task's root is an empty tmpfs holding: the farm's software read-only (`/usr`, the
`/lib*` and `/bin` links or folders, the few files of `/etc` programs need, the Python
interpreter and virtual environment the farm runs, every folder on its `sys.path`, `/opt`),
a fresh `/proc` of its own pid namespace, a minimal `/dev`, private `/tmp` and `/dev/shm`
tmpfs, `/sys` read-only, and the task's own folders. Folders bubblewrap makes on the way to a
mount point are 0755 (it would make them 0700, unreachable for the project's user).

bubblewrap starts as root (it can read everything it binds) with every capability dropped
but the two that let the task's first process become the project's user (`setpriv`, or the
OpenJD session host's own drop), which then has none at all.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

from wanhe.sandbox.spec import SandboxSpec

ETC = ("passwd", "group", "nsswitch.conf", "ld.so.cache", "ld.so.conf", "ld.so.conf.d",
       "localtime", "timezone", "alternatives", "ssl", "ca-certificates", "hosts",
       "resolv.conf", "host.conf", "gai.conf", "protocols", "services", "mime.types", "fonts",
       "os-release", "debian_version", "magic", "mailcap", "OpenCL", "vulkan", "glvnd")
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/opt")


class MountError(ValueError):
    """A folder to show would reveal one the task must never see."""


def bwrap() -> str | None:
    return shutil.which("bwrap")


def farm_software() -> list[Path]:
    """The software every task may run: the system's, and the Python the farm runs."""
    found = [Path(p) for p in SYSTEM]
    found += [Path("/etc") / name for name in ETC]
    for prefix in {sys.prefix, sys.base_prefix, sys.exec_prefix, sys.base_exec_prefix}:
        found.append(Path(prefix))
    found.append(Path(sys.executable).resolve().parent.parent)
    found += [Path(p) for p in sys.path if p and Path(p).is_absolute()]
    return found


def _inside(path: Path, folder: Path) -> bool:
    return path == folder or folder in path.parents


def _ancestors(path: Path) -> list[Path]:
    return [p for p in reversed(path.parents) if p != Path("/")]


def bwrap_args(spec: SandboxSpec, *, bwrap_path: str = "bwrap",
               become_user: bool = True) -> list[str]:
    """bubblewrap's arguments up to (and including) `--`; the command follows.
    `become_user`: keep the capabilities the command needs to become the project's user
    (it must, at once); else it gets none."""
    hidden = [p.absolute() for p in spec.hidden]
    for path in [*spec.inputs, *spec.writable, *spec.devices]:
        for secret in hidden:
            if _inside(secret, path.absolute()):
                raise MountError(f"the sandbox would show {path}, which holds {secret}: the "
                                 "farm's files must not be inside a job's folders")
    binds: dict[Path, tuple[str, str]] = {}  # mount point -> (option, source)
    links: dict[Path, str] = {}
    for path in [*farm_software(), *spec.software]:
        path = path.absolute()
        if not path.exists() and not path.is_symlink():
            continue
        if any(_inside(secret, path) for secret in hidden):
            continue  # software beside the farm's files (e.g. a checkout holding storage)
        if path.is_symlink() and str(path) in SYSTEM:
            links[path] = str(path.readlink())  # /lib -> usr/lib (merged /usr)
            continue
        real = path.resolve()
        if any(_inside(secret, real) for secret in hidden):
            continue
        binds.setdefault(real, ("--ro-bind", str(real)))
        if real != path:
            links.setdefault(path, str(real))
    # A link inside another link's folder is that link's already (.venv -> …, and the
    # virtual environment's site-packages under it); software inside other software is too.
    links = {p: t for p, t in links.items()
             if not any(_inside(p, other) for other in links if other != p)}
    binds = {p: b for p, b in binds.items()
             if not any(_inside(p, other) for other in binds if other != p)}
    for path in spec.inputs:
        binds[path.absolute()] = ("--ro-bind", str(path.absolute()))
    for path in spec.writable:
        binds[path.absolute()] = ("--bind", str(path.absolute()))
    for path in spec.devices:
        binds[path.absolute()] = ("--dev-bind", str(path.absolute()))
    special = {Path("/proc"): ["--proc", "/proc"], Path("/dev"): ["--dev", "/dev"],
               Path("/tmp"): ["--perms", "1777", "--tmpfs", "/tmp"],
               Path("/dev/shm"): ["--perms", "1777", "--tmpfs", "/dev/shm"]}
    if Path("/sys").is_dir():
        binds.setdefault(Path("/sys"), ("--ro-bind", "/sys"))

    ops: list[tuple[Path, list[str]]] = []
    made: set[Path] = set()
    links = {p: t for p, t in links.items() if not any(_inside(p, m) for m in binds)}
    for point in [*binds, *links, *special]:
        for parent in _ancestors(point):
            # inside a bound folder it exists already; inside a tmpfs it must be made
            covered = any(_inside(parent, m) for m in binds)
            if parent not in made and parent not in special and not covered:
                made.add(parent)
                ops.append((parent, ["--perms", "0755", "--dir", str(parent)]))
    for point, (option, source) in binds.items():
        ops.append((point, [option, source, str(point)]))
    for point, target in links.items():
        ops.append((point, ["--symlink", target, str(point)]))
    for point, args in special.items():
        ops.append((point, args))
    # Outer folders first: a bind inside the private /tmp comes after /tmp's tmpfs.
    ops.sort(key=lambda op: (len(op[0].parts), str(op[0])))
    # No --die-with-parent: its signal follows the *thread* that started bubblewrap, and a
    # worker's threads come and go between tasks. What outlives a dead worker is in its
    # cgroup, which the next worker process sweeps away (cgroup._sweep).
    args = [bwrap_path, "--unshare-pid",
            "--unshare-ipc", "--unshare-uts", "--unshare-cgroup-try", "--cap-drop", "ALL"]
    if become_user:
        args += ["--cap-add", "CAP_SETUID", "--cap-add", "CAP_SETGID",
                 "--cap-add", "CAP_SETPCAP"]
    for _point, op in ops:
        args += op
    return [*args, "--"]


def setpriv_args(uid: int, gid: int) -> list[str]:
    """Become `uid:gid` for good, with no capability left (util-linux setpriv)."""
    return [shutil.which("setpriv") or "/usr/bin/setpriv", f"--reuid={uid}", f"--regid={gid}",
            "--clear-groups", "--inh-caps=-all", "--bounding-set=-all", "--"]
