"""How `make test` shares the suite among pytest-xdist workers (`-n N --dist loadgroup`).

Each module runs whole on one worker, so its module-scoped fixtures (a farm service, say) start
once. The heavy modules — those that render, start Ray, a farm service or a browser — are dealt
into HEAVY_LANES lanes, each lane run module after module on one worker: at most HEAVY_LANES of
them load the machine at once (2 cores here), while the light modules fill the other workers.

Only a worker sees the tests' marks; only the controller schedules, and it sees test ids alone.
So each worker writes the lanes it worked out (all work out the same) to a file named by the
run's id, and the controller's scheduler reads it once every worker has collected. xdist's own
`xdist_group` marks are not used: xdist 3.8 groups by rewriting a test id that pytest 9.2
no longer reads (the groups were silently ignored).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any

import pytest

# WANHE_TEST_HEAVY_LANES: more lanes for a machine with more cores (make test sets it)
HEAVY_LANES = int(os.environ.get("WANHE_TEST_HEAVY_LANES", "2"))
HEAVY_FIXTURES = {"ray_local"}
HEAVY_MARKS = ("slow", "browser")


def lanes_file(run_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"wanhe-test-lanes-{run_id}.json"


def is_heavy(item: pytest.Item) -> bool:
    return (any(item.get_closest_marker(mark) is not None for mark in HEAVY_MARKS)
            or not HEAVY_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())))


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def heavy_lanes(items: list[pytest.Item], count: int = HEAVY_LANES) -> dict[str, str]:
    """{heavy module: its lane}. A module's weight is rough (its heavy tests count ten, the rest
    one: all that collection knows); the heaviest first, each to the lightest lane so far."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(module_of(item.nodeid), []).append(item)
    weights = {module: sum(10 if is_heavy(i) else 1 for i in members)
               for module, members in modules.items() if any(map(is_heavy, members))}
    load = [0] * count
    lanes: dict[str, str] = {}
    for module in sorted(weights, key=lambda m: (-weights[m], m)):
        lane = load.index(min(load))
        lanes[module] = f"heavy-lane-{lane}"
        load[lane] += weights[module]
    return lanes


def write_lanes(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker of a `--dist loadgroup` run: the lanes, for the controller."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is None or not config.getoption("loadgroup", False):
        return
    target = lanes_file(str(workerinput["testrunuid"]))
    part = target.with_name(f"{target.name}.{os.getpid()}")
    part.write_text(json.dumps(heavy_lanes(items)))
    part.replace(target)  # whole or not at all: several workers write the same content


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The controller's scheduler for `--dist loadgroup`: xdist's by-module scheduling, with
    the heavy modules of one lane as one unit of work."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):  # type: ignore[misc]
        _lanes: dict[str, str] | None = None

        def _split_scope(self, nodeid: str) -> str:
            if self._lanes is None:  # read once every worker has collected (schedule time)
                path = lanes_file(str(config.getoption("testrunuid")))
                self._lanes = json.loads(path.read_text()) if path.exists() else {}
            module = module_of(nodeid)
            return self._lanes.get(module, module)

    return LaneScheduling(config, log)
