"""The OS users the sandbox tests make for their projects (`wanhe-p<id>-<name>`): removed
when a test module is done, so repeated runs leave none behind."""

from __future__ import annotations

import pwd
import shutil
import subprocess
from collections.abc import Iterator

import pytest

from wanhe.sandbox.accounts import user_name


def remove_users(*names: str) -> None:
    """userdel each of `names` that exists (its own group goes with it)."""
    userdel = shutil.which("userdel") or "/usr/sbin/userdel"
    for name in names:
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        subprocess.run([userdel, name], capture_output=True, check=False, timeout=60)


def project_users_fixture(*projects: tuple[str, int]) -> object:
    """A module-scoped fixture that removes the users of `projects` ((name, id) pairs) after
    the module's tests (one an interrupted run left is reused, then removed)."""

    @pytest.fixture(scope="module", autouse=True)
    def project_users() -> Iterator[None]:
        yield
        remove_users(*(user_name(name, project_id) for name, project_id in projects))

    return project_users
