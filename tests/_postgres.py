"""A throwaway PostgreSQL server for one test session: initdb of the installed server into a
temporary folder, started on a free loopback port (its unix socket in that folder too), stopped
and removed at the end — so the PostgreSQL half of the suite runs on any machine with the
server installed, without WANHE_TEST_POSTGRES_URL.

initdb refuses to run as root: then the server runs as the `postgres` OS user (Debian's
package makes it), or as `nobody` where there is none.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import pwd
import re
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

INSTALL_HINT = "scripts/system-packages.sh installs it (make test runs it)"


class PostgresMissing(RuntimeError):
    """No PostgreSQL server binaries on this machine."""


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", path.parent.parent.name)) or (0,)


def server_bindir() -> Path:
    """The folder with initdb, pg_ctl and postgres: `pg_config --bindir` when it holds them,
    else Debian's newest /usr/lib/postgresql/N/bin, else initdb on PATH."""
    candidates: list[Path] = []
    pg_config = shutil.which("pg_config")
    if pg_config:
        done = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True,
                              timeout=10, check=False)
        if done.returncode == 0 and done.stdout.strip():
            candidates.append(Path(done.stdout.strip()))
    candidates += sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=_version_key,
                         reverse=True)
    on_path = shutil.which("initdb")
    if on_path:
        candidates.append(Path(on_path).resolve().parent)
    for bindir in candidates:
        if all((bindir / tool).is_file() for tool in ("initdb", "pg_ctl", "postgres")):
            return bindir
    raise PostgresMissing(f"the PostgreSQL server is not installed — {INSTALL_HINT}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _server_user() -> str | None:
    """The OS user the server runs as: None (this one) unless this process is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            pwd.getpwnam(name)
            return name
    raise PostgresMissing("running as root, and neither a `postgres` nor a `nobody` user "
                          "exists for initdb to run as")


class ThrowawayPostgres:
    """One server: `start()` returns its SQLAlchemy URL; `stop()` (idempotent, also at
    interpreter exit) stops it and removes its folder."""

    def __init__(self) -> None:
        self.bindir = server_bindir()
        self.user = _server_user()
        self.root: Path | None = None
        self.port = 0

    def _run(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout,
                              check=False, user=self.user, cwd=self.root)

    def start(self) -> str:
        self.root = Path(tempfile.mkdtemp(prefix="wanhe-test-pg-"))
        atexit.register(self.stop)
        if self.user is not None:
            entry = pwd.getpwnam(self.user)
            os.chown(self.root, entry.pw_uid, entry.pw_gid)
        data = self.root / "data"
        done = self._run(str(self.bindir / "initdb"), "-D", str(data), "-A", "trust",
                         "-U", "postgres", "--no-sync", "-E", "UTF8", "--locale=C")
        if done.returncode != 0:
            raise RuntimeError(f"initdb failed: {(done.stderr or done.stdout).strip()[-500:]}")
        # A test server: durability off (a crash loses nothing anyone keeps), loopback only.
        options = ("-c fsync=off -c synchronous_commit=off -c full_page_writes=off "
                   f"-c max_connections=200 -k {self.root} -h 127.0.0.1")
        for _ in range(5):  # another process may take the free port between look and bind
            self.port = _free_port()
            done = self._run(str(self.bindir / "pg_ctl"), "-D", str(data), "-w", "-t", "60",
                             "-l", str(self.root / "server.log"),
                             "-o", f"{options} -p {self.port}", "start", timeout=90)
            if done.returncode == 0:
                return f"postgresql+psycopg://postgres@127.0.0.1:{self.port}/postgres"
        log = (self.root / "server.log").read_text(errors="replace")[-500:]
        raise RuntimeError(f"pg_ctl start failed: {done.stderr.strip()[-300:]} {log}")

    def stop(self) -> None:
        root, self.root = self.root, None
        if root is None:
            return
        data = root / "data"
        if (data / "postmaster.pid").exists():
            subprocess.run([str(self.bindir / "pg_ctl"), "-D", str(data), "-m", "immediate",
                            "-w", "stop"], capture_output=True, timeout=60, check=False,
                           user=self.user, cwd=root)
        shutil.rmtree(root, ignore_errors=True)
