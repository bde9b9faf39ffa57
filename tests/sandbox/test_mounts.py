"""What a sandboxed task sees: its job's folders and the farm's software, nothing of the farm's
own files. The command line is checked as data everywhere; the last test runs it through real
bubblewrap as a project user (root and bubblewrap needed, else skipped with the reason)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from wanhe.sandbox import mounts
from wanhe.sandbox.spec import SandboxSpec, farm_hidden

pytestmark = [pytest.mark.timeout(60)]


def job(tmp_path: Path) -> Path:
    root = tmp_path / "work" / "jobs" / "7"
    for sub in ("input", "output", "work"):
        (root / sub).mkdir(parents=True)
    return root


def test_the_job_folders_are_shown_read_only_and_read_write(tmp_path: Path) -> None:
    root = job(tmp_path)
    args = mounts.bwrap_args(SandboxSpec(inputs=(root / "input",),
                                         writable=(root / "output", root / "work"),
                                         hidden=farm_hidden(tmp_path / "work")))
    text = " ".join(args)
    assert f"--ro-bind {root / 'input'} {root / 'input'}" in text
    assert f"--bind {root / 'output'} {root / 'output'}" in text
    assert "--perms 1777 --tmpfs /tmp" in text and "--unshare-pid" in text
    # the work area itself is never shown: only an empty folder on the way to the job's
    work = str(tmp_path / "work")
    assert [args[i - 1] for i, a in enumerate(args) if a == work] == ["--dir"]
    # /tmp's tmpfs comes before the job's folders that lie under /tmp
    assert args.index("--tmpfs") < args.index(str(root / "input"))


def test_a_folder_holding_the_farms_files_is_refused(tmp_path: Path) -> None:
    root = job(tmp_path)
    with pytest.raises(mounts.MountError, match="farm's files"):
        mounts.bwrap_args(SandboxSpec(writable=(tmp_path,),
                                      hidden=farm_hidden(root.parent.parent)))


def test_software_that_holds_the_farms_files_is_left_out(tmp_path: Path) -> None:
    root = job(tmp_path)
    args = mounts.bwrap_args(SandboxSpec(software=(tmp_path,),
                                         hidden=farm_hidden(root.parent.parent)))
    assert str(tmp_path) not in args


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("bwrap") is None,
                    reason="needs root and bubblewrap (apt-get install bubblewrap)")
def test_a_project_user_sees_only_its_job(tmp_path: Path) -> None:
    base = Path("/tmp") / f"wanhe-mounts-{os.getpid()}"
    try:
        root = job(base)
        secret = base / "work" / "wanhe.db"
        secret.write_text("every project's tokens")
        (root / "input" / "scene.txt").write_text("mine")
        # modes a farm gives them, whatever umask the tests before left (openjd's serve: 077)
        for folder in (base, base / "work", base / "work" / "jobs", root, root / "input"):
            folder.chmod(0o755)
        (root / "input" / "scene.txt").chmod(0o644)
        os.chown(root / "output", 65534, 65534)
        args = mounts.bwrap_args(SandboxSpec(inputs=(root / "input",),
                                             writable=(root / "output",),
                                             hidden=farm_hidden(base / "work")))
        script = (f"cat {root / 'input' / 'scene.txt'}; echo; cat {secret} || echo no-db; "
                  f"echo hi > {root / 'output' / 'o.txt'} && echo wrote; "
                  f"echo x > {root / 'input' / 'x'} || echo read-only; id -u; "
                  "ls /tmp/ray 2>&1 | grep -c 'No such' ")
        done = subprocess.run([*args, *mounts.setpriv_args(65534, 65534), "sh", "-c", script],
                              capture_output=True, text=True, timeout=30)
        lines = done.stdout.split()
        assert lines == ["mine", "no-db", "wrote", "read-only", "65534", "1"], done
        assert (root / "output" / "o.txt").read_text() == "hi\n"
    finally:
        shutil.rmtree(base, ignore_errors=True)
