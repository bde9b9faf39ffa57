"""Frame ranges as users type them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from wanhe.plan.frames import (
    FrameSpecError,
    check_frames_in_scene,
    chunk_frames,
    expand_output_pattern,
    format_frames,
    parse_frames,
)


@pytest.mark.parametrize(
    ("spec", "frames"),
    [
        ("1-5", [1, 2, 3, 4, 5]),
        ("1,5,10-12", [1, 5, 10, 11, 12]),
        ("1-10x5", [1, 6]),
        ("1-100x25", [1, 26, 51, 76]),
        ("7", [7]),
        ("3,1,2,2", [1, 2, 3]),
        (" 1 - 3 , 8 ", [1, 2, 3, 8]),
        ("-2-1", [-2, -1, 0, 1]),
    ],
)
def test_parse_frames(spec: str, frames: list[int]) -> None:
    assert parse_frames(spec) == frames


@pytest.mark.parametrize("spec", ["", "5-1", "a-b", "1-", "1--", "1-5x0", "1-5x", "1;2", "x"])
def test_malformed_ranges_name_the_problem(spec: str) -> None:
    with pytest.raises(FrameSpecError) as err:
        parse_frames(spec)
    assert "e.g." in str(err.value) or "backwards" in str(err.value)


def test_backwards_range_suggests_the_fix() -> None:
    with pytest.raises(FrameSpecError, match="1-5"):
        parse_frames("5-1")


def test_huge_range_is_refused_without_allocating() -> None:
    with pytest.raises(FrameSpecError, match="more than"):
        parse_frames("1-999999999999")


@given(st.integers(-1000, 1000), st.integers(0, 500), st.integers(1, 50))
def test_stepped_range_matches_python_range(start: int, length: int, step: int) -> None:
    end = start + length
    assert parse_frames(f"{start}-{end}x{step}") == list(range(start, end + 1, step))


@given(st.lists(st.integers(-50, 300), min_size=1, max_size=60))
def test_format_then_parse_round_trips(frames: list[int]) -> None:
    assert parse_frames(format_frames(frames)) == sorted(set(frames))


def test_frames_outside_the_scene_are_named() -> None:
    with pytest.raises(FrameSpecError, match=r"0, 11 .*1-10"):
        check_frames_in_scene([0, 5, 11], 1, 10)
    check_frames_in_scene([1, 10], 1, 10)


@given(st.lists(st.integers(), max_size=50), st.integers(1, 10))
def test_chunks_keep_every_frame_in_order(frames: list[int], size: int) -> None:
    chunks = chunk_frames(frames, size)
    assert [f for chunk in chunks for f in chunk] == frames
    assert all(1 <= len(chunk) <= size for chunk in chunks)


@pytest.mark.parametrize(
    ("pattern", "frame", "path"),
    [
        ("/tmp/out/frame_####", 1, "/tmp/out/frame_0001"),
        ("/tmp/out/f_##", 7, "/tmp/out/f_07"),
        ("/tmp/out/f_##", 123, "/tmp/out/f_123"),
        ("/tmp/out/shot", 5, "/tmp/out/shot0005"),
        ("/tmp/#/f_###", 5, "/tmp/#/f_005"),
    ],
)
def test_output_pattern_pads_like_blender(pattern: str, frame: int, path: str) -> None:
    assert expand_output_pattern(pattern, frame) == path
