"""The job page's Estimate and Kitsu cells as a wrangler reads them, in Debian's chromium: the
kept estimate against the actual cost with the ETA, and where the job publishes in Kitsu with
its state, its revision and a link to it (to the production while none landed; a failed
publication in red with the reason).

The page is the dashboard's own job view (`static/js/views/job.js`); the server is replaced by
Playwright's request routing with job JSON in the shape `GET /api/jobs/{id}` gives (the real
service's estimate and Kitsu fields are tested in tests/api/test_estimate.py and
tests/publish/test_kitsu.py against a real `wanhe serve`; a finished publication needs a Kitsu
server and a render, minutes here)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.api._routed_page import module_page, routed_page

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]  # chromium

PRODUCTION = "https://kitsu.studio/productions/9f2c/shots"


def _job(state: str, kitsu: dict[str, Any] | None, estimate: dict[str, Any] | None
         ) -> dict[str, Any]:
    return {
        "id": 7, "name": "sh010 lighting", "kind": "blender_render", "state": state,
        "priority": 50, "project": "lionboy", "submitter": "ana", "message": "",
        "created_at": 1_800_000_000.0, "started_at": 1_800_000_010.0,
        "finished_at": None if state == "running" else 1_800_000_130.0,
        "progress": 0.5, "tasks": {"done": 2, "running": 1, "queued": 1}, "core_hours": 0.05,
        "gpu_hours": 0.0, "eta_s": 60.0, "spec": {"width": 640, "height": 360},
        "frames": [], "failures": [], "usage": {}, "gpu_usage": {}, "outputs": [],
        "outputs_listed": True, "warnings": [], "story": None, "panels": [],
        "summary": "", "deliverables": [], "unbilled_core_seconds": 0.0,
        "estimate": estimate, "kitsu": kitsu,
    }


def _publication(state: str, **extra: Any) -> dict[str, Any]:
    return {"job_id": 7, "project_id": 1, "shot": "SQ01/SH010", "task": "Lighting",
            "reel_task": None, "state": state, "tries": 0, "next_at": 0.0, "message": "",
            "comment_id": None, "preview_id": None, "revision": None, "file": None,
            "created_at": 1_800_000_000.0, "published_at": None, "task_id": None,
            "production_url": PRODUCTION, "revision_url": None, **extra}


ESTIMATE = {"core_hours": 0.1, "core_hours_range": [0.08, 0.12], "made_by": "wanhe estimate",
            "actual_core_hours": 0.05, "projected_core_hours": 0.11, "ratio": 1.1,
            "frames_done": 2, "eta_s": 90.0, "text": "on track"}


def _cells(chromium: Any, job: dict[str, Any]) -> dict[str, Any]:
    """What the page shows in the job's Estimate and Kitsu cells."""
    page_html = module_page(
        "import { mount } from '/static/js/views/job.js';"
        "mount(document.getElementById('root'), {params: ['7'], "
        "query: new URLSearchParams(), toast() {}}).then(() => window.ready = 1);")

    def serve(route: Any, path: str) -> bool:
        if path == "/api/jobs/7":
            route.fulfill(body=json.dumps(job), content_type="application/json")
        elif path == "/api/jobs/7/tasks":
            route.fulfill(body="[]", content_type="application/json",
                          headers={"X-Total-Count": "0"})
        else:
            return False
        return True

    with routed_page(chromium, page_html, serve) as shown:
        found: dict[str, Any] = shown.page.evaluate("""() => {
            const cell = (id) => document.getElementById(id);
            const kitsu = cell('job-kitsu'), est = cell('job-estimate');
            return {
              kitsu: kitsu && kitsu.textContent.replace(/\\s+/g, ' ').trim(),
              kitsuClass: kitsu && kitsu.className,
              kitsuTitle: kitsu && kitsu.title,
              link: kitsu && kitsu.querySelector('a') && kitsu.querySelector('a').href,
              estimate: est && est.textContent.replace(/\\s+/g, ' ').trim(),
            };
        }""")
        assert shown.errors == []
    return found


def test_a_published_job_shows_its_revision_and_links_to_it(chromium: Any) -> None:
    revision = "https://kitsu.studio/productions/9f2c/shots/tasks/7a1e/previews/c0de"
    shown = _cells(chromium, _job("done", _publication(
        "published", revision=3, file="frame_0002.png", task_id="7a1e", preview_id="c0de",
        revision_url=revision, message="published frame_0002.png"), None))
    assert shown["kitsu"] == "SQ01/SH010 · Lighting · published · revision 3"
    assert shown["link"] == revision
    assert "bad" not in shown["kitsuClass"]
    assert shown["estimate"] is None  # no estimate kept: no cell


def test_a_failed_publication_is_red_with_its_reason(chromium: Any) -> None:
    reason = "Kitsu has no shot SQ01/SH999 — create it in Kitsu or fix --shot"
    shown = _cells(chromium, _job("done", _publication("failed", tries=1, message=reason), None))
    assert shown["kitsu"] == f"SQ01/SH010 · Lighting · failed: {reason}"
    assert shown["link"] == PRODUCTION  # nothing landed: the production's shots
    assert "bad" in shown["kitsuClass"]


def test_a_reel_published_in_part_names_the_shots_left_out(chromium: Any) -> None:
    message = ("published reel.mp4 to SQ02, 2 clip(s) to their shots; not in Kitsu, left out: "
               "s3 (--create-shots creates them)")
    shown = _cells(chromium, _job("done", _publication("partial", shot="SQ02", task="Animatic",
                                                       revision=1, message=message), None))
    assert shown["kitsu"] == f"SQ02 · Animatic · published in part · revision 1: {message}"
    assert "bad" not in shown["kitsuClass"]


def test_a_running_job_shows_its_estimate_against_the_actual_cost_with_the_eta(
        chromium: Any) -> None:
    shown = _cells(chromium, _job("running", None, ESTIMATE))
    assert shown["kitsu"] is None  # publishes nowhere: no cell
    text = shown["estimate"]
    assert "est." in text and "actual" in text and "projected" in text
    assert "+10 % on done frames" in text and "ETA" in text
