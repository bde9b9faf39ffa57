"""The publish tests' Kitsu: one real Zou server per test session (tests/publish/_zou.py)."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.publish._zou import ZouServer, ZouUnavailable


@pytest.fixture(scope="session")
def zou() -> Iterator[ZouServer]:
    """Zou's API on loopback, with its PostgreSQL and Redis; everything stopped at the end.
    Where Zou cannot run (no python3.11, no redis-server, PyPI out of reach for its first
    install) the tests skip with the reason, and fail in CI."""
    try:
        server = ZouServer()
        server.start()
    except ZouUnavailable as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))
    try:
        yield server
    finally:
        server.stop()
