"""A generation spec's estimate on a real `wanhe serve` (real Ray worker, SQLite, the tiny
Stable Diffusion pipeline with random weights): `POST /api/estimate` with `kind: gen` never
loads the model in the API process — the probe runs as a `gen_probe` job of the project on a
worker, then is cached; after a real gen job of the same model and shape the answer comes
from the farm's history; a probe past the request's time limit is 504 saying what to do.

slow: the farm starts Ray, and the worker's probe imports torch and diffusers."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api._service import ServiceProc, make_project, running_farm, wait_done, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
SHOT = {"name": "fox", "model": "sd", "prompt": "a fox", "size": "32x32", "candidates": 3,
        "steps": 4}
SPEC = {"seed": 1, "threads": 1, "score": False, "shots": [SHOT]}


@pytest.fixture(scope="module")
def farm(tiny_sd: Path) -> Iterator[tuple[ServiceProc, str]]:
    from wanhe.ai import catalog
    from wanhe.ai.models import inspect_model
    from wanhe.store.store import Store

    with running_farm("wanhe-estimate-gen-", workers=1, num_cpus=2,
                      extra_env={"HF_HUB_OFFLINE": "1"}) as svc:
        store = Store(svc.db_url)
        try:
            catalog.add_model(store, "sd", inspect_model(tiny_sd))
        finally:
            store.dispose()
        yield svc, make_project(svc.db_url, "board")


def _estimate(svc: ServiceProc, token: str, **body: Any) -> Any:
    with svc.client(token) as http:
        return http.post("/api/estimate", json={"kind": "gen", "options": SPEC, **body},
                         timeout=500)


def _jobs(svc: ServiceProc, token: str, kind: str) -> list[dict[str, Any]]:
    with svc.client(token) as http:
        jobs: list[dict[str, Any]] = http.get("/api/jobs").json()
    return [j for j in jobs if j["kind"] == kind]


def test_the_probe_runs_on_a_worker_then_is_cached(farm: tuple[ServiceProc, str]) -> None:
    svc, token = farm
    r = _estimate(svc, token, machines=2, cores=1, price_core_hour=2, timeout_s=480)
    assert r.status_code == 200, r.text
    data = r.json()
    shot = data["shots"][0]
    assert (data["kind"], data["device"], data["candidates"]) == ("gen", "cpu", 3)
    assert shot["source"] == "probe" and not shot["probe"]["cached"]
    assert shot["probe"]["load_s"] > 0 and data["worker_start_s"] > 0
    assert data["seconds"] == pytest.approx(data["worker_start_s"] + shot["seconds"])
    assert data["cost"] == pytest.approx(2 * data["core_hours"])
    assert data["farm"]["units"] == 2 and data["farm"]["workers"] == 2
    assert data["probe_jobs"] == 1 and data["budget"]["fits"]
    probes = _jobs(svc, token, "gen_probe")
    assert len(probes) == 1 and probes[0]["state"] == "done"
    # the API process never loaded torch: the model was loaded on the worker only
    assert "libtorch" not in _service_modules(svc)
    again = _estimate(svc, token).json()
    assert again["shots"][0]["probe"]["cached"] and again["probe_jobs"] == 0
    assert again["seconds"] == pytest.approx(data["seconds"])
    assert len(_jobs(svc, token, "gen_probe")) == 1


def _service_modules(svc: ServiceProc) -> str:
    """The API process's loaded shared objects and files (its /proc maps)."""
    assert svc.proc is not None
    return Path(f"/proc/{svc.proc.pid}/maps").read_text() if sys.platform == "linux" else ""


def test_after_a_real_run_the_answer_comes_from_history(farm: tuple[ServiceProc, str]) -> None:
    svc, token = farm
    with svc.client(token) as http:
        sent = http.post("/api/jobs", json={"kind": "gen", "options": SPEC})
        assert sent.status_code == 201, sent.text
        job_id = sent.json()["id"]
    wait_done(svc, token, job_id, 400)
    data = _estimate(svc, token).json()
    shot = data["shots"][0]
    assert shot["source"] == "history" and shot["history_runs"] == 1
    assert shot["probe"] is None and data["probe_jobs"] == 0 and data["worker_start_s"] == 0


def test_a_probe_past_the_time_limit_is_504_saying_what_to_do(
        farm: tuple[ServiceProc, str]) -> None:
    svc, token = farm
    other = {**SPEC, "shots": [{**SHOT, "size": "16x16"}]}  # no history, no cached probe
    with svc.client(token) as http:
        r = http.post("/api/estimate", json={"kind": "gen", "options": other, "timeout_s": 0.01},
                      timeout=120)
    assert r.status_code == 504, r.text
    detail = r.json()["detail"]
    assert detail.startswith("the estimate's model probe (job ") and "0.01 s limit" in detail
    assert "ask again with a longer timeout_s" in detail and "wanhe estimate SPEC" in detail
    wait_for(lambda: any(j["state"] == "cancelled" for j in _jobs(svc, token, "gen_probe")),
             60, "the probe job to be cancelled")


def test_bad_gen_estimates_are_one_line(farm: tuple[ServiceProc, str]) -> None:
    svc, token = farm
    for options, says in [({**SPEC, "shots": [{**SHOT, "model": "nope"}]}, "unknown model"),
                          ({**SPEC, "shots": [{**SHOT, "size": "30x30"}]}, "multiple of 8")]:
        r = _estimate(svc, token, options=options)
        assert r.status_code == 422 and says in r.text, r.text
    with svc.client(token) as http:
        r = http.post("/api/jobs", json={"kind": "gen_probe", "options": {"probes": [{}]}})
    assert r.status_code == 422 and "POST /api/estimate" in r.text, r.text
    with svc.client(token) as http:
        kinds = {t["kind"] for t in http.get("/api/job-types").json()}
    assert "gen" in kinds and "gen_probe" not in kinds  # the farm's own: not offered
