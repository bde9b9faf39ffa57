"""Which sandbox a worker gives its tasks, decided once, said once; and how a command is
wrapped: the cgroup entered first, then the mount namespace, then the project's user."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from wanhe.sandbox import box
from wanhe.sandbox.accounts import Account
from wanhe.sandbox.spec import SandboxSpec


def test_off_on_purpose_and_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WANHE_SANDBOX", "off")
    found = box._decide()
    assert not found.on and "WANHE_SANDBOX=off" in found.why_not
    monkeypatch.delenv("WANHE_SANDBOX")
    monkeypatch.setattr(box.os, "geteuid", lambda: 1000)
    found = box._decide()
    assert not found.on and found.why_not == "not running as root"
    monkeypatch.setattr(box, "_mode", found)
    line = box.describe()
    assert line.startswith("sandbox off (not running as root): tasks run unsandboxed")


def test_said_once(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(box, "_mode", box.Mode(False, None, False, "not running as root"))
    monkeypatch.setattr(box, "_said", False)
    with caplog.at_level(logging.INFO, logger="wanhe.sandbox"):
        box.say_once()
        box.say_once()
    assert [r.getMessage()[:11] for r in caplog.records] == ["sandbox off"]


def test_a_command_enters_the_cgroup_then_the_namespace_then_becomes_the_user(
    tmp_path: Path,
) -> None:
    class Group:  # the files a real TaskCgroup names (tests/sandbox/test_cgroup.py runs one)
        def attach_files(self) -> list[str]:
            return ["/sys/fs/cgroup/memory/x/cgroup.procs", "/sys/fs/cgroup/pids/x/cgroup.procs"]

        def oom_kills(self) -> int:
            return 0

        def cpu_s(self) -> float:
            return 0.0

    job = tmp_path / "jobs" / "1"
    spec = SandboxSpec(inputs=(job / "input",), writable=(job / "output",))
    sandbox = box.Sandbox("t", spec, Account("wanhe-p-beta", 1234, 1234, True),
                          Group(), box.Mode(True, "/usr/bin/bwrap", True))  # type: ignore[arg-type]
    argv = sandbox.command(["blender", "-b"])
    assert argv[:2] == ["/bin/sh", "-c"]
    assert "echo $$ > /sys/fs/cgroup/memory/x/cgroup.procs" in argv[2]
    assert argv[3:5] == ["wanhe-sandbox", "/usr/bin/bwrap"]
    user = argv.index("--reuid=1234")
    assert argv.index("--") < user < argv.index("blender") and argv[-2:] == ["blender", "-b"]
    # the OpenJD host drops to the user itself: no setpriv
    assert "--reuid=1234" not in sandbox.command(["host"], drop=False)
