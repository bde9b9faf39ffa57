"""Virtualenvs of their own for the programs the tests run beside wanhe (Kitsu's Zou, the
reference OpenJD runner): `python3.11 -m venv` + `pip install` from PyPI, kept under
~/.cache/wanhe-test/ and reused, so their dependency pins never mix with wanhe's. `make
test-services` builds them before the suite; a test needing one builds it on first use."""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from pathlib import Path

INSTALL_TIMEOUT_S = 900


class VenvUnavailable(RuntimeError):
    """The virtualenv cannot be made here (no python3.11, PyPI out of reach): the reason."""


def cache_dir() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "wanhe-test"


def cached_venv(name: str, requirements: list[str]) -> Path:
    """~/.cache/wanhe-test/NAME with exactly REQUIREMENTS installed, made once and reused by
    later sessions; a lock keeps two test processes from building it at once, and a build
    cut short is started again. NAME carries the versions, so a new pin makes a new venv."""
    venv = cache_dir() / name
    if (venv / ".complete").exists():
        return venv
    python = shutil.which("python3.11")
    if python is None:
        raise VenvUnavailable(f"python3.11 is not on PATH (the {name} virtualenv is made "
                              "with it)")
    venv.parent.mkdir(parents=True, exist_ok=True)
    with open(venv.with_name(venv.name + ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (venv / ".complete").exists():  # another process built it meanwhile
            return venv
        shutil.rmtree(venv, ignore_errors=True)  # a build cut short
        for step in ([python, "-m", "venv", str(venv)],
                     [str(venv / "bin" / "pip"), "install", "-q", *requirements]):
            done = subprocess.run(step, capture_output=True, text=True,
                                  timeout=INSTALL_TIMEOUT_S, check=False)
            if done.returncode != 0:
                raise VenvUnavailable(f"{' '.join(step[:4])} failed: "
                                      f"{done.stderr.strip()[-500:]}")
        (venv / ".complete").write_text(" ".join(requirements))
    return venv
