"""Shared fixtures: databases (SQLite always; PostgreSQL at WANHE_TEST_POSTGRES_URL, else a
throwaway server this session starts), scenes, the session's Ray, tiny AI models."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from wanhe.store.store import Store

# ---------------------------------------------------------------------- parallel runs
# `make test` runs on pytest-xdist workers, each module whole on one, the heavy ones in two lanes
# (tests/_lanes.py).


def pytest_configure(config: pytest.Config) -> None:
    # the controller names the run before its workers start: they write the lanes under it
    if (not hasattr(config, "workerinput") and config.pluginmanager.hasplugin("xdist")
            and config.getoption("testrunuid", None) is None):
        config.option.testrunuid = uuid.uuid4().hex


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput") and config.getoption("testrunuid", None):
        from tests._lanes import lanes_file

        lanes_file(str(config.getoption("testrunuid"))).unlink(missing_ok=True)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    from tests._lanes import write_lanes

    write_lanes(config, items)


@pytest.hookimpl(optionalhook=True)
def pytest_xdist_make_scheduler(config: pytest.Config, log: object) -> object:
    if config.getoption("dist", "no") != "loadgroup":
        return None
    from tests._lanes import make_scheduler

    return make_scheduler(config, log)


def _db_params() -> list[object]:
    return ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A PostgreSQL server for the session: WANHE_TEST_POSTGRES_URL when given, else one this
    session starts (tests/_postgres.py) and removes at its end, Ctrl-C included. Each
    pytest-xdist worker is a session of its own, so each starts its own server (its own folder,
    its own port); on a given server, every database a test makes has a name of its own."""
    given = os.environ.get("WANHE_TEST_POSTGRES_URL")
    if given:
        yield given
        return
    from tests._postgres import PostgresMissing, ThrowawayPostgres

    try:
        server = ThrowawayPostgres()
    except PostgresMissing as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def postgres_template(postgres_url: str) -> Iterator[str]:
    """A database migrated to the newest schema once per session: each test's PostgreSQL
    database is a copy of it (CREATE DATABASE … TEMPLATE), not a migration of its own."""
    import sqlalchemy as sa

    name = f"wanhe_template_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    Store(postgres_url.rsplit("/", 1)[0] + f"/{name}").dispose()
    try:
        yield name
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _database(request: pytest.FixtureRequest, tmp_path: Path, *, migrated: bool) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'wanhe.db'}"
        return
    import sqlalchemy as sa

    server: str = request.getfixturevalue("postgres_url")
    template = request.getfixturevalue("postgres_template") if migrated else "template1"
    name = f"wanhe_test_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE "{template}"'))
    url = server.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=_db_params())
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh database: a new SQLite file, or a new PostgreSQL database already at the newest
    schema (what any Store makes of an empty one; a copy is quicker than migrating)."""
    yield from _database(request, tmp_path, migrated=True)


@pytest.fixture(params=_db_params())
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh, empty database (no tables): for the tests of the migrations themselves."""
    yield from _database(request, tmp_path, migrated=False)


@pytest.fixture
def store(db_url: str) -> Iterator[Store]:
    s = Store(db_url)
    try:
        yield s
    finally:
        s.dispose()


def path_without(folder: Path, *names: str) -> str:
    """PATH as it is, less the commands `names`: one folder of links to every other command
    on it — how a machine without, say, espeak-ng looks to wanhe and the children it runs."""
    import shutil

    bin_dir = folder / "path-bin"
    bin_dir.mkdir(parents=True, exist_ok=True)
    for entry in os.environ.get("PATH", os.defpath).split(os.pathsep):
        if not entry or not Path(entry).is_dir():
            continue
        for tool in Path(entry).iterdir():
            link = bin_dir / tool.name
            if tool.name in names or link.is_symlink():
                continue
            if tool.is_file() and os.access(tool, os.X_OK):
                link.symlink_to(tool)
    for name in names:
        assert shutil.which(name, path=str(bin_dir)) is None, name
    return str(bin_dir)


def hide_commands(monkeypatch: pytest.MonkeyPatch, folder: Path, *names: str) -> None:
    """This test sees (and runs) no command called one of `names`."""
    monkeypatch.setenv("PATH", path_without(folder, *names))


REPO = Path(__file__).resolve().parents[1]
MAKE_SCENES = REPO / "examples" / "make_scenes.py"


def build_scene(out: Path, kind: str = "tiny", *args: str) -> Path:
    """Build one of the project's scenes with examples/make_scenes.py in a fresh process."""
    import subprocess
    import sys

    if not out.exists():
        subprocess.run(
            [sys.executable, str(MAKE_SCENES), kind, str(out), *args],
            check=True, capture_output=True, timeout=120,
        )
    return out


@pytest.fixture(scope="session")
def scene_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("scenes")


@pytest.fixture(scope="session")
def ray_local() -> Iterator[None]:
    """One embedded Ray for the in-process engine tests of a session."""
    from wanhe.engine import cluster

    cluster.connect(None, num_cpus=2)
    yield
    cluster.shutdown()


def done_render_tasks(db: Path) -> set[str]:
    """Keys of render tasks a (possibly still running) `wanhe render` has finished, read from
    its SQLite database; empty while the database does not exist yet or is locked."""
    import sqlite3

    if not db.exists():
        return set()
    try:
        with sqlite3.connect(db, timeout=5) as conn:
            rows = conn.execute(
                "select key from tasks where kind='render' and state='done'"
            ).fetchall()
    except sqlite3.OperationalError:
        return set()
    return {r[0] for r in rows}


# ---------------------------------------------------------------------- AI generation
# Tiny diffusion pipelines with random weights, built once per session from configs (as
# diffusers tests itself; wanhe.ai.tiny), saved with save_pretrained: nothing is downloaded.
os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from wanhe.ai import tiny

    root = tmp_path_factory.mktemp("tiny-models")
    return {kind: tiny.build(kind, root / kind) for kind in tiny.KINDS}


@pytest.fixture(scope="session")
def tiny_sd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from wanhe.ai import tiny

    return tiny.build("sd", tmp_path_factory.mktemp("tiny-sd") / "sd")
