"""`wanhe serve` as a real subprocess in its own session, for end-to-end and crash tests."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from typer.testing import CliRunner

from wanhe.cli import app as wanhe_app
from wanhe.store.store import Store


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@dataclass
class ServiceProc:
    home: Path
    db_url: str
    port: int
    workers: int | None = None
    num_cpus: int | None = None
    extra_args: list[str] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)
    proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.home / "serve.log"

    def start(self, timeout: float = 120.0) -> None:
        self.home.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "wanhe.cli", "serve", "--port", str(self.port),
               "--db", self.db_url, "--storage", str(self.home / "storage")]
        if self.workers:
            cmd += ["--workers", str(self.workers)]
        if self.num_cpus:
            cmd += ["--num-cpus", str(self.num_cpus)]
        cmd += self.extra_args
        env = {**os.environ, "WANHE_HOME": str(self.home), "PYTHONUNBUFFERED": "1",
               **self.extra_env}
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env,
                                         start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"wanhe serve exited: {self.log.read_text()[-3000:]}")
            if self.port == 0:
                # --port 0: the service binds a port the OS picks and prints it; a restart
                # reuses it (crash tests reconnect to the same URL)
                found = re.search(r"wanhe serving on http://127\.0\.0\.1:(\d+)",
                                  " ".join(self.log.read_text().split()))
                if found is None:
                    time.sleep(0.3)
                    continue
                self.port = int(found.group(1))
            try:
                if httpx.get(f"{self.url}/health", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        self.kill()
        raise RuntimeError(f"wanhe serve did not start: {self.log.read_text()[-3000:]}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        """Signal the service's whole process group (its embedded Ray included)."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(timeout=30)
        self.proc = None
        time.sleep(0.5)  # let orphans of the group go

    def client(self, token: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Bearer {token}"},
                            timeout=60)


@contextlib.contextmanager
def running_farm(prefix: str, *, workers: int, num_cpus: int, extra_args: list[str] | None = None,
                 extra_env: dict[str, str] | None = None,
                 prepare: Callable[[Path], list[str]] | None = None) -> Iterator[ServiceProc]:
    """A `wanhe serve` on a fresh SQLite farm (a module's fixture: one farm for its tests),
    killed and its folder removed at the end. The folder is a new one in /tmp that every user
    may pass through (0711): project users must reach their job's folders, and pytest's own
    tmp folders are 0700. `prepare` writes files the service reads at start into the folder and
    returns the arguments that name them."""
    home = Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    os.chmod(home, 0o711)
    args = [*(extra_args or []), *(prepare(home) if prepare else [])]
    svc = ServiceProc(home, f"sqlite:///{home / 'wanhe.db'}", 0, workers=workers,
                      num_cpus=num_cpus, extra_args=args,
                      extra_env=extra_env or {})
    try:
        svc.start()
        yield svc
    finally:
        svc.kill()
        shutil.rmtree(home, ignore_errors=True)


def wait_for(predicate: Any, timeout: float, what: str, interval: float = 0.5) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def wait_done(farm: ServiceProc, token: str, job_id: int,
              timeout: float = 300) -> dict[str, Any]:
    """Job `job_id` once done; its failure or cancellation fails the test with its message."""
    with farm.client(token) as http:
        def finished() -> dict[str, Any] | None:
            job: dict[str, Any] = http.get(f"/api/jobs/{job_id}").json()
            assert job["state"] not in ("failed", "cancelled"), job["message"]
            return job if job["state"] == "done" else None

        found: dict[str, Any] = wait_for(finished, timeout, f"job {job_id} to finish")
        return found


def make_project(db_url: str, name: str, *, scope: str = "submit", **kwargs: Any) -> str:
    """A new project and a token of it (`scope` "manage" also manages the project)."""
    store = Store(db_url)
    try:
        project = store.create_project(name, **kwargs)
        return store.create_token(project.id, name, scope=scope)
    finally:
        store.dispose()


def os_user(db_url: str, project: str) -> str:
    """The OS user a project's tasks run as on a root farm: `wanhe-p<id>-<name>`."""
    from wanhe.sandbox.accounts import user_name

    store = Store(db_url)
    try:
        found = store.project_by_name(project)
        assert found is not None
        return user_name(found.name, found.id)
    finally:
        store.dispose()


def run_cli(svc: ServiceProc, token: str, *args: str) -> str:
    """A `wanhe` command against the running service, as a user with `token`; its stdout."""
    result = CliRunner().invoke(wanhe_app, list(args),
                                env={"WANHE_SERVER": svc.url, "WANHE_TOKEN": token})
    assert result.exit_code == 0, result.output
    return result.stdout


def submit_job(svc: ServiceProc, token: str, scene: Path, *flags: str) -> int:
    """`wanhe submit SCENE FLAGS --json` against the service; the new job's id."""
    job_id: int = json.loads(run_cli(svc, token, "submit", str(scene), *flags, "--json"))["id"]
    return job_id
