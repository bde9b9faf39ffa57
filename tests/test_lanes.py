"""make test's parallel plan (tests/_lanes.py): heavy modules whole in two lanes of about equal
weight, light modules left to any worker."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests._lanes import heavy_lanes


@dataclass
class FakeItem:
    """What heavy_lanes reads of a collected test: its id, marks and fixtures."""

    nodeid: str
    marks: tuple[str, ...] = ()
    fixturenames: list[str] = field(default_factory=list)

    def get_closest_marker(self, name: str) -> Any:
        return name if name in self.marks else None


def test_heavy_modules_are_dealt_whole_into_two_even_lanes() -> None:
    items = [FakeItem(f"tests/test_big.py::t{i}", ("slow",)) for i in range(4)]
    items += [FakeItem(f"tests/test_mid{m}.py::t{i}", ("slow",)) for m in (1, 2) for i in range(2)]
    items += [FakeItem("tests/test_mid1.py::fast")]  # a light test of a heavy module
    items += [FakeItem("tests/test_ray.py::t", fixturenames=["ray_local"])]
    items += [FakeItem(f"tests/test_light.py::t{i}") for i in range(50)]
    lanes = heavy_lanes(items, 2)  # type: ignore[arg-type]
    assert set(lanes) == {"tests/test_big.py", "tests/test_mid1.py", "tests/test_mid2.py",
                          "tests/test_ray.py"}
    by_lane: dict[str, set[str]] = {}
    for module, lane in lanes.items():
        by_lane.setdefault(lane, set()).add(module)
    assert len(by_lane) == 2
    # weights: big 40 (+ ray 10 later) in one lane, the two middling ones (21 + 20) in the other
    assert {"tests/test_big.py"} <= by_lane[lanes["tests/test_big.py"]]
    assert lanes["tests/test_mid1.py"] == lanes["tests/test_mid2.py"] != lanes["tests/test_big.py"]
