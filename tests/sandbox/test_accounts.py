"""Who sessions run as: a project's own user name, `wanhe run`'s sessions as the caller, and
what `wanhe serve` says when it is not root (the farm-wide proof, as root, is in test_farm)."""

from __future__ import annotations

import os
import pwd

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
