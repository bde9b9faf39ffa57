"""`GET /api/jobs/{id}/checksums` (what the Blender add-on verifies its downloads against) and
`paused: true` on submit."""

from __future__ import annotations

import hashlib
from pathlib import Path

from tests.api.conftest import Farm


def test_checksums_of_a_jobs_outputs(farm: Farm) -> None:
    token = farm.project("shots")
    job = farm.submit(token)
    job_id = job["id"]
    url = f"/api/jobs/{job_id}/checksums"
    r = farm.client.get(url, headers=farm.auth(token))
    assert r.status_code == 200 and r.json() == {"job_id": job_id, "files": []}
    out = Path(farm.settings.storage) / "jobs" / str(job_id) / "output"
    out.mkdir(parents=True, exist_ok=True)
    (out / "frame_0001.png").write_bytes(b"png-bytes")
    expect = hashlib.sha256(b"png-bytes").hexdigest()
    files = farm.client.get(url, headers=farm.auth(token)).json()["files"]
    assert files == [{"path": "frame_0001.png", "bytes": 9, "sha256": expect}]
    (out / "frame_0001.png").write_bytes(b"replaced!!")  # a new size: hashed again
    files = farm.client.get(url, headers=farm.auth(token)).json()["files"]
    assert files[0]["sha256"] == hashlib.sha256(b"replaced!!").hexdigest()
    other = farm.project("other")
    assert farm.client.get(url, headers=farm.auth(other)).status_code == 404


def test_submit_paused(farm: Farm) -> None:
    token = farm.project("shots")
    job = farm.submit(token, paused=True)
    assert job["state"] == "paused"
    assert job["message"] == "submitted paused: resume it to start"
    r = farm.client.post(f"/api/jobs/{job['id']}/resume", headers=farm.auth(token))
    assert r.status_code == 200 and r.json()["state"] == "queued"
    assert farm.submit(token)["state"] == "queued"  # the default
