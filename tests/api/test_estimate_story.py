"""A storyboard's estimate on a real `wanhe serve` (real Ray worker, SQLite, espeak-ng voices
and a still): `POST /api/estimate` with `kind: story` takes the storyboard and its files
uploaded by content as a story job's submit does, runs no voice in the API process — its
probes run as a `story_probe` job of the project on a worker — then answers from the cached
probe, and once the farm rendered that storyboard, from the job's metered history; the job's
graph is scheduled on the farm asked about; past the time limit: 504.

slow: the farm starts Ray."""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api._service import ServiceProc, make_project, running_farm, wait_done, wait_for
from tests.story.conftest import BASE, write

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]


@pytest.fixture(scope="module")
def farm() -> Iterator[tuple[ServiceProc, str]]:
    with running_farm("wanhe-estimate-story-", workers=1, num_cpus=2) as svc:
        yield svc, make_project(svc.db_url, "board")


def _upload(svc: ServiceProc, token: str, folder: Path, board: dict[str, Any]) -> dict[str, str]:
    story = write(folder, board)
    files = {"story.yaml": story.read_bytes(), "board.png": (folder / "board.png").read_bytes()}
    hashes = {name: hashlib.sha256(data).hexdigest() for name, data in files.items()}
    with svc.client(token) as http:
        for name, data in files.items():
            r = http.put(f"/api/blobs/{hashes[name]}", content=data)
            assert r.status_code == 200, r.text
    return hashes


def _estimate(svc: ServiceProc, token: str, files: dict[str, str], **body: Any) -> Any:
    with svc.client(token) as http:
        return http.post("/api/estimate", json={"kind": "story", "main": "story.yaml",
                                                "files": files, **body}, timeout=500)


def _jobs(svc: ServiceProc, token: str) -> list[dict[str, Any]]:
    with svc.client(token) as http:
        jobs: list[dict[str, Any]] = http.get("/api/jobs").json()
    return [j for j in jobs if j["kind"] == "story_probe"]


def test_the_probes_run_on_a_worker_then_are_cached(farm: tuple[ServiceProc, str],
                                                    tmp_path: Path) -> None:
    svc, token = farm
    files = _upload(svc, token, tmp_path / "film", copy.deepcopy(BASE))
    r = _estimate(svc, token, files, machines=1, cores=1, price_core_hour=2, timeout_s=400)
    assert r.status_code == 200, r.text
    data = r.json()
    assert (data["kind"], data["storyboard"], data["probe_jobs"]) == ("story", "story.yaml", 1)
    assert [p["part"] for p in data["parts"]] == ["voices", "assembly"]
    assert data["core_s"] > 0 and data["cost"] == pytest.approx(2 * data["core_hours"])
    farm_ = data["farm"]
    assert farm_["task_kinds"]["voice"] == 2 and farm_["task_kinds"]["reel"] == 1
    assert farm_["wall_s"] == pytest.approx(data["core_s"])  # one slot: every task in turn
    assert data["budget"]["fits"]
    probes = _jobs(svc, token)
    assert len(probes) == 1 and probes[0]["state"] == "done"
    # the API process never synthesized: no espeak-ng child of it, no voice library loaded
    assert svc.proc is not None
    assert "espeak" not in Path(f"/proc/{svc.proc.pid}/maps").read_text()
    again = _estimate(svc, token, files, machines=2, cores=4).json()
    assert again["probe_jobs"] == 0 and again["source"] == "cached probe"
    assert again["core_s"] == pytest.approx(data["core_s"])
    assert again["farm"]["wall_s"] < farm_["wall_s"] and again["farm"]["machines"] == 2
    assert len(_jobs(svc, token)) == 1
    # the same storyboard rendered by the farm: asked again, the answer is that job's history
    with svc.client(token) as http:
        sent = http.post("/api/jobs", json={"kind": "story", "main": "story.yaml",
                                            "files": files, "options": {}})
        assert sent.status_code == 201, sent.text
        job_id = sent.json()["id"]
    wait_done(svc, token, job_id, 300)
    past = _estimate(svc, token, files, machines=1, cores=1).json()
    assert past["source"] == f"history of job {job_id}" and past["probe_jobs"] == 0
    assert [p["part"] for p in past["parts"]] == ["voices", "assembly"]
    assert past["core_s"] > 0 and past["reel_s"] == pytest.approx(data["reel_s"], rel=0.5)
    # the tracks (light: no slot) ran beside the rest then: the wall is less than the sum
    assert 0 < past["farm"]["wall_s"] <= past["core_s"]


def test_a_probe_past_the_time_limit_is_504_saying_what_to_do(
        farm: tuple[ServiceProc, str], tmp_path: Path) -> None:
    svc, token = farm
    board = copy.deepcopy(BASE)
    board["film"]["title"] = "another"  # other content: no cached probe
    files = _upload(svc, token, tmp_path / "other", board)
    before = len(_jobs(svc, token))
    r = _estimate(svc, token, files, timeout_s=0.5)
    assert r.status_code == 504, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the estimate's storyboard probe (job ") and "0.5 s limit" in detail
    assert "wanhe estimate STORY" in detail and "\n" not in detail
    wait_for(lambda: len(_jobs(svc, token)) > before and any(
        j["state"] == "cancelled" for j in _jobs(svc, token)), 60, "the probe to be cancelled")


def test_bad_storyboard_estimates_are_one_line(farm: tuple[ServiceProc, str],
                                               tmp_path: Path) -> None:
    svc, token = farm
    board = copy.deepcopy(BASE)
    board["scenes"][0]["shots"][0]["lines"][0]["character"] = "Zed"
    files = _upload(svc, token, tmp_path / "bad", board)
    r = _estimate(svc, token, files)
    assert r.status_code == 422 and "unknown character 'Zed'" in r.text, r.text
    r = _estimate(svc, token, {"story.yaml": "0" * 64})
    assert r.status_code == 422 and "never uploaded" in r.text, r.text
    with svc.client(token) as http:
        r = http.post("/api/jobs", json={"kind": "story_probe", "options": {}})
        assert r.status_code == 422 and "POST /api/estimate" in r.text, r.text
        kinds = {t["kind"] for t in http.get("/api/job-types").json()}
    assert "story" in kinds and "story_probe" not in kinds


def test_a_storyboard_naming_files_outside_its_own_is_refused(farm: tuple[ServiceProc, str],
                                                              tmp_path: Path) -> None:
    """As another project would: a still named by absolute path (the service's own files) or
    by `../` out of the upload, and bytes only another project uploaded — each refused at the
    field in one line, and no probe job made."""
    svc, token = farm
    before = len(_jobs(svc, token))
    for path in ("/etc/passwd", "../../1/output/frame_0001.png", "../board.png"):
        board = copy.deepcopy(BASE)
        board["scenes"][0]["shots"][0]["image"]["path"] = path
        files = _upload(svc, token, tmp_path / f"evil{len(path)}", board)
        r = _estimate(svc, token, files)
        assert r.status_code == 422, (path, r.text)
        assert "outside" in r.text and "Traceback" not in r.text, (path, r.text)
    other = make_project(svc.db_url, "rival")
    rivals = copy.deepcopy(BASE)
    rivals["film"]["title"] = "Rival"  # bytes this project never uploaded itself
    theirs = _upload(svc, other, tmp_path / "theirs", rivals)
    r = _estimate(svc, token, theirs)  # uploaded by the rival, not by this project
    assert r.status_code == 422 and "never uploaded by this project" in r.text, r.text
    assert len(_jobs(svc, token)) == before
