"""make test's parallel plan (tests/_lanes.py): heavy modules whole, at most two workers holding
one at a time, the longest first; light modules left to any worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests._lanes import MEASURED_S, heavy_modules, next_unit


@dataclass
class FakeItem:
    """What heavy_modules reads of a collected test: its id, marks and fixtures."""

    nodeid: str
    marks: tuple[str, ...] = ()
    fixturenames: list[str] = field(default_factory=list)

    def get_closest_marker(self, name: str) -> Any:
        return name if name in self.marks else None


def test_heavy_modules_weigh_what_they_took_else_their_test_counts() -> None:
    measured = next(iter(MEASURED_S))
    items = [FakeItem(f"tests/test_big.py::t{i}", ("slow",)) for i in range(4)]
    items += [FakeItem("tests/test_mid.py::t", ("browser",)), FakeItem("tests/test_mid.py::fast")]
    items += [FakeItem("tests/test_ray.py::t", fixturenames=["ray_local"])]
    items += [FakeItem(f"{measured}::t", ("slow",))]
    items += [FakeItem(f"tests/test_light.py::t{i}") for i in range(50)]
    assert heavy_modules(items) == {  # type: ignore[arg-type]
        "tests/test_big.py": 40, "tests/test_mid.py": 11, "tests/test_ray.py": 10,
        measured: MEASURED_S[measured]}


def test_two_lanes_take_the_heaviest_module_next_and_a_third_worker_light_ones() -> None:
    heavy = {"big.py": 40.0, "mid.py": 20.0, "small.py": 10.0}
    queue = ["light1.py", "small.py", "big.py", "light2.py", "mid.py"]
    assert next_unit(queue, heavy, holds_heavy=False, others_holding_heavy=0) == "big.py"
    assert next_unit(queue, heavy, holds_heavy=False, others_holding_heavy=1) == "big.py"
    # two other workers hold heavy modules: this one runs light ones
    assert next_unit(queue, heavy, holds_heavy=False, others_holding_heavy=2) == "light1.py"
    # a lane goes on with its next heavy module whatever the others hold
    assert next_unit(queue, heavy, holds_heavy=True, others_holding_heavy=2) == "big.py"
    # nothing it may take: it waits (its last test runs when the run ends)
    assert next_unit(["mid.py"], heavy, holds_heavy=False, others_holding_heavy=2) is None
    assert next_unit(["light2.py"], heavy, holds_heavy=True, others_holding_heavy=1) == \
        "light2.py"
