"""The farm's estimate probes are bounded: with every probe slot taken, a request waits its
turn for a while and is then told to come back (429 with Retry-After), never queued for ever
and never run beside the others; the slots and the time limit come from the environment."""

from __future__ import annotations

import threading
import time

import pytest
from fastapi import HTTPException

from wanhe.api import routes_estimate


@pytest.fixture
def one_slot(monkeypatch: pytest.MonkeyPatch) -> threading.BoundedSemaphore:
    monkeypatch.setattr(routes_estimate, "_slots", threading.BoundedSemaphore(1))
    monkeypatch.setattr(routes_estimate, "WAIT_S", 0.3)
    return routes_estimate.probe_slots()


def test_a_request_with_every_slot_busy_is_told_to_come_back(
        one_slot: threading.BoundedSemaphore) -> None:
    assert one_slot.acquire(timeout=1)  # another project's probe is running
    try:
        started = time.monotonic()
        with pytest.raises(HTTPException) as refused:
            # the slot is checked before anything is read: no service, files or Blender needed
            routes_estimate.estimate_inputs(None, None, None, "x.blend", None, None, None)  # type: ignore[arg-type]
        waited = time.monotonic() - started
    finally:
        one_slot.release()
    assert refused.value.status_code == 429
    assert refused.value.headers == {"Retry-After": "30"}
    assert "busy estimating other renders" in str(refused.value.detail)
    assert 0.25 <= waited < 5  # it waited its turn, then answered


def test_slots_and_the_time_limit_come_from_the_environment(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(routes_estimate, "_slots", None)
    monkeypatch.setenv("WANHE_ESTIMATES", "3")
    monkeypatch.setenv("WANHE_ESTIMATE_TIMEOUT_S", "45")
    slots = routes_estimate.probe_slots()
    assert all(slots.acquire(timeout=0) for _ in range(3)) and not slots.acquire(timeout=0)
    assert routes_estimate.probe_limit_s() == 45.0
    monkeypatch.setenv("WANHE_ESTIMATE_TIMEOUT_S", "soon")  # not a number: the default
    assert routes_estimate.probe_limit_s() == 300.0
