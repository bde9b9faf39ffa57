"""Adaptive task chunking's ledger (`wanhe.openjd.chunks`): the size formula is the reference
CLI's, chunks keep OpenJD's shape, and however sizes move every value runs exactly once —
shrinking chunks make the running slots take more, growing ones leave later slots empty, a
retried slot gives back what its failed attempt claimed."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.openjd._reference import reference_python
from wanhe.openjd.chunks import Adaptive, Ledger, next_size, range_text, take


def lanes(values: list[int]) -> list[dict[str, object]]:
    return [{"others": {}, "remaining": list(values)}]


def test_the_size_formula_is_the_reference_clis() -> None:
    cases = [(2, 2, 0.05, 1.0), (17, 19, 0.1, 1.0), (10, 30, 300.0, 20.0), (5, 3, 90.0, 10.0),
             (4, 0, 0.0, 5.0), (1, 12, 1e-9, 60.0)]
    # openjd-cli's own function, in its interpreter (it needs openjd-model 0.13, wanhe 0.14)
    reference = reference_python(
        "import json, sys\n"
        "from openjd.cli._run._local_session._session_manager import (\n"
        "    _calculate_adaptive_chunk_size as size)\n"
        "print(json.dumps([size(current_chunk_size=c, completed_task_count=n,\n"
        "                       completed_task_duration=d, target_runtime_seconds=t)\n"
        "                  for c, n, d, t in json.loads(sys.argv[1])[0]]))\n", cases)
    assert [next_size(*case) for case in cases] == reference


def test_chunks_keep_openjds_shape() -> None:
    assert take([1, 2, 3, 7, 8, 9], 5, contiguous=True) == [1, 2, 3]  # never across a gap
    assert take([1, 2, 3, 7, 8, 9], 5, contiguous=False) == [1, 2, 3, 7, 8]
    assert range_text([4]) == "4" and range_text([4], contiguous=True) == "4-4"
    assert range_text([1, 2, 3]) == "1-3"
    assert range_text([4, 5, 8, 10, 11]) == "4-5,8,10-11"


def run_slots(ledger: Ledger, slots: int, seconds_per_task: float,
              fail_once: str | None = None) -> tuple[list[int], list[list[str]]]:
    """Run every slot in turn as the executor does; (values run in order, chunks per slot)."""
    ran: list[int] = []
    chunks: list[list[str]] = []
    make = lambda: lanes(list(range(1, 41)))  # noqa: E731
    for slot in (str(i) for i in range(slots)):
        mine: list[str] = []
        for attempt in (1, 2):
            ledger.begin(slot, make)
            first = True
            failed = False
            while (claim := ledger.claim(slot, make, first)) is not None:
                first = False
                if slot == fail_once and attempt == 1:
                    failed = True  # the attempt dies mid-chunk: nothing of it counts
                    break
                ran.extend(claim.values)
                mine.append(claim.params["F"]["value"])
                ledger.finished(slot, claim, seconds_per_task * len(claim.values))
            if not failed:
                break
        chunks.append(mine)
    return ran, chunks


@pytest.mark.parametrize("seconds_per_task", [0.01, 5.0])
def test_every_value_runs_once_whether_chunks_grow_or_shrink(
        tmp_path: Path, seconds_per_task: float) -> None:
    chunking = Adaptive("F", default=4, target_s=10.0, contiguous=True, slots=10)
    ran, chunks = run_slots(Ledger(tmp_path / "l.json", chunking), 10, seconds_per_task)
    assert sorted(ran) == list(range(1, 41)) and len(ran) == 40
    sizes = [len(c) for c in chunks]
    if seconds_per_task > 1:  # 5 s a task for a 10 s target: chunks shrink to 2
        assert chunks[0][:2] == ["1-4", "5-6"]
        assert sum(sizes) > 10  # running slots took extra chunks: none was left over
    else:  # chunks grow: the first slots take everything, the last ones run nothing
        assert chunks[-1] == [] and sizes[0] == 1


def test_a_retried_slot_gives_back_what_its_failed_attempt_claimed(tmp_path: Path) -> None:
    chunking = Adaptive("F", default=4, target_s=16.0, contiguous=True, slots=10)
    ran, chunks = run_slots(Ledger(tmp_path / "l.json", chunking), 10, 4.0, fail_once="0")
    assert sorted(ran) == list(range(1, 41)) and len(ran) == 40
    assert chunks[0][0] == "1-4"  # the same chunk, run again by the retry
