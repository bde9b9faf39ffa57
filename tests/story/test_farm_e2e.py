"""A story reel on the farm, end to end: `wanhe submit story.yaml` against a real `wanhe
serve` (embedded Ray, real dispatcher, SQLite), the storyboard and its image uploaded by
content, voices (espeak-ng), a dub, the clip, the tracks and the reel made on the pool; the
job's detail and the dashboard (Debian's chromium through Playwright) show its shots in order,
the reel with a language switch and the line that overran."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api._service import ServiceProc, make_project, run_cli, wait_for
from tests.story.conftest import BASE, write

pytestmark = [pytest.mark.slow, pytest.mark.browser, pytest.mark.timeout(420)]
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProc]:
    home = tmp_path_factory.mktemp("serve")
    svc = ServiceProc(home, f"sqlite:///{home / 'wanhe.db'}", 0, workers=2,
                      num_cpus=2)
    svc.start()
    try:
        yield svc
    finally:
        svc.kill()


def _story(folder: Path) -> Path:
    board: dict[str, Any] = json.loads(json.dumps(BASE))
    shot = board["scenes"][0]["shots"][0]
    shot["image"]["camera"] = {"end_zoom": 1.3}
    shot["lines"].append({"character": "Mei", "text": "Yes.", "translations": {
        "cmn": "是的，我们现在就要出发，马上就走，不要再等了。"}})  # far longer: overruns
    board["scenes"][0]["shots"].append({"id": "s2", "duration": 1.0,
                                        "image": {"path": "board.png"}})
    return write(folder, board)


def test_a_story_reel_on_the_farm(service: ServiceProc, tmp_path: Path) -> None:
    story = _story(tmp_path / "film")
    token = make_project(service.db_url, "films")
    sent = json.loads(run_cli(service, token, "submit", str(story), "--json"))
    assert sent["files"] == 2 and sent["uploaded_files"] == 2
    with service.client(token) as http:
        job = wait_for(lambda: (j := http.get(f"/api/jobs/{sent['id']}").json())["state"]
                       in ("done", "failed") and j, 300, "the story job to finish")
        assert job["state"] == "done", job["message"]
        assert job["kind"] == "story"
        view = job["story"]
        assert [s["id"] for s in view["shots"]] == ["s1", "s2"]
        assert {s["state"] for s in view["shots"]} == {"done"}
        assert view["languages"] == ["en", "cmn"]
        assert "s1.2" in [o["line"] for o in view["overruns"]]
        assert view["core_hours_by_kind"]["voice"] > 0
        reel = http.get(view["reel_url"])
        assert reel.status_code == 200
        (tmp_path / "reel.mp4").write_bytes(reel.content)
        paths = {o["path"] for o in job["outputs"]}
        assert {"reel.mp4", "reel.otio", "report.json", "subtitles/cmn.srt",
                "subtitles/en.vtt", "audio/cmn.m4a", "shots/s1.mp4"} <= paths
        labels = {t["label"] for t in http.get(f"/api/jobs/{sent['id']}/tasks").json()}
        assert {"voice of line s1.1 (cmn)", "dub of line s1.2 (cmn)", "the reel"} <= labels
    import av

    with av.open(str(tmp_path / "reel.mp4")) as mp4:
        assert [s.type for s in mp4.streams] == ["video", "audio", "audio"]
    if CHROMIUM.exists():
        _dashboard(service, token, sent["id"])


def test_the_example_storyboards_cut_is_the_same_here_and_on_the_farm(
        service: ServiceProc, tmp_path: Path) -> None:
    """examples/story/story.yaml (Piper and espeak-ng voices, English, Mandarin, Spanish) on
    the farm and with `wanhe story render` here, each with a cold cache of its own: the same
    cut, frame for frame — shot starts and lengths and every line's place in every language.
    The rig shot is a still here (the cut is the voices' timing; the Blender shot and its lip
    sync are test_reel_e2e's)."""
    pytest.importorskip("piper")
    import importlib.util

    import yaml

    spec = importlib.util.spec_from_file_location(
        "make_story", Path(__file__).resolve().parents[2] / "examples" / "make_story.py")
    assert spec is not None and spec.loader is not None
    make_story = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(make_story)
    story = make_story.build(tmp_path / "film", size=(64, 48), fps=12)
    board = yaml.safe_load(story.read_text(encoding="utf-8"))
    for scene in board["scenes"]:
        for shot in scene["shots"]:
            if "blender" in shot:
                del shot["blender"]
                shot.pop("lipsync_languages", None)
                shot["image"] = {"path": "boards/market.png"}
    story.write_text(yaml.safe_dump(board, allow_unicode=True, sort_keys=False),
                     encoding="utf-8")
    token = make_project(service.db_url, "example-cut")
    sent = json.loads(run_cli(service, token, "submit", str(story), "--json"))
    with service.client(token) as http:
        job = wait_for(lambda: (j := http.get(f"/api/jobs/{sent['id']}").json())["state"]
                       in ("done", "failed") and j, 300, "the example's story job to finish")
        assert job["state"] == "done", job["message"]
        report_url = next(o["url"] for o in job["outputs"] if o["path"] == "report.json")
        farm_report = http.get(report_url).json()
    assert farm_report["languages"] == ["en", "cmn", "es"]

    from wanhe.config import Settings
    from wanhe.runs.story import render_story

    local = render_story(story, tmp_path / "local", settings=Settings(home=tmp_path / "home"),
                         workers=2)
    assert local.job.state.value == "done", local.job.message
    mine = json.loads((tmp_path / "local" / "report.json").read_text())
    fps = mine["fps"]

    def cut(report: dict[str, Any]) -> Any:
        return ([(s["id"], round(s["start_s"] * fps), round(s["duration_s"] * fps))
                 for s in report["shots"]],
                {lang: [(p["line"], round(p["start"] * fps), round(p["end"] * fps))
                        for p in lines] for lang, lines in report["lines"].items()})

    assert cut(mine) == cut(farm_report)
    assert mine["duration_s"] == pytest.approx(farm_report["duration_s"], abs=1e-6)


def _dashboard(service: ServiceProc, token: str, job_id: int) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM),
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.set_default_timeout(20_000)
            page.goto(f"{service.url}/#/login")
            page.fill("#token", token)
            page.click("#sign-in")
            page.wait_for_selector("#jobs-table")
            page.goto(f"{service.url}/#/jobs/{job_id}")
            page.wait_for_selector("#story-video")
            shots = page.locator("#story-shots .story-shot")
            assert shots.count() == 2
            assert shots.nth(0).get_attribute("data-shot") == "s1"
            assert page.locator("#story-lang option").count() == 2
            page.select_option("#story-lang", "cmn")
            page.wait_for_function("document.querySelector('#story-video track')?.srclang"
                                   " === 'cmn'")
            assert "s1.2" in page.inner_text("#story-overruns")
            assert not errors, errors
            shots_dir = os.environ.get("WANHE_SCREENSHOTS")  # docs/screenshots to refresh
            if shots_dir:
                page.set_viewport_size({"width": 1280, "height": 800})
                page.locator("#story-panel").screenshot(path=f"{shots_dir}/story.png")
        finally:
            browser.close()
