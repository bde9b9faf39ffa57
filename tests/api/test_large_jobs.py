"""A large job on a real `wanhe serve`: its 20,000-task submit does not stall the API (another
request answers promptly while it is stored), and its task list comes in pages with a cursor.

The job is submitted paused, so nothing of it runs; what is measured is the service answering
while the submit's work (template expansion, 20,000 rows inserted) happens on a worker thread.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from tests.api._service import ServiceProc, make_project, running_farm
from tests.openjd._util import step, template

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
TASKS = 20_000


@pytest.fixture(scope="module")
def farm() -> Iterator[ServiceProc]:
    with running_farm("wanhe-large-", workers=1, num_cpus=1) as svc:
        yield svc


def big_template() -> dict[str, Any]:
    frames = {"name": "Frame", "type": "INT", "range": f"1-{TASKS}"}
    return template([step("echo", "echo {{Task.Param.Frame}}", params=[frames])])


def test_a_large_submit_leaves_the_api_answering_and_its_tasks_come_in_pages(
    farm: ServiceProc,
) -> None:
    token = make_project(farm.db_url, "big")
    answer: dict[str, Any] = {}

    def submit() -> None:
        with farm.client(token) as http:
            started = time.monotonic()
            r = http.post("/api/jobs", json={"kind": "openjd", "paused": True,
                                             "options": {"template": big_template()}},
                          timeout=240)
            answer["took"] = time.monotonic() - started
            answer["response"] = r

    sender = threading.Thread(target=submit)
    sender.start()
    latencies: list[float] = []
    with farm.client(token) as http:
        while sender.is_alive():
            started = time.monotonic()
            assert http.get("/api/jobs", params={"limit": 5}).status_code == 200
            latencies.append(time.monotonic() - started)
            time.sleep(0.05)
    sender.join()
    r = answer["response"]
    assert r.status_code == 201, r.text
    print(f"submit of {TASKS} tasks: {answer['took']:.1f} s; {len(latencies)} requests "
          f"meanwhile, slowest {max(latencies):.2f} s")
    assert len(latencies) >= 3  # the submit took a while: the API answered during it
    # and all through it: no request waited for a good part of the submit (a bound relative to
    # the submit, not in seconds: on a loaded machine both take longer)
    stall = max(2.0, answer["took"] / 3)
    assert max(latencies) < stall, f"the API stalled {max(latencies):.1f} s during the submit"

    job = r.json()["id"]
    with farm.client(token) as http:
        first = http.get(f"/api/jobs/{job}/tasks")
        assert first.status_code == 200
        assert len(first.json()) == 1000
        assert int(first.headers["X-Total-Count"]) >= TASKS  # and the session's own task
        keys = [t["key"] for t in first.json()]
        second = http.get(f"/api/jobs/{job}/tasks",
                          params={"after": first.headers["X-Next-After"], "limit": 5000})
        assert len(second.json()) == 5000
        assert not set(keys) & {t["key"] for t in second.json()}  # the next page, no overlap
        last = http.get(f"/api/jobs/{job}/tasks", params={"after": 10**9})
        assert last.json() == [] and "X-Next-After" not in last.headers
        too_many = http.get(f"/api/jobs/{job}/tasks", params={"limit": 100_000})
        assert too_many.status_code == 422 and "5000" in too_many.text
