"""Sample chunks: split one frame's samples into K disjoint ranges rendered on different workers.

Cycles renders a range with `use_sample_subset`, `sample_offset` and `sample_subset_length`;
the chunks merge, weighted by their sample counts, into the full-sample image.
"""

from __future__ import annotations

from dataclasses import dataclass


class SampleChunkError(ValueError):
    """A sample-chunk count that cannot split the frame's samples."""


@dataclass(frozen=True, slots=True)
class SampleChunk:
    index: int
    offset: int
    length: int


def plan_sample_chunks(samples: int, chunks: int) -> list[SampleChunk]:
    """`chunks` disjoint ranges covering samples 0..samples-1 (the first get the extra)."""
    if samples < 1:
        raise SampleChunkError(f"the frame has {samples} samples; it needs at least 1")
    if chunks < 1:
        raise SampleChunkError("--sample-chunks must be at least 1 (1 renders all samples at once)")
    if chunks > samples:
        raise SampleChunkError(
            f"--sample-chunks {chunks} is more than the frame's {samples} samples — "
            f"use at most {samples}, or raise --samples"
        )
    base, extra = divmod(samples, chunks)
    out: list[SampleChunk] = []
    offset = 0
    for i in range(chunks):
        length = base + (1 if i < extra else 0)
        out.append(SampleChunk(i, offset, length))
        offset += length
    return out
