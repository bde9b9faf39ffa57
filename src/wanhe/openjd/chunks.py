"""Adaptive task chunking (TASK_CHUNKING's `targetRuntimeSeconds`): chunk sizes that grow or
shrink from the measured run times of the step's finished chunks, as Deadline Cloud does.

The task graph is made at submit, so an adaptive step gets as many tasks as its default-sized
chunks ("slots"); which values each slot runs is decided when it runs. A step's ledger (a JSON
file in the job's work folder, under an exclusive `flock`, so every worker of the farm shares
it) holds the values not yet claimed, lane by lane (one lane per combination of the step's
other task parameters), the chunks each slot has claimed, and the finished chunks' totals.

A slot claims the next chunk of the current size; after it ran, the size is re-estimated with
the reference CLI's formula (`openjd run`; the specification's adaptive-chunking algorithm):

    size = target / (duration of the finished tasks / their count)
    with fewer than 10 tasks measured, growth is blended: 0.75 * size_now + 0.25 * size

A slot goes on claiming chunks while the slots that have not started could not cover what is
left at the current size (chunks shrank), and the last slot to start drains the step; a slot
that finds nothing left (chunks grew) ends at once. A retried slot first gives back the chunks
its failed attempt claimed and did not finish.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import math
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

BLEND_BELOW = 10  # tasks measured before a growing estimate is taken whole


@dataclass(frozen=True, slots=True)
class Adaptive:
    """An adaptive step's chunking, as the task payload carries it."""

    param: str
    default: int
    target_s: float
    contiguous: bool
    slots: int

    def to_json(self) -> dict[str, Any]:
        return {"param": self.param, "default": self.default, "target_s": self.target_s,
                "contiguous": self.contiguous, "slots": self.slots}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Adaptive:
        return cls(str(data["param"]), int(data["default"]), float(data["target_s"]),
                   bool(data["contiguous"]), int(data["slots"]))


@dataclass(frozen=True, slots=True)
class Claim:
    """One chunk a slot runs: the task's parameter values (the chunk as a range expression)."""

    lane: int
    values: list[int]
    params: dict[str, dict[str, Any]]

    @property
    def text(self) -> str:
        return " ".join(f"{k}={v['value']}" for k, v in self.params.items())


def next_size(current: int, count: int, duration_s: float, target_s: float) -> int | None:
    """The next chunk size from `count` finished tasks taking `duration_s` in all, or None
    while nothing measurable has finished (the reference CLI's formula)."""
    if count <= 0 or duration_s <= 0.0 or not math.isfinite(duration_s):
        return None
    estimate = target_s / (duration_s / count)
    if count < BLEND_BELOW and estimate > current:
        estimate = 0.75 * current + 0.25 * estimate
    return max(int(estimate), 1)


def range_text(values: list[int], contiguous: bool = False) -> str:
    """A chunk as OpenJD writes one: always `a-b` when contiguous (`1-1` for one value), else
    `a-b` runs of consecutive values and single values, comma separated."""
    if contiguous:
        return f"{values[0]}-{values[-1]}"
    parts: list[str] = []
    start = prev = values[0]
    for v in values[1:]:
        if v == prev + 1:
            prev = v
            continue
        parts.append(f"{start}-{prev}" if prev != start else str(start))
        start = prev = v
    parts.append(f"{start}-{prev}" if prev != start else str(start))
    return ",".join(parts)


def take(remaining: list[int], size: int, contiguous: bool) -> list[int]:
    """The next chunk of at most `size` values: consecutive integers only when contiguous."""
    if not contiguous:
        return remaining[:size]
    chunk = remaining[:1]
    for v in remaining[1:size]:
        if v != chunk[-1] + 1:
            break
        chunk.append(v)
    return chunk


def lanes(step: Any, param: str) -> list[dict[str, Any]]:
    """The step's lanes: for each combination of its other task parameters (in the order
    openjd-model iterates them), the chunked parameter's values."""
    from openjd.model import IntRangeExpr, StepParameterSpaceIterator

    found: dict[str, dict[str, Any]] = {}
    space = StepParameterSpaceIterator(space=step.parameterSpace, chunks_task_count_override=1)
    for params in space:
        others = {k: {"type": v.type.value, "value": str(v.value)}
                  for k, v in params.items() if k != param}
        key = json.dumps(others, sort_keys=True)
        lane = found.setdefault(key, {"others": others, "remaining": []})
        lane["remaining"].extend(IntRangeExpr.from_str(str(params[param].value)))
    return list(found.values())


class Ledger:
    """An adaptive step's shared state (see the module's doc); every method takes the lock."""

    def __init__(self, path: Path, chunking: Adaptive) -> None:
        self.path = path
        self.chunking = chunking

    @contextlib.contextmanager
    def _locked(self, make: Any) -> Iterator[dict[str, Any]]:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        lock = self.path.with_name(self.path.name + ".lock")
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            if self.path.exists():
                state = json.loads(self.path.read_text())
            else:
                state = {"lanes": make(), "size": self.chunking.default, "count": 0,
                         "duration_s": 0.0, "claims": {}, "started": []}
            yield state
            tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}")
            tmp.write_text(json.dumps(state))
            os.replace(tmp, self.path)
        finally:
            os.close(fd)

    def begin(self, slot: str, make: Any) -> None:
        """A slot's attempt starts: what an earlier attempt claimed and did not finish goes
        back to the front of its lane."""
        with self._locked(make) as state:
            for claim in reversed(state["claims"].pop(slot, [])):
                lane = state["lanes"][claim["lane"]]
                lane["remaining"] = _merge(claim["values"], lane["remaining"])
            if slot not in state["started"]:
                state["started"].append(slot)

    def claim(self, slot: str, make: Any, first: bool) -> Claim | None:
        """The slot's next chunk, or None: nothing left, or (after its first chunk) enough
        unstarted slots to cover what is left at the current size."""
        with self._locked(make) as state:
            left = sum(len(lane["remaining"]) for lane in state["lanes"])
            if left == 0:
                return None
            unstarted = max(0, self.chunking.slots - len(state["started"]))
            if not first and unstarted * int(state["size"]) >= left:
                return None
            for index, lane in enumerate(state["lanes"]):
                if lane["remaining"]:
                    values = take(lane["remaining"], int(state["size"]),
                                  self.chunking.contiguous)
                    lane["remaining"] = lane["remaining"][len(values):]
                    state["claims"].setdefault(slot, []).append(
                        {"lane": index, "values": values})
                    text = range_text(values, self.chunking.contiguous)
                    params = {**lane["others"], self.chunking.param: {
                        "type": "CHUNK[INT]", "value": text}}
                    return Claim(index, values, params)
        return None

    def finished(self, slot: str, claim: Claim, wall_s: float) -> tuple[int, int]:
        """A chunk ran: account its time; (the size before, the size now)."""
        with self._locked(list) as state:
            mine = state["claims"].get(slot, [])
            for i, item in enumerate(mine):
                if item["lane"] == claim.lane and item["values"] == claim.values:
                    del mine[i]
                    break
            state["count"] += len(claim.values)
            state["duration_s"] += max(0.0, wall_s)
            before = int(state["size"])
            size = next_size(before, int(state["count"]), float(state["duration_s"]),
                             self.chunking.target_s)
            if size is not None:
                state["size"] = size
            return before, int(state["size"])


def _merge(front: list[int], rest: list[int]) -> list[int]:
    """`front` (given back) before `rest`, without duplicates."""
    seen = set(front)
    return [*front, *(v for v in rest if v not in seen)]


def ledger_path(work: Path, step: str) -> Path:
    import hashlib

    return work / "openjd-chunks" / f"{hashlib.sha256(step.encode()).hexdigest()[:16]}.json"
