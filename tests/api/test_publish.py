"""Publishing finished outputs from the work area to a URL storage, and the service reading
them back from there: a job on `memory://` storage, its inputs materialised into the work area,
its outputs published when the dispatcher reports their task done, downloads served from
storage."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import fsspec
import pytest
from fastapi.testclient import TestClient

from tests._ftp import ftp_server
from tests.api.conftest import FAKE_BLEND, FAKE_INSPECTORS, sha
from wanhe.api import publish
from wanhe.api.app import create_app
from wanhe.api.publish import OutputPublisher, publish_outputs, unpublished_outputs
from wanhe.api.service import Service
from wanhe.config import Settings
from wanhe.engine.dispatcher import TaskEvent
from wanhe.storage import Storage, WorkArea
from wanhe.store.store import Store


def _memory_files(url: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    if not fs.exists(root):
        return {}
    return {name[len(root) + 1:]: fs.cat_file(name) for name in fs.find(root)}


@pytest.fixture
def memory_url() -> Iterator[str]:
    url = f"memory://wanhe-test-{uuid.uuid4().hex}"
    try:
        yield url
    finally:
        fs, root = fsspec.core.url_to_fs(url)
        if fs.exists(root):
            fs.rm(root, recursive=True)


@pytest.fixture
def remote(memory_url: str, tmp_path: Path) -> tuple[Storage, WorkArea]:
    work = WorkArea(tmp_path / "work")
    return Storage(memory_url, scratch=work.tmp), work


def _write(work: WorkArea, job_id: int, relative: str, data: bytes) -> Path:
    path = work.output_dir(job_id) / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---------------------------------------------------------------------- publishing


def test_publish_outputs_copies_changes_and_drops_replaced_previews(
    remote: tuple[Storage, WorkArea], memory_url: str
) -> None:
    storage, work = remote
    _write(work, 1, "frame_0001.exr", b"exr")
    _write(work, 1, "frame_0001.partial.png", b"half")
    published: dict[str, publish.Signature] = {}
    names = ["frame_0001.exr", "frame_0001.partial.png", "frame_0002.exr"]
    assert publish_outputs(storage, work, 1, names, published) == 2
    assert _memory_files(memory_url) == {
        "jobs/1/output/frame_0001.exr": b"exr", "jobs/1/output/frame_0001.partial.png": b"half"}
    assert publish_outputs(storage, work, 1, names, published) == 0  # unchanged: not copied
    # the final preview replaces the progressive one; a frame not written yet stays absent
    (work.output_dir(1) / "frame_0001.partial.png").unlink()
    _write(work, 1, "frame_0001.png", b"png")
    _write(work, 1, "frame_0001.exr", b"exr, re-rendered by QC")
    names = ["frame_0001.exr", "frame_0001.partial.png", "frame_0001.png"]
    assert publish_outputs(storage, work, 1, names, published) == 2
    assert _memory_files(memory_url) == {
        "jobs/1/output/frame_0001.exr": b"exr, re-rendered by QC",
        "jobs/1/output/frame_0001.png": b"png"}


def test_a_deliverable_missing_from_the_work_area_stays_in_storage(
    remote: tuple[Storage, WorkArea], memory_url: str
) -> None:
    storage, work = remote
    frame = _write(work, 2, "frame_0001.exr", b"exr")
    publish_outputs(storage, work, 2, ["frame_0001.exr"], {})
    frame.unlink()  # a pruned work area must not delete finished frames
    publish_outputs(storage, work, 2, ["frame_0001.exr"], {})
    assert _memory_files(memory_url) == {"jobs/2/output/frame_0001.exr": b"exr"}


def test_sweep_finds_what_a_killed_service_left_unpublished(
    remote: tuple[Storage, WorkArea], memory_url: str
) -> None:
    storage, work = remote
    _write(work, 3, "frame_0001.exr", b"exr")
    _write(work, 3, "frame_0002.exr", b"exr 2")
    _write(work, 3, ".frame_0003.tmp-9.exr", b"being written")
    publish_outputs(storage, work, 3, ["frame_0001.exr"], {})
    storage.publish(_write(work, 4, "f.partial.png", b"p"), 4, "f.partial.png")
    (work.output_dir(4) / "f.partial.png").unlink()
    assert unpublished_outputs(storage, work, 3) == ["frame_0002.exr"]
    assert unpublished_outputs(storage, work, 4) == ["f.partial.png"]  # a stale preview
    publisher = OutputPublisher(storage, work)
    publisher.start()
    try:
        publisher.sweep()
        publisher.task_done(3, {"output": str(work.output_dir(3) / "frame_0002.exr")})
        assert publisher.flush(3, timeout=10)
    finally:
        publisher.close()
    assert unpublished_outputs(storage, work, 3) == []
    assert unpublished_outputs(storage, work, 4) == []
    assert set(_memory_files(memory_url)) == {
        "jobs/3/output/frame_0001.exr", "jobs/3/output/frame_0002.exr"}


def test_publisher_retries_when_storage_fails(
    remote: tuple[Storage, WorkArea], monkeypatch: pytest.MonkeyPatch, memory_url: str
) -> None:
    storage, work = remote
    monkeypatch.setattr(publish, "RETRY_DELAYS_S", (0.1, 0.1))
    real = storage.publish
    failures = [2]

    def flaky(local: Path, job_id: int, relative: str) -> None:
        if failures[0]:
            failures[0] -= 1
            raise ConnectionResetError("storage hiccup")
        real(local, job_id, relative)

    monkeypatch.setattr(storage, "publish", flaky)
    frame = _write(work, 5, "frame_0001.exr", b"exr")
    publisher = OutputPublisher(storage, work)
    publisher.start()
    try:
        publisher.task_done(5, {"output": str(frame)})
        deadline = time.monotonic() + 10
        while "jobs/5/output/frame_0001.exr" not in _memory_files(memory_url):
            assert time.monotonic() < deadline, "never published after two failures"
            time.sleep(0.05)
    finally:
        publisher.close()
    assert failures == [0]


# ---------------------------------------------------------------------- the service


@dataclass
class RemoteFarm:
    client: TestClient
    service: Service
    token: str
    url: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    def finish(self, job_id: int, key: str, files: dict[str, bytes]) -> dict[str, Any]:
        """Write a task's files into the work area and report it done, as the dispatcher does."""
        task = next(t for t in self.service.store.tasks(job_id) if t.key == key)
        for relative, data in files.items():
            _write(self.service.work, job_id, relative, data)
        self.service._on_task_event(TaskEvent("finishing", task, job_id))
        self.service._on_task_event(TaskEvent("done", task, job_id))
        return task.payload


@contextmanager
def farm_on(url: str, tmp_path: Path) -> Iterator[RemoteFarm]:
    """The service (no dispatcher) with storage at `url` and a project token."""
    settings = Settings(home=tmp_path / "home", db=f"sqlite:///{tmp_path / 'wanhe.db'}",
                        storage=url, work=tmp_path / "work")
    store = Store(settings.db_url)
    token = store.create_token(store.create_project("lionboy").id, "artist")
    store.dispose()
    app = create_app(settings, start_dispatcher=False, inspectors=FAKE_INSPECTORS)
    with TestClient(app) as client:
        yield RemoteFarm(client, app.state.service, token, url)


@pytest.fixture
def remote_farm(tmp_path: Path, memory_url: str) -> Iterator[RemoteFarm]:
    with farm_on(memory_url, tmp_path) as farm:
        yield farm


def test_a_job_on_memory_storage(remote_farm: RemoteFarm, tmp_path: Path) -> None:
    farm, http = remote_farm, remote_farm.client
    digest = sha(FAKE_BLEND)
    assert http.put(f"/api/blobs/{digest}", content=FAKE_BLEND, headers=farm.auth).json() == {
        "stored": [digest], "bytes": len(FAKE_BLEND)}
    r = http.post("/api/jobs", headers=farm.auth, json={
        "main": "shot/a.blend", "files": {"shot/a.blend": digest},
        "options": {"frames": "1", "denoise": False, "sample_chunks": 2}})
    assert r.status_code == 201, r.text
    job_id = r.json()["id"]
    checkout = tmp_path / "work" / "jobs" / str(job_id) / "input" / "shot" / "a.blend"
    assert checkout.read_bytes() == FAKE_BLEND  # materialised into the work area
    assert r.json()["spec"]["scene"] == str(checkout)
    assert http.get(f"/api/jobs/{job_id}/latest.png", headers=farm.auth).status_code == 404

    chunk = farm.finish(job_id, "1/render/t000_c00", {"frame_0001.partial.png": b"partial"})
    assert chunk["output"].startswith(str(tmp_path / "work"))  # tiles stay in the work area
    latest = http.get(f"/api/jobs/{job_id}/latest.png", headers=farm.auth)
    assert latest.status_code == 200 and latest.content == b"partial"
    farm.finish(job_id, "1/assemble", {"frame_0001.exr": b"exr"})
    preview = farm.service.work.output_dir(job_id) / "frame_0001.partial.png"
    preview.unlink()  # the preview task replaces the progressive preview
    farm.finish(job_id, "1/preview", {"frame_0001.png": b"\x89PNG final"})

    farm.service.settle_outputs(job_id)
    assert _memory_files(farm.url) == {
        f"blobs/{digest[:2]}/{digest[2:]}": FAKE_BLEND,
        f"jobs/{job_id}/output/frame_0001.exr": b"exr",
        f"jobs/{job_id}/output/frame_0001.png": b"\x89PNG final",
    }
    # downloads come from storage, even once the work area is gone
    import shutil

    shutil.rmtree(farm.service.work.job_dir(job_id))
    r = http.get(f"/api/jobs/{job_id}/files/frame_0001.exr", headers=farm.auth)
    assert r.status_code == 200 and r.content == b"exr"
    assert r.headers["content-type"] == "image/x-exr"
    assert http.get(f"/api/jobs/{job_id}/latest.png", headers=farm.auth).content \
        == b"\x89PNG final"
    detail = http.get(f"/api/jobs/{job_id}", headers=farm.auth).json()
    assert [(o["path"], o["bytes"]) for o in detail["outputs"]] == [
        ("frame_0001.exr", 3), ("frame_0001.png", 10)]
    for bad in ("nope.png", "..%2F..%2Fblobs", "../input/shot/a.blend"):
        assert http.get(f"/api/jobs/{job_id}/files/{bad}", headers=farm.auth).status_code \
            == 404
    assert list(farm.service.work.tmp.iterdir()) == []  # download copies are removed


def test_a_storage_outage_answers_503_naming_the_storage_then_recovers(tmp_path: Path) -> None:
    """A real FTP server as the farm's storage goes away and comes back on the same port:
    meanwhile downloads answer 503 (not 404: the file is not missing) naming the storage, the
    job page still shows the job with a warning, and the next request after the restart works
    (a connection the server dropped is not reused)."""
    root = tmp_path / "ftp"
    server = ftp_server(root)
    base = server.__enter__()
    port = int(base.rsplit(":", 1)[1])
    try:
        with farm_on(base + "/farm", tmp_path) as farm:
            http = farm.client
            digest = sha(FAKE_BLEND)
            assert http.put(f"/api/blobs/{digest}", content=FAKE_BLEND,
                            headers=farm.auth).status_code == 200
            r = http.post("/api/jobs", headers=farm.auth, json={
                "main": "a.blend", "files": {"a.blend": digest},
                "options": {"frames": "1", "denoise": False}})
            assert r.status_code == 201, r.text
            job_id = r.json()["id"]
            farm.finish(job_id, "1/assemble", {"frame_0001.exr": b"exr"})
            farm.service.settle_outputs(job_id)
            file_url = f"/api/jobs/{job_id}/files/frame_0001.exr"
            assert http.get(file_url, headers=farm.auth).content == b"exr"

            server.__exit__(None, None, None)  # the storage server goes away
            down = http.get(file_url, headers=farm.auth)
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "10"
            assert f"127.0.0.1:{port}" in down.json()["detail"]
            assert "render-farm" not in down.text  # the password is never shown
            late = b"a texture sent while storage is down"
            put = http.put(f"/api/blobs/{sha(late)}", content=late, headers=farm.auth)
            assert put.status_code == 503, put.text
            job = http.get(f"/api/jobs/{job_id}", headers=farm.auth)
            assert job.status_code == 200 and job.json()["outputs"] == []
            assert job.json()["outputs_listed"] is False  # unknown, not empty
            assert "output files not listed" in job.json()["warnings"][0]

            with ftp_server(root, port=port):  # back, same address
                up = http.get(file_url, headers=farm.auth)
                assert up.status_code == 200 and up.content == b"exr"
                again = http.get(f"/api/jobs/{job_id}", headers=farm.auth).json()
                assert [o["path"] for o in again["outputs"]] == ["frame_0001.exr"]
                assert again["warnings"] == [] and again["outputs_listed"] is True
                missing = http.post("/api/blobs/missing", headers=farm.auth,
                                    json={"hashes": [digest, sha(late)]}).json()["missing"]
                assert missing == [sha(late)]  # the refused upload was not recorded as stored
                assert http.put(f"/api/blobs/{sha(late)}", content=late,
                                headers=farm.auth).status_code == 200
    finally:
        server.__exit__(None, None, None)
