"""The farm's own files are private to its user: a session user (another OS user on the same
machine) cannot read the database with every project's jobs and token hashes, list the
storage, or touch Ray's session folder."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from wanhe.engine.cluster import ray_temp_dir
from wanhe.storage import Storage, WorkArea
from wanhe.store.store import Store


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_database_and_its_companions_are_0600(tmp_path: Path) -> None:
    db = tmp_path / "home" / "wanhe.db"
    store = Store(f"sqlite:///{db}")
    try:
        with store.engine.connect():  # held open: SQLite keeps -wal and -shm while in use
            store.create_project("alpha")
            store.create_token(None, "admin")
            assert _mode(db.parent) == 0o700  # the home folder the database made
            for path in (db, db.with_name("wanhe.db-wal"), db.with_name("wanhe.db-shm")):
                assert path.exists(), path
                assert _mode(path) == 0o600, path
    finally:
        store.dispose()


def test_an_older_world_readable_database_is_tightened(tmp_path: Path) -> None:
    db = tmp_path / "wanhe.db"
    Store(f"sqlite:///{db}").dispose()
    db.chmod(0o644)
    Store(f"sqlite:///{db}").dispose()
    assert _mode(db) == 0o600


def test_storage_and_work_folders_the_farm_creates_are_0700(tmp_path: Path) -> None:
    Storage(tmp_path / "storage")
    WorkArea(tmp_path / "work")
    for folder in ("storage", "storage/blobs", "storage/jobs", "storage/tmp", "work",
                   "work/jobs", "work/staging", "work/tmp", "work/logs", "work/cache"):
        assert _mode(tmp_path / folder) == 0o700, folder
    shared = tmp_path / "srv"
    shared.mkdir(mode=0o755)
    shared.chmod(0o755)
    Storage(shared)  # an admin's own folder keeps the mode the admin gave it
    assert _mode(shared) == 0o755


def test_rays_session_folder_is_private() -> None:
    """Ray makes its session folders 0777 (any user could rename the farm's files there):
    they live in a folder only the farm's user may enter."""
    folder = ray_temp_dir()
    assert _mode(folder.parent) == 0o700
    assert folder.parent.stat().st_uid == Path("/proc/self").stat().st_uid


def test_rays_token_file_is_private(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ray writes its token 0644 in a 0755 ~/.ray; the farm tightens both after Ray starts."""
    from wanhe.engine import cluster

    monkeypatch.setenv("HOME", str(tmp_path))
    token = tmp_path / ".ray" / "auth_token"
    token.parent.mkdir(mode=0o755)
    token.parent.chmod(0o755)
    token.write_text("secret")
    token.chmod(0o644)
    cluster._private_ray_token()
    assert (_mode(token.parent), _mode(token)) == (0o700, 0o600)


def test_serving_as_root_sets_no_process_wide_umask() -> None:
    """`wanhe serve` used to set umask 077 for its whole process as root; what must be
    private is now made so where it is made (above), and the rest keeps the usual modes."""
    from wanhe.openjd.serve import configure_workers

    before = os.umask(0o022)
    try:
        configure_workers([], None)
        assert os.umask(0o022) == 0o022
    finally:
        os.umask(before)
