"""One dashboard module in Debian's chromium (through Playwright) with the HTTP server replaced
by request routing: the page tests that need the dashboard's JavaScript and a browser's decoders,
not a running `wanhe serve` (a real job behind them takes minutes here).

Importing this module skips the importing test module where Playwright or chromium is missing.
"""

from __future__ import annotations

import mimetypes
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu"]
STATIC = Path(__file__).resolve().parents[2] / "src" / "wanhe" / "api" / "static"
ORIGIN = "http://wanhe.test"

playwright_api = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
if not Path(CHROMIUM).exists():
    pytest.skip("Debian's chromium is missing: make test installs it",
                allow_module_level=True)

# serve(route, path) answers one request the page makes (its path, less the query) and returns
# True, or returns False for the default: the dashboard's static files, else 404
Serve = Callable[[Any, str], bool]


def module_page(script: str) -> str:
    """A page with an empty #root running `script`, a JavaScript module that imports a view
    from /static/js/ and sets `window.ready = 1` once the view has rendered."""
    return f"<!doctype html><body><div id=root></div><script type=module>{script}</script></body>"


@dataclass
class RoutedPage:
    page: Any
    errors: list[str] = field(default_factory=list)  # uncaught errors in the page's scripts


@contextmanager
def browser(args: list[str] = CHROMIUM_ARGS) -> Iterator[Any]:
    """Chromium for a module's page tests (a launch is about a second here, more under load),
    started with `args`."""
    with playwright_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=args)
        try:
            yield b
        finally:
            b.close()


def send_file(route: Any, file: Path, default_type: str = "text/plain") -> None:
    route.fulfill(body=file.read_bytes(),
                  content_type=mimetypes.guess_type(file.name)[0] or default_type)


@contextmanager
def routed_page(chromium: Any, page_html: str, serve: Serve) -> Iterator[RoutedPage]:
    """A new page of `chromium` at ORIGIN showing `page_html`, once its script set
    `window.ready`; closed at the end."""

    def answer(route: Any) -> None:
        path = route.request.url.removeprefix(ORIGIN).split("?")[0]
        if path == "/":
            route.fulfill(body=page_html, content_type="text/html")
        elif serve(route, path):
            pass
        elif path.startswith("/static/") and (STATIC / path[8:]).is_file():
            send_file(route, STATIC / path[8:])
        else:
            route.fulfill(status=404, body='{"detail": "not found"}')

    page = chromium.new_page()
    try:
        page.set_default_timeout(20_000)
        shown = RoutedPage(page)
        page.on("pageerror", lambda e: shown.errors.append(str(e)))
        page.route(f"{ORIGIN}/**", answer)
        page.goto(f"{ORIGIN}/")
        page.wait_for_function("window.ready === 1")
        yield shown
    finally:
        page.close()
