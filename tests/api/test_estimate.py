"""A render's estimate on a real `wanhe serve` (real Blender probe, real Ray, SQLite): `POST
/api/estimate` answers what `wanhe estimate --json` answers for the uploaded scene, a job
keeps the estimate it was sent (or asked the farm for) and shows it against the actual cost
as it runs (the job JSON, `wanhe job ID`), and bad input is one line with a 422.

slow: the farm starts Ray and the probe renders the tiny scene ~12 times (~30 s in all on
this loaded machine); one probe serves every test (the farm caches it per project)."""

from __future__ import annotations

import hashlib
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api._service import ServiceProc, make_project, run_cli, running_farm, wait_done

pytestmark = [pytest.mark.slow, pytest.mark.timeout(420)]
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def farm() -> Iterator[ServiceProc]:
    pytest.importorskip("bpy")
    with running_farm("wanhe-estimate-", workers=1, num_cpus=1) as svc:
        yield svc


@pytest.fixture(scope="module")
def scene(farm: ServiceProc) -> tuple[str, dict[str, str]]:
    """The tiny scene, made and uploaded as project `lookahead`'s: (token, files)."""
    out = farm.home / "tiny.blend"
    subprocess.run([sys.executable, str(REPO / "examples/make_scenes.py"), "tiny", str(out)],
                   check=True, capture_output=True, timeout=120)
    token = make_project(farm.db_url, "lookahead")
    data = out.read_bytes()
    sha = hashlib.sha256(data).hexdigest()
    with farm.client(token) as http:
        put = http.put(f"/api/blobs/{sha}", content=data,
                       headers={"Content-Type": "application/octet-stream"})
        assert put.status_code in (200, 201), put.text
    return token, {"tiny.blend": sha}


@pytest.fixture(scope="module")
def estimated(farm: ServiceProc, scene: tuple[str, dict[str, str]]) -> dict[str, Any]:
    token, files = scene
    with farm.client(token) as http:
        r = http.post("/api/estimate", json={"main": "tiny.blend", "files": files,
                                             "options": {"frames": "1-3"}, "machines": 1,
                                             "cores": 8},
                      timeout=400)
    assert r.status_code == 200, r.text
    answer: dict[str, Any] = r.json()
    return answer


def test_the_farm_estimates_an_uploaded_scene(estimated: dict[str, Any]) -> None:
    low, high = estimated["core_hours_range"]
    assert 0 < low <= estimated["core_hours"] <= high
    assert estimated["scene"] == "tiny.blend" and estimated["frames"] == 3
    assert sorted(estimated["frame_core_s"]) == ["1", "2", "3"]
    assert sum(estimated["frame_core_s"].values()) == pytest.approx(
        estimated["core_hours"] * 3600)
    assert estimated["farm"] == {"machines": 1, "cores": 8} and estimated["wall_s"] > 0
    assert estimated["budget"] == {"fits": True, "message": "the project has no core-hour "
                                                            "budget"}


def test_bad_estimate_requests_are_one_line_each(
        farm: ServiceProc, scene: tuple[str, dict[str, str]]) -> None:
    token, files = scene
    with farm.client("not-a-token") as http:
        assert http.post("/api/estimate", json={"main": "tiny.blend", "files": files}
                         ).status_code == 401
    cases = [
        ({"options": {"frames": "1-999"}}, "outside the scene"),
        ({"files": {"tiny.blend": "0" * 64}}, "never uploaded by this project"),
        ({"main": "other.blend"}, "not among the files sent"),
        ({"machines": 0}, "greater than or equal to 1"),
        ({"price_core_hour": -1}, "greater than or equal to 0"),
    ]
    with farm.client(token) as http:
        for change, says in cases:
            body = {"main": "tiny.blend", "files": files, **change}
            r = http.post("/api/estimate", json=body, timeout=300)
            assert r.status_code == 422, (change, r.text)
            assert says in r.text, (change, r.text)


def test_a_job_keeps_the_estimate_it_was_sent_and_shows_it_against_the_actual(
        farm: ServiceProc, scene: tuple[str, dict[str, str]],
        estimated: dict[str, Any]) -> None:
    from wanhe.runs.estimate import kept_estimate

    token, files = scene
    kept = kept_estimate(estimated, "wanhe submit --estimate")
    body = {"main": "tiny.blend", "files": files, "options": {"frames": "1-3"},
            "estimate": kept}
    with farm.client(token) as http:
        sent = http.post("/api/jobs", json=body)
        assert sent.status_code == 201, sent.text
        job_id = sent.json()["id"]
        assert sent.json()["estimate"]["core_hours"] == pytest.approx(kept["core_hours"])
        # an estimate of other frames is not this job's
        other = {**kept, "frame_core_s": {"7": 1.0}}
        bad = http.post("/api/jobs", json={**body, "estimate": other})
        assert bad.status_code == 422 and "the estimate's frames are not the job's" in bad.text
        low, high = kept["core_hours_range"]
        wrong = {**kept, "core_hours_range": [high * 2, high * 3]}
        bad = http.post("/api/jobs", json={**body, "estimate": wrong})
        assert bad.status_code == 422 and "must hold core_hours" in bad.text
    job = wait_done(farm, token, job_id)
    seen = job["estimate"]
    assert seen["core_hours"] == pytest.approx(kept["core_hours"])
    assert seen["core_hours_range"] == pytest.approx([low, high])
    assert seen["frames_done"] == 3 and seen["actual_core_hours"] > 0
    assert seen["ratio"] is not None and seen["eta_s"] is None  # done: no ETA
    assert seen["made_by"] == "wanhe submit --estimate"
    shown = run_cli(farm, token, "job", str(job_id))
    assert "estimate" in shown and "3 frame(s) done" in shown and "actual" in shown


def test_a_job_asks_the_farm_for_its_estimate_at_submit(
        farm: ServiceProc, scene: tuple[str, dict[str, str]],
        estimated: dict[str, Any]) -> None:
    token, files = scene
    with farm.client(token) as http:
        sent = http.post("/api/jobs", json={
            "main": "tiny.blend", "files": files, "options": {"frames": "1-3"},
            "estimate_on_farm": True, "paused": True}, timeout=400)
        assert sent.status_code == 201, sent.text
        seen = sent.json()["estimate"]
        # the same probe as POST /api/estimate's (cached for the project) on one machine (a
        # machine more would load the scene once more): the same estimate
        assert seen["core_hours"] == pytest.approx(estimated["core_hours"])
        assert seen["made_by"] == "the farm at submit" and seen["frames_done"] == 0
        assert seen["actual_core_hours"] == 0 and seen["eta_s"] is None
        both = http.post("/api/jobs", json={
            "main": "tiny.blend", "files": files, "options": {"frames": "1-3"},
            "estimate_on_farm": True, "estimate": {"core_hours": 1, "core_hours_range": [1, 1]}})
        assert both.status_code == 422 and "not both" in both.text


def test_the_add_ons_estimate_button_asks_the_farm(
        farm: ServiceProc, scene: tuple[str, dict[str, str]],
        estimated: dict[str, Any]) -> None:
    """The add-on's Estimate (beside Submit): pack, upload what the farm lacks, `POST
    /api/estimate` with the panel's options, and the panel's lines (its code without bpy)."""
    from wanhe.addon.wanhe_farm.farm import Farm
    from wanhe.addon.wanhe_farm.submit import SubmitRequest, estimate, estimate_lines

    token, _ = scene
    steps: list[str] = []
    answer = estimate(Farm(farm.url, token),
                      SubmitRequest(blend=str(farm.home / "tiny.blend"), name="",
                                    options={"frames": "1-3"}),
                      lambda text, fraction: steps.append(text))
    assert "packing the scene" in steps and "the farm probes the scene" in steps
    assert answer["frames"] == 3 and answer["probe"]["cached"]  # the same probe as the API's
    assert answer["core_hours"] == pytest.approx(estimated["core_hours"], rel=0.01)
    lines = estimate_lines(answer)
    low, high = answer["core_hours_range"]
    assert lines[0] == (f"{answer['core_hours']:.3g} core-hours ({low:.3g}–{high:.3g}) "
                        "for 3 frame(s)")
    assert lines[1].startswith("about ") and "on 1 machine(s)" in lines[1]
    assert "the project has no core-hour budget" in lines
    assert lines[-1] == "from the farm's earlier probe of this scene"


def test_an_estimate_past_its_time_limit_is_504_saying_what_to_do(
        farm: ServiceProc, scene: tuple[str, dict[str, str]]) -> None:
    token, files = scene
    # samples 3: a spec not probed yet (nothing cached), so Blender must render; 50 ms is
    # less than Blender takes to start on any machine (1 s was not, once Blender started
    # sooner on a quiet one)
    body = {"main": "tiny.blend", "files": files, "options": {"frames": "1-3", "samples": 3},
            "timeout_s": 0.05}
    with farm.client(token) as http:
        r = http.post("/api/estimate", json=body, timeout=300)
        assert r.status_code == 504, r.text
        detail = r.json()["detail"]
        assert detail == ("the estimate's probe ran past its 0.05 s limit and was stopped — "
                          "estimate fewer frames, or with `wanhe estimate` on your own machine")
        # the service goes on: the same request with time enough answers
        again = http.post("/api/estimate", json={**body, "timeout_s": 280}, timeout=300)
        assert again.status_code == 200, again.text
