"""A video candidate on the generation contact sheet plays in a <video> element (gen.js showed
every candidate as an <img>, a broken image for an MP4), decoded by Debian's chromium; an image
candidate stays an <img>.

The page is the dashboard's own contact-sheet module (`static/js/views/gen.js`) with a real
H.264 file as gen writes it; the server is replaced by Playwright's request routing (a real
video generation job against `wanhe serve` takes minutes here; tests/api/test_dashboard_gen.py
drives the contact sheet against the real service)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from PIL import Image

from tests.api._routed_page import module_page, routed_page, send_file
from wanhe.ai.pipelines import write_mp4

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(120)]  # chromium


def _candidate(index: int, file: str) -> dict[str, Any]:
    return {"index": index, "seed": index, "state": "done", "file": file, "verdict": None,
            "progress": 1.0, "score": {"rank": index + 1, "score": 0.5, "sharpness": 0.5,
                                       "exposure": 0.5, "noise": 0.0, "flags": []}}


def test_video_candidates_play_in_a_video_element(tmp_path: Path, chromium: Any) -> None:
    frames = np.stack([np.full((32, 48, 3), (30, 200, 30), np.uint8)] * 4)
    write_mp4(tmp_path / "c0.mp4", frames, 8, {"seed": 0})
    Image.new("RGB", (48, 32), (200, 30, 30)).save(tmp_path / "c1.png")
    files = {0: tmp_path / "c0.mp4", 1: tmp_path / "c1.png"}
    results = {"state": "done", "note": "", "shots": [{
        "name": "lanterns", "model": "svd", "prompt": "x", "chosen": None,
        "candidates": [_candidate(0, "shot000/c0.mp4"), _candidate(1, "shot000/c1.png")]}]}
    page_html = module_page("import { mount } from '/static/js/views/gen.js';"
                            "mount(document.getElementById('root'), {params: ['7'], toast() {}})"
                            ".then(() => window.ready = 1);")

    def serve(route: Any, path: str) -> bool:
        if path == "/api/gen/7":
            route.fulfill(body=json.dumps(results), content_type="application/json")
        elif path.startswith("/api/gen/7/file/0/"):
            send_file(route, files[int(path.rsplit("/", 1)[1])])
        else:
            return False
        return True

    with routed_page(chromium, page_html, serve) as shown:
        page = shown.page
        page.wait_for_function("document.querySelector('.cand[data-index=\"0\"] video')"
                               "?.readyState >= 2")  # decoded: it plays
        assert page.locator('.cand[data-index="0"] img').count() == 0
        page.wait_for_function("document.querySelector('.cand[data-index=\"1\"] img')"
                               "?.naturalWidth === 48")
        assert not shown.errors, shown.errors
