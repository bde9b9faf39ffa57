"""Who an OpenJD session runs as, and the folders it may reach.

When the worker runs as root, each project's sessions run as that project's own unprivileged
OS user, `wanhe-p<project id>-<name>` (created with `useradd` on first use, no login shell,
no home), as Deadline Cloud runs a queue's jobs as its queue user:

- its session folders (`<work>/sessions/<project>/`) belong to it alone (0700);
- a job's folder is `root:<its group>`: inputs readable, `output/` and `work/` writable by the
  project's group only; `<work>/jobs` is 0711, so no user can list other jobs' folders;
- the work area's own folders (staging, cache of blobs, logs, tmp) are root's alone (0700).

So a project's template cannot read another project's inputs, sessions or outputs. The
session host runs as that user (`subprocess` drops privileges before exec), so no part of a
session runs as root and openjd-sessions needs no `sudo`.

Without root, sessions run as the service's own user (`wanhe serve` says so at start).
"""

from __future__ import annotations

import grp
import os
import pwd
import shutil
import stat
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanhe.lifecycle import TaskFailed
from wanhe.store.rows import project_slug

LOCAL_PROJECT = "local"
_lock = threading.Lock()
_prepared: set[str] = set()


@dataclass(frozen=True, slots=True)
class Account:
    name: str
    uid: int
    gid: int
    isolated: bool  # a project's own user (the worker runs as root)


def is_root() -> bool:
    return os.geteuid() == 0


def user_name(project: str, project_id: int | None = None) -> str:
    """The OS user a project's sessions run as: `wanhe-p<id>-<name>`. The id makes it one user
    per project whatever the names look like; the name (the shared slug rule, cut to fit
    useradd's 32 characters) tells a person whose it is. Without an id (a caller that has
    none) the name alone, with a digest when it is too long."""
    slug = project_slug(project)
    if project_id is not None:
        return f"wanhe-p{int(project_id)}-{slug}"[:32].rstrip("-")
    name = f"wanhe-p-{slug}"
    if len(name) > 32:  # useradd's limit: keep it unique with a digest
        import hashlib

        name = name[:23] + "-" + hashlib.sha256(project.encode()).hexdigest()[:8]
    return name


def session_account(project: str, project_id: int | None = None) -> Account:
    """The account a project's sessions run as (created on first use when running as root).
    `wanhe run`'s sessions (project "local") run as the user who ran it."""
    if not is_root() or project == LOCAL_PROJECT:
        me = pwd.getpwuid(os.geteuid())
        return Account(me.pw_name, me.pw_uid, me.pw_gid, False)
    name = user_name(project, project_id)
    with _lock:
        try:
            found = pwd.getpwnam(name)
        except KeyError:
            found = _create_user(name, project)
    return Account(name, found.pw_uid, found.pw_gid, True)


def _create_user(name: str, project: str) -> pwd.struct_passwd:
    useradd = shutil.which("useradd") or "/usr/sbin/useradd"
    shell = "/usr/sbin/nologin" if os.path.exists("/usr/sbin/nologin") else "/bin/false"
    result = subprocess.run(
        [useradd, "--system", "--user-group", "--no-create-home", "--home-dir", "/nonexistent",
         "--shell", shell, "--comment", f"wanhe project {project}"[:60], name],
        capture_output=True, text=True, check=False,
    )
    try:
        return pwd.getpwnam(name)  # made now, or by another worker at the same moment
    except KeyError:
        raise TaskFailed(
            f"cannot create the OS user {name} for project {project!r}: "
            f"{(result.stderr or result.stdout).strip() or 'useradd failed'} — create it "
            "yourself (useradd --system --user-group " + name + ")") from None


def _chmod(path: Path, mode: int, uid: int = 0, gid: int = 0) -> None:
    os.chown(path, uid, gid)
    os.chmod(path, mode)


def _check_reachable(path: Path) -> None:
    """Every folder above `path` must let other users through (o+x)."""
    for parent in [*reversed(path.parents)]:
        try:
            mode = parent.stat().st_mode
        except OSError:
            continue
        if not mode & stat.S_IXOTH:
            raise TaskFailed(
                f"project users cannot reach {path}: {parent} is not searchable by others — "
                f"chmod o+x {parent}, or give wanhe serve a --work folder under a searchable "
                "path (e.g. /srv/wanhe)")


def prepare_folders(account: Account, session_root: Path, payload: dict[str, Any], *,
                    namespaced: bool = False) -> None:
    """Make the session root and the job's folders reachable by `account` only."""
    if not account.isolated:
        session_root.mkdir(parents=True, exist_ok=True)
        return
    job_root = Path(payload["job_root"])
    work_root = job_root.parent.parent  # <work>/jobs/<id>
    sessions = session_root.parent
    with _lock:
        sessions.mkdir(parents=True, exist_ok=True)
        session_root.mkdir(parents=True, exist_ok=True)
        _chmod(work_root, 0o711)
        _chmod(sessions, 0o711)
        _chmod(session_root, 0o700, account.uid, account.gid)
    prepare_job(account, job_root, namespaced=namespaced)


def prepare_job(account: Account, job_root: Path, *, namespaced: bool = False) -> None:
    """Make a job's folder (`<work>/jobs/<id>`) reachable by `account` only: its inputs
    readable, its `output/` and `work/` writable, nothing else of the work area.
    `namespaced`: the task sees the folder in a mount namespace, where the folders above it
    are the sandbox's own (0755), so they need not be searchable here."""
    if not account.isolated:
        return
    work_root = job_root.parent.parent
    with _lock:
        if str(job_root) not in _prepared:
            if not namespaced:
                _check_reachable(work_root)  # the folders above the work area are not ours
            _chmod(work_root, 0o711)
            _chmod(work_root / "jobs", 0o711)
            for private in ("staging", "cache", "logs", "tmp", "blobs"):
                if (work_root / private).exists():
                    _chmod(work_root / private, 0o700)
            _close_others(work_root / "jobs", job_root)
            _chmod(job_root, 0o750, 0, account.gid)
            inputs = job_root / "input"
            inputs.mkdir(exist_ok=True)
            for folder, _dirs, files in os.walk(inputs):
                _chmod(Path(folder), 0o750, 0, account.gid)
                for name in files:
                    _own_copy(Path(folder) / name)
                    _chmod(Path(folder) / name, 0o640, 0, account.gid)
            for sub in ("output", "work"):
                (job_root / sub).mkdir(exist_ok=True)
                _chmod(job_root / sub, 0o2770, account.uid, account.gid)
            _prepared.add(str(job_root))


def share_inputs(account: Account, inputs: Path) -> None:
    """Make a submission's input folder (checked out in staging, before the job exists)
    readable by `account`'s group only: its files get inodes of their own first (they are
    hard links to the farm's blobs), then `root:<group>` 0750/0640."""
    if not account.isolated:
        return
    with _lock:
        for folder, _dirs, files in os.walk(inputs):
            _chmod(Path(folder), 0o750, 0, account.gid)
            for name in files:
                path = Path(folder) / name
                if path.is_symlink():
                    continue
                _own_copy(path)
                _chmod(path, 0o640, 0, account.gid)


def _own_copy(path: Path) -> None:
    """Give a job's input file an inode of its own. Checkouts hard-link the content-addressed
    blob, so the same bytes in two projects' jobs are one inode: handing it to one project's
    group would take it from the other (its renders then fail "scene file not found")."""
    info = path.lstat()
    if not stat.S_ISREG(info.st_mode) or info.st_nlink <= 1:
        return
    partial = path.with_name(f".{path.name}.own-{os.getpid()}-{threading.get_ident()}")
    shutil.copyfile(path, partial)
    os.replace(partial, path)  # one rename: a reader sees the whole file, old or new


def _close_others(jobs: Path, mine: Path) -> None:
    """Job folders made before the service kept its files private: others may not enter."""
    for entry in os.scandir(jobs):
        if entry.path != str(mine) and entry.is_dir(follow_symlinks=False):
            mode = entry.stat(follow_symlinks=False).st_mode
            if mode & 0o007:
                os.chmod(entry.path, stat.S_IMODE(mode) & ~0o007)


def start_host(account: Account, session_root: Path, command: list[str],
               wrap: Callable[[list[str], bool], list[str]] | None = None,
               namespaced: bool = False) -> subprocess.Popen[str]:
    """Start the session host process (`command`) as `account`. `wrap(argv, drop)`: the
    sandbox around it (`namespaced`: with a mount namespace, which then becomes the user);
    drop=False when the host is to drop to the user itself."""
    env = host_env(account, session_root)
    argv = (wrap or _plain)(command, namespaced)
    if account.isolated and not namespaced:
        # The host starts as root (the farm's Python may live where the project user cannot
        # read, e.g. under /root), imports what it needs, then drops to the project user for
        # good before it reads a template or starts an action. (In a mount namespace the
        # farm's Python is shown to the user, and the sandbox drops to it before the host.)
        env["WANHE_HOST_USER"] = f"{account.uid}:{account.gid}"
    err = open(session_root / "host.log", "ab")  # noqa: SIM115  (the child keeps it)
    try:
        return subprocess.Popen(
            argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=err,
            text=True, encoding="utf-8", cwd=session_root, env=env, start_new_session=True,
            close_fds=True,
        )
    except OSError as exc:
        raise TaskFailed(f"cannot start the OpenJD session host ({sys.executable}) as "
                         f"{account.name}: {exc}") from None
    finally:
        err.close()


def host_env(account: Account, session_root: Path) -> dict[str, str]:
    """The session host's environment: a project user's is made from scratch (its home and
    temporary folder its session folder); the service's own user's is this process's."""
    if not account.isolated:
        return {**os.environ, "PYTHONUNBUFFERED": "1"}
    env = {
        "PATH": os.environ.get("PATH", os.defpath), "LANG": os.environ.get("LANG", "C.UTF-8"),
        "PYTHONUNBUFFERED": "1", "HOME": str(session_root), "USER": account.name,
        "LOGNAME": account.name, "TMPDIR": str(session_root),
    }
    for name in ("PYTHONPATH", "WANHE_PLUGINS", "VIRTUAL_ENV"):
        if os.environ.get(name):
            env[name] = os.environ[name]
    return env


def _plain(argv: list[str], drop: bool) -> list[str]:
    return argv


def group_name(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def describe_mode() -> str:
    """What `wanhe serve` says at start about who runs tasks."""
    if is_root():
        return ("tasks run as each project's own OS user (wanhe-p-<project>, "
                "created on first use)")
    try:
        me = pwd.getpwuid(os.geteuid()).pw_name
    except KeyError:
        me = f"uid {os.geteuid()}"
    return (f"not running as root: tasks run as the service's user {me}, and a "
            "project's task can read what that user can read")
