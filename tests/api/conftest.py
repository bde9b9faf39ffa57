"""Fixtures for the service tests: an app on a real database, tokens, uploads.

Most tests run the app without the dispatcher and with a scene inspector that reads only the
file's header (the real one starts Blender, seconds per submit); the slow tests run it whole.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from wanhe.api.app import create_app
from wanhe.blender.inspect import check_blend_file
from wanhe.config import Settings
from wanhe.jobtypes.blender_render import SceneFacts
from wanhe.store.store import Store

FAKE_BLEND = b"BLENDER-v500" + b"\0" * 200 + b"ENDB" + b"\0" * 20


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fake_inspector(path: Path) -> tuple[SceneFacts, list[str]]:
    check_blend_file(path)
    facts = SceneFacts(
        path=str(path), frame_start=1, frame_end=4, resolution_x=64, resolution_y=48,
        engine="CYCLES", camera="Camera", cameras=["Camera"], samples=4,
    )
    return facts, []


FAKE_INSPECTORS = {"blender_render": fake_inspector}


@dataclass
class Farm:
    client: TestClient
    settings: Settings
    admin: str

    def auth(self, token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    def project(self, name: str, **extra: float) -> str:
        r = self.client.post("/api/projects", json={"name": name, **extra},
                             headers=self.auth(self.admin))
        assert r.status_code == 201, r.text
        token: str = r.json()["token"]
        return token

    def upload(self, token: str, files: dict[str, bytes]) -> dict[str, str]:
        hashes = {path: sha(data) for path, data in files.items()}
        r = self.client.post("/api/blobs/missing", json={"hashes": list(hashes.values())},
                             headers=self.auth(token))
        assert r.status_code == 200, r.text
        for path, data in files.items():
            if hashes[path] in r.json()["missing"]:
                put = self.client.put(f"/api/blobs/{hashes[path]}", content=data,
                                      headers=self.auth(token))
                assert put.status_code == 200, put.text
        return hashes

    def submit(self, token: str, **body: object) -> dict[str, object]:
        files = self.upload(token, {"shot/scene.blend": FAKE_BLEND, "tex/wood.png": b"png"})
        payload = {"main": "shot/scene.blend", "files": files,
                   "options": {"frames": "1-2", "denoise": False}, **body}
        r = self.client.post("/api/jobs", json=payload, headers=self.auth(token))
        assert r.status_code == 201, r.text
        job: dict[str, object] = r.json()
        return job


def farm_settings(tmp_path: Path, db_url: str, **extra: object) -> Settings:
    return Settings(home=tmp_path / "home", db=db_url, storage=str(tmp_path / "storage"),
                    **extra)  # type: ignore[arg-type]


@pytest.fixture
def farm(tmp_path: Path, db_url: str) -> Iterator[Farm]:
    settings = farm_settings(tmp_path, db_url, max_upload_bytes=64 * 1024)
    store = Store(settings.db_url)
    admin = store.create_token(None, "admin")
    store.dispose()
    app = create_app(settings, start_dispatcher=False, inspectors=FAKE_INSPECTORS)
    with TestClient(app) as client:
        yield Farm(client, settings, admin)


@pytest.fixture(scope="module")
def chromium() -> Iterator[object]:
    """One chromium for a module's routed-page tests (tests/api/_routed_page.py): each test
    opens a page of its own in it."""
    from tests.api._routed_page import browser

    with browser() as b:
        yield b
