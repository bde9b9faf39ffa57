"""The generation contact sheet in a real browser (Debian's chromium through Playwright)
against `wanhe serve` with a tiny random model: the candidates show as a grid with their
scores, and the keyboard moves the focus and picks or rejects; the API sees the verdicts."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests.api._service import ServiceProc, make_project, wait_for
from wanhe.store.store import Store

pytestmark = [pytest.mark.browser, pytest.mark.slow, pytest.mark.timeout(600)]

CHROMIUM = "/usr/bin/chromium"
playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is missing: make test installs it",
                allow_module_level=True)


def test_contact_sheet_picks_by_keyboard(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    home = tmp_path / "farm"
    db = f"sqlite:///{home / 'wanhe.db'}"
    svc = ServiceProc(home, db, 0, workers=1, num_cpus=2)
    svc.start()
    try:
        store = Store(db)
        admin = store.create_token(None, "admin")
        store.dispose()
        token = make_project(db, "board")
        with svc.client(admin) as c:
            assert c.post("/api/models", json={"name": "sd", "path": str(tiny_models["sd"])}
                          ).status_code == 201
        with svc.client(token) as c:
            r = c.post("/api/jobs", json={"kind": "gen", "options": {"shots": [
                {"model": "sd", "prompt": "a fox", "size": "32x32", "candidates": 3,
                 "steps": 2}]}})
            assert r.status_code == 201, r.text
            job = r.json()["id"]

        def done() -> dict[str, Any] | None:
            with svc.client(token) as c:
                body: dict[str, Any] = c.get(f"/api/gen/{job}").json()
            return body if body["state"] == "done" else None

        wait_for(done, 400, "the generation job")
        with playwright_api.sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM,
                                        args=["--no-sandbox", "--disable-gpu"])
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{svc.url}/#/login")
            page.fill("#token", token)
            page.click("#sign-in")
            page.wait_for_selector("#jobs-table")
            page.goto(f"{svc.url}/#/jobs/{job}")
            page.click("#sheet-link")
            page.wait_for_function(
                "document.querySelectorAll('.cand img[src^=\"blob:\"]').length === 3")
            assert "rank 1" in page.inner_text("#sheet")
            page.keyboard.press("ArrowRight")
            page.keyboard.press("p")
            page.wait_for_selector('.cand[data-index="1"][data-verdict="picked"]')
            page.keyboard.press("ArrowRight")
            page.keyboard.press("x")
            page.wait_for_selector('.cand[data-index="2"][data-verdict="rejected"]')
            browser.close()
        assert not errors, errors
        with svc.client(token) as c:
            body = c.get(f"/api/gen/{job}").json()
        verdicts = [cand["verdict"] for cand in body["shots"][0]["candidates"]]
        assert verdicts == [None, "picked", "rejected"], json.dumps(body)[:500]
        assert body["shots"][0]["chosen"]["index"] == 1
    finally:
        svc.kill()
