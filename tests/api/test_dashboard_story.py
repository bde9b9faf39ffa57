"""The story reel's language switch in a real browser (Debian's chromium through Playwright):
choosing a language whose mouths were lip-synced plays `reel.<lang>.mp4` (before, Mandarin
played `reel.mp4`, English mouths, under the Mandarin audio); a language without its own
picture keeps `reel.mp4`.

The page is the dashboard's own story view module (`static/js/views/story.js`) fed the JSON
`story_view` makes from a finished job's rows, with real MP4/M4A/WebVTT files. The HTTP server
is replaced by Playwright's request routing: a real story job with a lip-synced Blender shot
takes minutes on this machine (tests/story/test_reel_e2e.py makes one, and
tests/story/test_farm_e2e.py drives the whole dashboard against `wanhe serve`)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.api._routed_page import module_page, routed_page, send_file
from wanhe.api.story_view import story_view
from wanhe.model import JobState, Resources, TaskState
from wanhe.store.rows import JobRow, TaskRow

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]  # chromium

BOARD = {"film": {"languages": ["en", "cmn", "yue"]}, "scenes": [{"name": "dock", "shots": [
    {"id": "s1", "image": {"path": "a.png"}, "lines": [{}]},
    {"id": "s2", "blender": {"file": "b.blend"}, "lines": [{}], "lipsync_languages": ["cmn"]},
]}]}
COLOURS = {"reel.mp4": (220, 30, 30), "reel.cmn.mp4": (30, 30, 220)}  # red / blue pictures


def _outputs(out: Path) -> None:
    from wanhe.imaging.reel import write_audio, write_clip

    for name, colour in COLOURS.items():
        frame = np.zeros((32, 48, 3), np.uint8) + np.array(colour, np.uint8)
        write_clip([frame] * 6, 12, out / name)
    for lang in BOARD["film"]["languages"]:
        write_audio(np.zeros(24_000, np.float32), lang, out / "audio" / f"{lang}.m4a")
        (out / "subtitles").mkdir(exist_ok=True)
        (out / "subtitles" / f"{lang}.vtt").write_text(
            f"WEBVTT\n\n00:00.000 --> 00:00.400\nJoe: {lang}\n", encoding="utf-8")


def _view(out: Path) -> dict[str, Any]:
    job = JobRow(1, 1, "film", "story", {"board": BOARD, "output": str(out)}, "", JobState.DONE,
                 50, "u", "", [], "", 0.0, 0.0, 1.0)
    reel = TaskRow(1, 1, "reel", 0, "reel", None, None, None, TaskState.DONE, {}, 1,
                   Resources(), {"seconds": 0.5, "overruns": []}, "", 1.0)

    def url_of(path: str | None) -> str | None:
        return f"/media/{Path(path).relative_to(out)}" if path and Path(path).is_file() \
            else None

    return story_view(job, [reel], url_of)


def test_choosing_a_lip_synced_language_plays_its_own_reel(tmp_path: Path, chromium: Any) -> None:
    _outputs(tmp_path)
    view = _view(tmp_path)
    assert view["reel_urls"] == {"en": "/media/reel.mp4", "cmn": "/media/reel.cmn.mp4",
                                 "yue": "/media/reel.mp4"}
    page_html = module_page(
        "import { storyPanel, mountStory } from '/static/js/views/story.js';"
        "const root = document.getElementById('root'); root.innerHTML = storyPanel();"
        f"mountStory(root).render({json.dumps(view)}).then(() => window.ready = 1);")

    def serve(route: Any, path: str) -> bool:
        if not path.startswith("/media/"):
            return False
        file = (tmp_path / path[len("/media/"):]).resolve()
        if tmp_path.resolve() not in file.parents or not file.is_file():
            route.fulfill(status=404, body="not found")
        else:
            send_file(route, file, default_type="text/vtt")  # not every mime.types knows .vtt
        return True

    def centre_colour(page: Any) -> list[int]:
        return list(page.evaluate("""() => { const v = document.querySelector('#story-video');
            const c = document.createElement('canvas'); c.width = v.videoWidth;
            c.height = v.videoHeight; const g = c.getContext('2d'); g.drawImage(v, 0, 0);
            return Array.from(g.getImageData(c.width / 2, c.height / 2, 1, 1).data)
              .slice(0, 3); }"""))

    with routed_page(chromium, page_html, serve) as shown:
        page = shown.page
        decoded = "document.querySelector('#story-video').readyState >= 2"
        page.wait_for_function(decoded)
        assert page.get_attribute("#story-video", "data-reel") == "/media/reel.mp4"
        red = centre_colour(page)
        page.select_option("#story-lang", "cmn")
        page.wait_for_function("document.querySelector('#story-video track')?.srclang"
                               " === 'cmn'")
        assert page.get_attribute("#story-video", "data-reel") == "/media/reel.cmn.mp4"
        page.wait_for_function(decoded)
        blue = centre_colour(page)
        page.select_option("#story-lang", "yue")  # no own picture: the original's
        page.wait_for_function("document.querySelector('#story-video track')?.srclang"
                               " === 'yue'")
        assert page.get_attribute("#story-video", "data-reel") == "/media/reel.mp4"
        assert not shown.errors, shown.errors
    assert red[0] > 150 > red[2], red  # the picture that played is the chosen language's
    assert blue[2] > 150 > blue[0], blue
