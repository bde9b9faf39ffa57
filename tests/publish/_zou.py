"""A real Kitsu server (Zou) for one test session, every part on loopback and stopped by pid:

- Zou in a virtualenv of its own (`pip install zou==ZOU_VERSION` from PyPI, tests/_cached_venv.py),
  kept under ~/.cache/wanhe-test/ and reused: its dependencies (Flask, its own SQLAlchemy
  pins...) never mix with wanhe's;
- its database in a throwaway PostgreSQL (tests/_postgres.py) and its key-value store in a
  throwaway Redis (Debian's redis-server, scripts/system-packages.sh), on free ports;
- `zou init-db`, `zou init-data` (the default task statuses, WFA among them), an admin user,
  then Zou's API under gunicorn on 127.0.0.1.

`ZouServer.stop_api()` / `start_api()` kill and restart only the API (the tests that take
Kitsu down mid-publish); `stop()` ends everything.
"""

from __future__ import annotations

import atexit
import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests._cached_venv import VenvUnavailable, cached_venv
from tests._postgres import ThrowawayPostgres, _free_port

ZOU_VERSION = "1.0.97"
ADMIN_EMAIL = "admin@example.com"
ADMIN_PASSWORD = "wanhe-test-secret"


class ZouUnavailable(RuntimeError):
    """Zou cannot be installed or started here (the reason says which part)."""


def zou_venv() -> Path:
    """Zou's own virtualenv, made once (pip from PyPI) and reused by later sessions."""
    try:
        return cached_venv(f"zou-venv-{ZOU_VERSION}", [f"zou=={ZOU_VERSION}"])
    except VenvUnavailable as exc:
        raise ZouUnavailable(str(exc)) from exc


class ZouServer:
    """`start()` brings up PostgreSQL, Redis and Zou's API; `url` is the API's address."""

    def __init__(self) -> None:
        self.venv = zou_venv()
        self.root = Path(tempfile.mkdtemp(prefix="wanhe-test-zou-"))
        self.postgres = ThrowawayPostgres()
        self.redis: subprocess.Popen[bytes] | None = None
        self.api: subprocess.Popen[bytes] | None = None
        self.port = 0
        self.env: dict[str, str] = {}
        atexit.register(self.stop)

    @property
    def url(self) -> str:
        """The API's address as gazu takes it (Zou serves its routes at / when no nginx sits
        in front to map /api to it)."""
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        redis_server = shutil.which("redis-server")
        if redis_server is None:
            raise ZouUnavailable("redis-server is not installed — scripts/system-packages.sh "
                                 "installs it")
        pg_url = self.postgres.start()
        pg_port = pg_url.rsplit(":", 1)[1].split("/")[0]
        redis_port = _free_port()
        with (self.root / "redis.log").open("ab") as log:
            self.redis = subprocess.Popen(
                [redis_server, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--dir", str(self.root)],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        previews = self.root / "previews"
        previews.mkdir()
        self.env = {
            "PATH": f"{self.venv / 'bin'}:{os.environ.get('PATH', '/usr/bin:/bin')}",
            "HOME": str(self.root), "LANG": "C.UTF-8",
            "DB_HOST": "127.0.0.1", "DB_PORT": pg_port, "DB_USERNAME": "postgres",
            "DB_PASSWORD": "unused", "DB_DATABASE": "postgres",
            "KV_HOST": "127.0.0.1", "KV_PORT": str(redis_port),
            "SECRET_KEY": secrets.token_hex(32), "PREVIEW_FOLDER": str(previews),
            "TMP_DIR": str(self.root / "tmp"), "INDEXER_KEY": "", "BCRYPT_LOG_ROUNDS": "4",
            "ENABLE_JOB_QUEUE": "False", "PYTHONUNBUFFERED": "1",
        }
        self._wait_redis(redis_port)
        self._zou(["init-db"], ["init-data"],
                  ["create-admin", ADMIN_EMAIL, "--password", ADMIN_PASSWORD])
        self.port = _free_port()
        self.start_api()

    def _zou(self, *commands: list[str]) -> None:
        """`zou COMMAND...` for each command, in one interpreter: Zou's import is the slow
        part, paid once instead of once per command."""
        script = ("import sys, json\nfrom zou.cli import cli\n"
                  "for args in json.loads(sys.argv[1]):\n"
                  "    cli.main(args, prog_name='zou', standalone_mode=False)\n")
        done = subprocess.run([str(self.venv / "bin" / "python"), "-c", script,
                               json.dumps(commands)], env=self.env, cwd=self.root,
                              capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0:
            raise ZouUnavailable(f"zou {' / '.join(c[0] for c in commands)} failed: "
                                 f"{(done.stderr or done.stdout)[-800:]}")

    def _wait_redis(self, port: int) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with contextlib.suppress(OSError):
                import socket

                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                return
            time.sleep(0.1)
        raise ZouUnavailable(f"redis-server did not start: {(self.root / 'redis.log').read_text()}")

    def start_api(self, timeout: float = 120.0) -> None:
        """Zou's API under gunicorn on the same port as before (a restart keeps the URL)."""
        with (self.root / "zou.log").open("ab") as log:
            self.api = subprocess.Popen(
                [str(self.venv / "bin" / "gunicorn"), "-b", f"127.0.0.1:{self.port}", "-w", "1",
                 "-k", "sync", "--timeout", "300", "zou.app:app"],
                env=self.env, cwd=self.root, stdout=log, stderr=subprocess.STDOUT,
                start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.api.poll() is not None:
                raise ZouUnavailable(f"Zou's API exited: {self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if httpx.get(f"{self.url}/", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        self.stop_api()
        raise ZouUnavailable(f"Zou's API did not answer in {timeout:.0f} s: {self.log_tail()}")

    def stop_api(self) -> None:
        """Kill Zou's API (its whole process group) at once, as a crash would."""
        proc, self.api = self.api, None
        if proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)

    def log_tail(self) -> str:
        log = self.root / "zou.log"
        return log.read_text(errors="replace")[-1500:] if log.exists() else ""

    def stop(self) -> None:
        self.stop_api()
        redis, self.redis = self.redis, None
        if redis is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(redis.pid, signal.SIGKILL)
            redis.wait(timeout=30)
        self.postgres.stop()
        shutil.rmtree(self.root, ignore_errors=True)
