"""How `make test` shares the suite among pytest-xdist workers (`-n N --dist loadgroup`).

Each module runs whole on one worker, so its module-scoped fixtures (a farm service, say) start
once. The heavy modules — those that render, start Ray, a farm service or a browser — run on at
most HEAVY_LANES workers at once (2 cores here), one module after another on each, while the
light modules fill the other workers. A worker that holds a heavy module takes the next one when
it is nearly done, the longest first: the lanes fill as they go and end together. (A fixed split
made beforehand from test counts left one lane ~100 s longer than the other: one test may render
for a minute, another for a second.)

Only a worker sees the tests' marks; only the controller schedules, and it sees test ids alone.
So each worker writes the heavy modules it found (all find the same) to a file named by the
run's id, and the controller's scheduler reads it once every worker has collected. xdist's own
`xdist_group` marks are not used: xdist 3.8 groups by rewriting a test id that pytest 9.2
no longer reads (the groups were silently ignored).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import pytest

# WANHE_TEST_HEAVY_LANES: more lanes for a machine with more cores (make test sets it)
HEAVY_LANES = int(os.environ.get("WANHE_TEST_HEAVY_LANES", "2"))
HEAVY_FIXTURES = {"ray_local"}
HEAVY_MARKS = ("slow", "browser")
# Seconds the longest heavy modules took (make test's durations, 2026-12-07, under load), so a
# lane starts them first and no minute-long module is left for the end. Only the order depends
# on them: a module not named here weighs what its tests count (a heavy test 10, another 1).
MEASURED_S = {
    "tests/ai/test_service_gen_e2e.py": 285, "tests/blender/test_border_exact.py": 210,
    "tests/publish/test_kitsu.py": 160, "tests/api/test_dashboard.py": 135,
    "tests/engine/test_worker_loss.py": 135, "tests/test_cli_render.py": 185,
    "tests/samplecount/test_cli_quality.py": 120, "tests/api/test_estimate.py": 115,
    "tests/engine/test_render_exact.py": 95, "tests/story/test_farm_e2e.py": 95,
    "tests/openjd/test_farm.py": 85, "tests/sandbox/test_attacks.py": 85,
    "tests/api/test_service_e2e.py": 85, "tests/openjd/test_samples.py": 80,
    "tests/samplecount/test_sample_chunks.py": 80, "tests/cli/test_estimate.py": 80,
    "tests/api/test_serve_signals.py": 75, "tests/addon/test_roundtrip.py": 70,
    "tests/engine/test_cluster_faults.py": 75, "tests/engine/test_dispatcher_sync.py": 60,
    "tests/engine/test_service_crash.py": 55, "tests/api/test_conform_farm.py": 55,
    "tests/api/test_dashboard_gen.py": 55, "tests/engine/test_handles.py": 50,
    "tests/test_openjd_export.py": 70, "tests/story/test_reel_e2e.py": 65,
}


def lanes_file(run_id: str) -> Path:
    return Path(tempfile.gettempdir()) / f"wanhe-test-lanes-{run_id}.json"


def is_heavy(item: pytest.Item) -> bool:
    return (any(item.get_closest_marker(mark) is not None for mark in HEAVY_MARKS)
            or not HEAVY_FIXTURES.isdisjoint(getattr(item, "fixturenames", ())))


def module_of(nodeid: str) -> str:
    return nodeid.split("::", 1)[0]


def heavy_modules(items: list[pytest.Item]) -> dict[str, float]:
    """{heavy module: its weight}, the weight as MEASURED_S says, else rough (its heavy tests
    count ten, the rest one: all that collection knows)."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(module_of(item.nodeid), []).append(item)
    return {module: MEASURED_S.get(module, sum(10 if is_heavy(i) else 1 for i in members))
            for module, members in modules.items() if any(map(is_heavy, members))}


def next_unit(queue: Iterable[str], heavy: dict[str, float], *, holds_heavy: bool,
              others_holding_heavy: int, lanes: int = HEAVY_LANES) -> str | None:
    """The module a worker runs next, of those not started yet (`queue`, in xdist's order): the
    heaviest heavy one where the worker already holds a heavy module (its lane goes on) or fewer
    than `lanes` other workers hold one; else the first light one; None: nothing it may take."""
    waiting = list(queue)
    if holds_heavy or others_holding_heavy < lanes:
        heavies = [m for m in waiting if m in heavy]
        if heavies:
            return max(heavies, key=lambda m: (heavy[m], m))
    return next((m for m in waiting if m not in heavy), None)


def write_lanes(config: pytest.Config, items: list[pytest.Item]) -> None:
    """On a worker of a `--dist loadgroup` run: the heavy modules, for the controller."""
    workerinput: dict[str, Any] | None = getattr(config, "workerinput", None)
    if workerinput is None or not config.getoption("loadgroup", False):
        return
    target = lanes_file(str(workerinput["testrunuid"]))
    part = target.with_name(f"{target.name}.{os.getpid()}")
    part.write_text(json.dumps(heavy_modules(items)))
    part.replace(target)  # whole or not at all: several workers write the same content


def make_scheduler(config: pytest.Config, log: Any) -> Any:
    """The controller's scheduler for `--dist loadgroup`: xdist's by-module scheduling, with
    at most HEAVY_LANES workers holding heavy modules at once (next_unit).

    A worker runs a test only once it knows the next (or is told to stop), so one with its last
    test pending must be given more or it waits: a worker that holds a heavy module always may
    take the next heavy one (it runs after the current one, on the same worker), and a light
    worker that may take nothing keeps its last test until the run ends (it then runs)."""
    from xdist.scheduler import LoadScopeScheduling

    class LaneScheduling(LoadScopeScheduling):  # type: ignore[misc]
        _heavy: dict[str, float] | None = None

        def _heavy_modules(self) -> dict[str, float]:
            if self._heavy is None:  # read once every worker has collected (schedule time)
                path = lanes_file(str(config.getoption("testrunuid")))
                self._heavy = json.loads(path.read_text()) if path.exists() else {}
            return self._heavy

        def _split_scope(self, nodeid: str) -> str:
            return module_of(nodeid)

        def _holds_heavy(self, node: Any) -> bool:
            heavy = self._heavy_modules()
            return any(scope in heavy and not all(unit.values())
                       for scope, unit in self.assigned_work.get(node, {}).items())

        def _assign_work_unit(self, node: Any) -> None:
            others = sum(1 for n in self.assigned_work if n is not node and self._holds_heavy(n))
            scope = next_unit(self.workqueue, self._heavy_modules(),
                              holds_heavy=self._holds_heavy(node), others_holding_heavy=others)
            if scope is None:
                return
            work_unit = self.workqueue.pop(scope)
            self.assigned_work.setdefault(node, {})[scope] = work_unit
            collection = self.registered_collections[node]
            node.send_runtest_some([collection.index(nodeid)
                                    for nodeid, done in work_unit.items() if not done])

    return LaneScheduling(config, log)
