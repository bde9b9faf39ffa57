"""Sample chunks: disjoint, complete, and bad counts refused with the fix."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanhe.plan.samples import SampleChunkError, plan_sample_chunks


@given(st.integers(1, 5000), st.integers(1, 64))
def test_chunks_cover_samples_exactly_once(samples: int, chunks: int) -> None:
    if chunks > samples:
        return
    plan = plan_sample_chunks(samples, chunks)
    covered = [s for c in plan for s in range(c.offset, c.offset + c.length)]
    assert covered == list(range(samples))
    assert max(c.length for c in plan) - min(c.length for c in plan) <= 1


@pytest.mark.parametrize(("samples", "chunks", "message"), [
    (16, 0, "at least 1"), (4, 5, "at most 4"), (0, 1, "at least 1"),
])
def test_impossible_chunk_counts(samples: int, chunks: int, message: str) -> None:
    with pytest.raises(SampleChunkError, match=message):
        plan_sample_chunks(samples, chunks)
