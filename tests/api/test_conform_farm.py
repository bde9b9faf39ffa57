"""The conform job on a real `wanhe serve` (embedded Ray, one worker; this machine runs as
root, so ffmpeg runs in the job's sandbox as the project's user): `wanhe submit --kind
conform --options FILE` uploads the frames the options name and queues it, the worker's
ffmpeg makes the deliverable (downloaded and checked with ffprobe), and `wanhe jobs`, `wanhe
job`, `wanhe report` and the API show it. Bad options are one line (CLI, exit 2) or a 422 at
the field (API). The dashboard's job page is made of the job type's panels: the conform job
plays its deliverable and shows no frames, heatmap or last frame; an OpenJD job (no frames
either) shows its steps and no render panel.

One farm for the module (about 10 s to start on this machine): that is why it is slow."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from tests.api._service import ServiceProc, make_project, run_cli, running_farm, wait_for
from tests.openjd._util import step, template
from wanhe.cli import app

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def farm() -> Iterator[ServiceProc]:
    with running_farm("wanhe-conform-", workers=1, num_cpus=2) as svc:
        yield svc


@pytest.fixture(scope="module")
def token(farm: ServiceProc) -> str:
    return make_project(farm.db_url, "editorial")


def _options(folder: Path, **extra: Any) -> Path:
    """Eight tiny frames and the options that conform them."""
    render = folder / "render"
    render.mkdir(parents=True, exist_ok=True)
    for n in range(1, 9):
        pixels = np.zeros((48, 64, 3), np.uint8)
        pixels[:, :, 1] = n * 30
        Image.fromarray(pixels).save(render / f"frame_{n:04d}.png")
    options = folder / "conform.yaml"
    options.write_text(json.dumps({"frames": "render/frame_####.png", "fps": 8,
                                   "burn_in": True, "name": "review", **extra}))
    return options


def _done(farm: ServiceProc, token: str, job_id: int) -> dict[str, Any]:
    with farm.client(token) as http:
        job: dict[str, Any] = wait_for(
            lambda: (j := http.get(f"/api/jobs/{job_id}").json())["state"]
            in ("done", "failed", "cancelled") and j, 120, f"job {job_id} to end")
    return job


@pytest.fixture(scope="module")
def conformed(farm: ServiceProc, token: str, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, Any]:
    options = _options(tmp_path_factory.mktemp("conform"))
    sent = json.loads(run_cli(farm, token, "submit", "--kind", "conform", "--options",
                              str(options), "--name", "sh010 review", "--json"))
    assert sent["kind"] == "conform" and sent["files"] == 8
    job = _done(farm, token, sent["id"])
    assert job["state"] == "done", job["message"]
    return job


def test_the_deliverable_is_the_movie_the_options_ask_for(
        farm: ServiceProc, token: str, conformed: dict[str, Any], tmp_path: Path) -> None:
    assert conformed["kind"] == "conform"
    assert conformed["panels"] == ["deliverable"]
    assert conformed["frames"] == []
    assert "h264 8 fps" in conformed["summary"] and "burn-in" in conformed["summary"]
    [movie] = conformed["deliverables"]
    assert movie["path"] == "review.mp4"
    with farm.client(token) as http:
        body = http.get(movie["url"])
    assert body.status_code == 200
    (tmp_path / "review.mp4").write_bytes(body.content)
    probe = json.loads(subprocess.run(
        ["ffprobe", "-v", "error", "-count_frames", "-show_entries",
         "stream=codec_name,r_frame_rate,nb_read_frames", "-of", "json",
         str(tmp_path / "review.mp4")], capture_output=True, text=True, check=True,
        timeout=60).stdout)["streams"]
    assert probe == [{"codec_name": "h264", "r_frame_rate": "8/1", "nb_read_frames": "8"}]


def test_the_cli_lists_and_reports_the_conform_job(
        farm: ServiceProc, token: str, conformed: dict[str, Any]) -> None:
    jobs = run_cli(farm, token, "jobs")
    assert "conform" in jobs
    shown = " ".join(run_cli(farm, token, "job", str(conformed["id"])).replace("│", " ")
                     .split())
    assert "deliverable review.mp4" in shown and "makes h264 8 fps" in shown
    assert " frames 0/0" not in shown  # no frame count for a kind without frames
    report = json.loads(run_cli(farm, token, "report", "--json"))
    assert "conform" in {row["kind"] for row in report["kinds"]}


def test_the_job_types_publish_the_conform_schema_and_panels(
        farm: ServiceProc, token: str) -> None:
    with farm.client(token) as http:
        kinds = {row["kind"]: row for row in http.get("/api/job-types").json()}
    schema = kinds["conform"]["options_schema"]
    assert schema["properties"]["codec"]["enum"] == ["prores_hq", "h264"]
    assert kinds["conform"]["panels"] == ["deliverable"]
    assert kinds["story"]["panels"] == ["reel"]
    assert "frames" in kinds["blender_render"]["panels"]


def test_bad_options_are_one_line_or_a_422_at_the_field(
        farm: ServiceProc, token: str, tmp_path: Path) -> None:
    options = _options(tmp_path, codec="dnxhd")
    result = CliRunner().invoke(app, ["submit", "--kind", "conform", "--options", str(options)],
                                env={"WANHE_SERVER": farm.url, "WANHE_TOKEN": token})
    assert result.exit_code == 2
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "options.codec" in lines[0], result.output
    result = CliRunner().invoke(app, ["submit", "--kind", "nosuch", "--options", str(options)],
                                env={"WANHE_SERVER": farm.url, "WANHE_TOKEN": token})
    assert result.exit_code == 2 and "runs no 'nosuch' jobs" in result.output
    with farm.client(token) as http:
        refused = http.post("/api/jobs", json={"kind": "conform", "options": {
            "frames": "render/frame_####.png", "fps": -1}})
        outside = http.post("/api/jobs", json={"kind": "conform", "options": {
            "frames": "../../frame_####.png"}})
    assert refused.status_code == 422
    assert refused.json()["detail"][0]["loc"] == ["body", "options", "fps"]
    assert outside.status_code == 422
    assert "outside this job's files" in outside.json()["detail"][0]["msg"]


@pytest.mark.browser
def test_the_job_page_shows_only_the_panels_of_its_kind(
        farm: ServiceProc, token: str, conformed: dict[str, Any]) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is missing: make test installs it")
    with farm.client(token) as http:
        made = http.post("/api/jobs", json={"kind": "openjd", "name": "steps", "options": {
            "template": template(steps=[step("Sim", "echo sim")])}})
        assert made.status_code == 201, made.text
    steps = _done(farm, token, made.json()["id"])
    assert steps["state"] == "done", steps["message"]
    render_panels = ("#frames-panel", "#heat-panel", "#latest-panel", "#video-panel")
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{farm.url}/#/login")
            page.fill("#token", token)
            page.click("#sign-in")
            page.wait_for_selector("#jobs-table")
            page.wait_for_selector("#jobs-table .job-kind")
            listed = page.inner_text("#jobs-table")
            page.goto(f"{farm.url}/#/jobs/{conformed['id']}")
            page.wait_for_function(  # the deliverable decodes and plays in the page
                "document.querySelector('#deliverable-video')?.readyState >= 2")
            assert page.get_attribute("#deliverable-video", "data-path") == "review.mp4"
            conform_missing = [p for p in render_panels if page.locator(p).count()]
            conform_text = page.inner_text("body")
            page.goto(f"{farm.url}/#/jobs/{steps['id']}")
            page.wait_for_selector("#task-list .step-head")
            steps_missing = [p for p in (*render_panels, "#deliverable-panel", "#story-panel")
                             if page.locator(p).count()]
            steps_text = page.inner_text("body")
        finally:
            browser.close()
    assert "sh010 review" in listed and "conform" in listed  # the list says each job's kind
    assert conform_missing == [] and steps_missing == []
    for text in (conform_text, steps_text):
        assert "no frames" not in text.lower() and "Cost heatmap" not in text
    assert not errors, errors
