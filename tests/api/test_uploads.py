"""Uploads: content addressing, size limits, unsafe paths; bad bodies answer 4xx naming a field."""

from __future__ import annotations

import io
import tarfile

import pytest

from tests.api.conftest import FAKE_BLEND, Farm, sha


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def test_second_submit_uploads_nothing(farm: Farm) -> None:
    token = farm.project("a")
    files = {"shot/scene.blend": FAKE_BLEND, "tex/wood.png": b"wood"}
    hashes = farm.upload(token, files)
    r = farm.client.post("/api/blobs/missing", json={"hashes": list(hashes.values())},
                         headers=farm.auth(token))
    assert r.json() == {"missing": []}
    r = farm.client.put(f"/api/blobs/{sha(b'wood')}", content=b"wood", headers=farm.auth(token))
    assert r.json() == {"stored": [], "bytes": 0}
    first = farm.submit(token)
    second = farm.submit(token)
    assert first["id"] != second["id"]
    jobs = farm.settings.storage_root / "jobs"
    a = jobs / str(first["id"]) / "input" / "tex" / "wood.png"
    b = jobs / str(second["id"]) / "input" / "tex" / "wood.png"
    assert a.stat().st_ino == b.stat().st_ino  # one blob, hard-linked into both checkouts
    spec = farm.client.get(f"/api/jobs/{first['id']}", headers=farm.auth(token)).json()["spec"]
    assert spec["output"] == str(jobs / str(first["id"]) / "output" / "frame_####")
    assert spec["scene"] == str(jobs / str(first["id"]) / "input" / "shot" / "scene.blend")


def test_batch_upload(farm: Farm) -> None:
    token = farm.project("a")
    blobs = [f"file {i}".encode() for i in range(300)]
    body = _tar([_file(sha(b), b) for b in blobs])
    r = farm.client.post("/api/blobs/batch", content=body, headers=farm.auth(token))
    assert r.status_code == 200, r.text
    assert len(r.json()["stored"]) == 300
    r = farm.client.post("/api/blobs/missing", json={"hashes": [sha(b) for b in blobs]},
                         headers=farm.auth(token))
    assert r.json()["missing"] == []


@pytest.mark.parametrize("kind", ["symlink", "hardlink", "dir", "badname", "traversal"])
def test_batch_refuses_links_and_odd_members(farm: Farm, kind: str) -> None:
    token = farm.project("a")
    info = tarfile.TarInfo(sha(b"x"))
    if kind == "symlink":
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
    elif kind == "hardlink":
        info.type, info.linkname = tarfile.LNKTYPE, "/etc/passwd"
    elif kind == "dir":
        info.type = tarfile.DIRTYPE
    body = _tar([(info, None)]) if kind not in ("badname", "traversal") else _tar(
        [_file("evil.txt" if kind == "badname" else "../../" + sha(b"x"), b"x")])
    r = farm.client.post("/api/blobs/batch", content=body, headers=farm.auth(token))
    assert r.status_code == 400, r.text
    assert not (farm.settings.storage_root / "blobs" / sha(b"x")[:2]).exists()


def test_blob_hash_and_size_checked(farm: Farm) -> None:
    token = farm.project("a")
    r = farm.client.put(f"/api/blobs/{sha(b'a')}", content=b"b", headers=farm.auth(token))
    assert r.status_code == 422 and "hash" in r.json()["detail"]
    big = b"x" * (64 * 1024 + 1)
    r = farm.client.put(f"/api/blobs/{sha(big)}", content=big, headers=farm.auth(token))
    assert r.status_code == 413 and "limit" in r.json()["detail"]
    r = farm.client.post("/api/blobs/batch", content=_tar([_file(sha(big), big)]),
                         headers=farm.auth(token))
    assert r.status_code == 413
    r = farm.client.put("/api/blobs/NOTAHASH", content=b"b", headers=farm.auth(token))
    assert r.status_code == 422 and "sha256" in r.text
    r = farm.client.post("/api/blobs/batch", content=b"not a tar", headers=farm.auth(token))
    assert r.status_code == 400


def _job(farm: Farm, token: str, **override: object) -> tuple[int, dict[str, object]]:
    files = farm.upload(token, {"scene.blend": FAKE_BLEND, "notes.txt": b"not a scene"})
    body: dict[str, object] = {"main": "scene.blend", "files": files, **override}
    r = farm.client.post("/api/jobs", json=body, headers=farm.auth(token))
    return r.status_code, r.json()


@pytest.mark.parametrize(
    ("override", "field"),
    [
        ({"main": "../scene.blend"}, "main"),
        ({"main": "/etc/passwd.blend"}, "main"),
        ({"main": "notes.txt"}, "main"),
        ({"files": {"../../etc/passwd": "0" * 64}}, "files"),
        ({"files": {"/abs/scene.blend": "0" * 64}}, "files"),
        ({"files": {"scene.blend": "nothex"}}, "files"),
        ({"priority": 101}, "priority"),
        ({"priority": -1}, "priority"),
        ({"priority": "high"}, "priority"),
        ({"options": {"tiles": "0x0"}}, "options"),
        ({"options": {"frames": "1-99999999"}}, "options"),
        ({"options": {"threads": 0}}, "options"),
        ({"options": {"output": "/etc/cron.d/x"}}, "options"),
        ({"options": {"bogus": 1}}, "options"),
        ({"unknown_field": 1}, "unknown_field"),
    ],
)
def test_bad_jobs_answer_422_naming_the_field(
    farm: Farm, override: dict[str, object], field: str
) -> None:
    token = farm.project("a")
    status, body = _job(farm, token, **override)
    assert status == 422, body
    locs = [".".join(str(p) for p in e["loc"]) for e in body["detail"]]  # type: ignore[attr-defined]
    assert any(field in loc for loc in locs), locs


def test_missing_blobs_and_bad_scene(farm: Farm) -> None:
    token = farm.project("a")
    r = farm.client.post("/api/jobs", json={"main": "s.blend", "files": {"s.blend": "a" * 64}},
                         headers=farm.auth(token))
    assert r.status_code == 422 and "never uploaded" in r.text
    files = farm.upload(token, {"s.blend": b"PK\x03\x04 a zip, not a blend"})
    r = farm.client.post("/api/jobs", json={"main": "s.blend", "files": files},
                         headers=farm.auth(token))
    assert r.status_code == 422 and "not a .blend" in r.text
    assert "staging" not in r.text and str(farm.settings.storage_root) not in r.text
    files = farm.upload(token, {"s.blend": FAKE_BLEND})
    r = farm.client.post("/api/jobs", json={"main": "s.blend", "files": files,
                                            "options": {"frames": "50-60"}},
                         headers=farm.auth(token))
    assert r.status_code == 422 and "options" in r.text
    staged = list((farm.settings.storage_root / "staging").iterdir())
    assert staged == []  # refused submits leave nothing behind


def test_malformed_json(farm: Farm) -> None:
    token = farm.project("a")
    r = farm.client.post("/api/jobs", content=b"{not json", headers={
        **farm.auth(token), "Content-Type": "application/json"})
    assert r.status_code == 422
    r = farm.client.post("/api/projects", json={"name": "x", "weight": 0},
                         headers=farm.auth(farm.admin))
    assert r.status_code == 422 and r.json()["detail"][0]["loc"] == ["body", "weight"]
    r = farm.client.post("/api/projects", json={"name": "../x"}, headers=farm.auth(farm.admin))
    assert r.status_code == 422
    r = farm.client.get("/api/report?since=yesterday-ish", headers=farm.auth(token))
    assert r.status_code == 422 and "since" in r.text
    r = farm.client.get("/api/usage/timeline?bucket=1", headers=farm.auth(token))
    assert r.status_code == 422 and "bucket" in r.text


def test_output_files_are_path_safe(farm: Farm, tmp_path: object) -> None:
    token = farm.project("a")
    job_id = farm.submit(token)["id"]
    out = farm.settings.storage_root / "jobs" / str(job_id) / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "frame_0001.exr").write_bytes(b"exr")
    (out / "leak.png").symlink_to("/etc/passwd")
    c = farm.client
    r = c.get(f"/api/jobs/{job_id}/files/frame_0001.exr", headers=farm.auth(token))
    assert r.status_code == 200 and r.headers["content-type"] == "image/x-exr"
    for bad in ("leak.png", "..%2F..%2F..%2Fetc%2Fpasswd", "../input/scene.blend",
                "%2Fetc%2Fpasswd"):
        r = c.get(f"/api/jobs/{job_id}/files/{bad}", headers=farm.auth(token))
        assert r.status_code == 404, bad
    detail = c.get(f"/api/jobs/{job_id}", headers=farm.auth(token)).json()
    assert [o["path"] for o in detail["outputs"]] == ["frame_0001.exr"]


# ---------------------------------------------------------------------- blobs per project


def _missing(farm: Farm, token: str, hashes: list[str]) -> list[str]:
    r = farm.client.post("/api/blobs/missing", json={"hashes": hashes}, headers=farm.auth(token))
    assert r.status_code == 200, r.text
    found: list[str] = r.json()["missing"]
    return found


def _submit(farm: Farm, token: str, digest: str) -> tuple[int, str]:
    r = farm.client.post("/api/jobs", json={"main": "s.blend", "files": {"s.blend": digest}},
                         headers=farm.auth(token))
    return r.status_code, r.text


def test_projects_cannot_see_or_use_each_others_blobs(farm: Farm) -> None:
    a, b = farm.project("lionboy"), farm.project("tigergirl")
    digest, fresh = sha(FAKE_BLEND), sha(b"only b has this")
    farm.upload(a, {"s.blend": FAKE_BLEND})
    assert _missing(farm, a, [digest]) == []
    # B learns nothing of A's upload: A's file is as missing as one nobody has
    assert _missing(farm, b, [digest, fresh]) == [digest, fresh]
    status, text = _submit(farm, b, digest)
    assert status == 422 and "never uploaded" in text
    r = farm.client.put(f"/api/blobs/{digest}", content=b"not the scene", headers=farm.auth(b))
    assert r.status_code == 422 and "hash" in r.text  # B must hold the bytes themselves
    assert _submit(farm, b, digest)[0] == 422
    blob = farm.settings.storage_root / "blobs" / digest[:2] / digest[2:]
    before = blob.stat()
    r = farm.client.put(f"/api/blobs/{digest}", content=FAKE_BLEND, headers=farm.auth(b))
    assert r.json() == {"stored": [digest], "bytes": len(FAKE_BLEND)}  # as for a new file
    r = farm.client.put(f"/api/blobs/{fresh}", content=b"only b has this",
                        headers=farm.auth(b))
    assert r.json() == {"stored": [fresh], "bytes": 15}
    after = blob.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)  # stored once
    assert _missing(farm, b, [digest, fresh]) == []
    assert _missing(farm, a, [fresh]) == [fresh]  # and A learns nothing of B's
    status, text = _submit(farm, b, digest)
    assert status == 201, text
    r = farm.client.put(f"/api/blobs/{digest}", content=FAKE_BLEND, headers=farm.auth(b))
    assert r.json() == {"stored": [], "bytes": 0}  # B's own now: nothing to send


def test_batch_uploads_are_the_project_s_own(farm: Farm) -> None:
    a, b = farm.project("a"), farm.project("b")
    blobs = [f"texture {i}".encode() for i in range(3)]
    farm.upload(a, {f"t{i}.png": data for i, data in enumerate(blobs)})
    assert _missing(farm, b, [sha(x) for x in blobs]) == [sha(x) for x in blobs]
    bad = _file(sha(b"claimed"), b"other bytes")
    body = _tar([_file(sha(blobs[0]), blobs[0]), _file(sha(blobs[1]), blobs[1]), bad])
    r = farm.client.post("/api/blobs/batch", content=body, headers=farm.auth(b))
    assert r.status_code == 422 and "hash" in r.text
    # the members verified before the bad one are B's; the rest still have to come
    assert _missing(farm, b, [sha(x) for x in blobs]) == [sha(blobs[2])]
    body = _tar([_file(sha(blobs[1]), blobs[1]), _file(sha(blobs[2]), blobs[2])])
    r = farm.client.post("/api/blobs/batch", content=body, headers=farm.auth(b))
    assert r.json() == {"stored": [sha(blobs[2])], "bytes": len(blobs[2])}
    assert _missing(farm, b, [sha(x) for x in blobs]) == []


def test_admin_tokens_upload_nothing(farm: Farm) -> None:
    digest = sha(b"x")
    for method, url, body in (
        ("POST", "/api/blobs/missing", {"json": {"hashes": [digest]}}),
        ("PUT", f"/api/blobs/{digest}", {"content": b"x"}),
        ("POST", "/api/blobs/batch", {"content": _tar([_file(digest, b"x")])}),
    ):
        r = farm.client.request(method, url, headers=farm.auth(farm.admin), **body)  # type: ignore[arg-type]
        assert r.status_code == 403 and "project" in r.json()["detail"], (url, r.text)
    assert not (farm.settings.storage_root / "blobs" / digest[:2]).exists()
