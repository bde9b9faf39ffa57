"""Who sessions run as: a project's own user name, `wanhe run`'s sessions as the caller, and
what `wanhe serve` says when it is not root (the farm-wide proof, as root, is in test_farm)."""

from __future__ import annotations

import os
import pwd
from pathlib import Path

import pytest

from wanhe.sandbox import accounts as users


def test_project_user_names_are_valid_and_distinct() -> None:
    assert users.user_name("lionboy") == "wanhe-p-lionboy"
    assert users.user_name("Lion Boy 2!") == "wanhe-p-lion-boy-2"
    long_a, long_b = users.user_name("a" * 60), users.user_name("a" * 59 + "b")
    assert len(long_a) <= 32 and long_a != long_b


def test_local_runs_are_the_callers_own(monkeypatch: pytest.MonkeyPatch) -> None:
    me = pwd.getpwuid(os.geteuid()).pw_name
    account = users.session_account(users.LOCAL_PROJECT)
    assert (account.name, account.isolated) == (me, False)
    monkeypatch.setattr(users.os, "geteuid", lambda: 54321)
    assert not users.is_root()
    assert "not running as root" in users.describe_mode()


@pytest.mark.skipif(os.geteuid() != 0, reason="project users need root")
def test_the_same_bytes_in_two_projects_jobs_stay_each_ones_own(tmp_path: Path) -> None:
    """Checkouts hard-link the blob: preparing beta's job must not take alpha's scene away
    (alpha's renders failed "scene file not found" once beta's job ran on the farm)."""
    blob = tmp_path / "blobs" / "scene"
    blob.parent.mkdir()
    blob.write_bytes(b"BLENDER-v500 the same scene")
    roots = []
    for job_id in (1, 2):
        root = tmp_path / "jobs" / str(job_id)
        (root / "input" / "shots").mkdir(parents=True)
        os.link(blob, root / "input" / "shots" / "tiny.blend")
        roots.append(root)
    alpha = users.session_account("hl-alpha", 9101)
    beta = users.session_account("hl-beta", 9102)
    users.prepare_job(alpha, roots[0], namespaced=True)
    users.prepare_job(beta, roots[1], namespaced=True)
    mine = [(root / "input" / "shots" / "tiny.blend").stat() for root in roots]
    assert mine[0].st_gid == alpha.gid and mine[1].st_gid == beta.gid
    assert mine[0].st_ino != mine[1].st_ino != blob.stat().st_ino
    assert (roots[0] / "input" / "shots" / "tiny.blend").read_bytes() == blob.read_bytes()
