"""scripts/system-packages.sh, the one list of Debian packages the suite needs (what `make test`
runs first): nothing to do when all are there, and on a machine that lacks one and cannot
install it, one line naming the packages and the command, exit 2 — before anything else runs."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import REPO, path_without

SCRIPT = REPO / "scripts" / "system-packages.sh"


@pytest.fixture
def open_folder() -> Iterator[Path]:
    """A folder any user can read (pytest's tmp_path is root's own), removed afterwards."""
    folder = Path(tempfile.mkdtemp(prefix="wanhe-syspkg-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_everything_present_costs_nothing() -> None:
    started = time.monotonic()
    done = subprocess.run([str(SCRIPT)], capture_output=True, text=True, timeout=60,
                          check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout == done.stderr == ""
    assert time.monotonic() - started < 1.0


def test_a_user_who_cannot_install_gets_one_line_with_the_command(open_folder: Path) -> None:
    """espeak-ng and sudo hidden from PATH; as root the script runs as `nobody`."""
    path = path_without(open_folder, "espeak-ng", "sudo")
    Path(path).chmod(0o755)  # whatever the umask of the tests before
    script = open_folder / "system-packages.sh"
    shutil.copyfile(SCRIPT, script)
    script.chmod(0o755)
    prefix: list[str] = []
    if os.geteuid() == 0:
        prefix = ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups"]
    done = subprocess.run([*prefix, "env", f"PATH={path}", str(script)], capture_output=True,
                          text=True, timeout=60, check=False, cwd=open_folder)
    assert done.returncode == 2
    assert done.stdout == ""
    assert done.stderr.splitlines() == [
        "missing Debian packages: espeak-ng — install them with: sudo apt-get update && "
        "sudo apt-get install -y espeak-ng"]


def test_check_only_names_what_is_missing(tmp_path: Path) -> None:
    path = path_without(tmp_path, "espeak-ng", "rubberband", "sudo")
    done = subprocess.run(["env", f"PATH={path}", str(SCRIPT), "--check"], capture_output=True,
                          text=True, timeout=60, check=False)
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert line.startswith("missing Debian packages: espeak-ng rubberband-cli — ")
    assert line.endswith("apt-get install -y espeak-ng rubberband-cli")
