"""wanhe.imaging.assemble: tiles and sample chunks back into one frame, bit for bit."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from wanhe.imaging.assemble import (
    TilePlacement,
    assemble_frame,
    assemble_tiles,
    merge_frames,
    merge_sample_chunks,
)
from wanhe.imaging.errors import AssemblyError
from wanhe.imaging.exr import Frame, read_layers, write_layers

from ._synth import grid_boxes, synthetic_frame
from .conftest import RenderFn


def crop(frame: Frame, box: tuple[int, int, int, int]) -> Frame:
    x0, y0, x1, y1 = box
    return Frame(
        x1 - x0,
        y1 - y0,
        {k: v[y0:y1, x0:x1].copy() for k, v in frame.channels.items()},
        dict(frame.attributes),
        dict(frame.color_spaces),
    )


def cut_into_tiles(
    frame: Frame, cols: int, rows: int, overscan: int, folder: Path
) -> list[TilePlacement]:
    """Write one EXR per tile, each with up to ``overscan`` extra pixels on every side."""
    placements = []
    for i, (x0, y0, x1, y1) in enumerate(grid_boxes(frame.width, frame.height, cols, rows)):
        ox0, oy0 = max(0, x0 - overscan), max(0, y0 - overscan)
        ox1, oy1 = min(frame.width, x1 + overscan), min(frame.height, y1 + overscan)
        path = folder / f"tile_{i:03d}.exr"
        write_layers(crop(frame, (ox0, oy0, ox1, oy1)), path)
        src = (x0 - ox0, y0 - oy0, x1 - ox0, y1 - oy0)
        placements.append(TilePlacement(path, src, (x0, y0)))
    return placements


def assert_bit_exact(a: Frame, b: Frame) -> None:
    assert (a.width, a.height) == (b.width, b.height)
    assert set(a.channels) == set(b.channels)
    for name in a.channels:
        assert (
            a.channels[name].view(np.uint32).tobytes() == b.channels[name].view(np.uint32).tobytes()
        ), name


@pytest.mark.parametrize(
    ("width", "height", "cols", "rows"),
    [(37, 23, 1, 1), (37, 23, 5, 1), (23, 37, 1, 4), (41, 29, 3, 2), (17, 9, 17, 1)],
)
def test_grids_reassemble_bit_exact(
    tmp_path: Path, width: int, height: int, cols: int, rows: int
) -> None:
    frame = synthetic_frame(width, height, seed=width * rows + cols)
    frame.channels["ViewLayer.Combined.R"][0, 0] = np.nan
    placements = cut_into_tiles(frame, cols, rows, overscan=3, folder=tmp_path)
    out = tmp_path / "master.exr"
    assemble_tiles(placements, width, height, out)
    assembled = read_layers(out)
    assert_bit_exact(frame, assembled)
    assert assembled.attributes["Software"] == "wanhe test"
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    width=st.integers(1, 40),
    height=st.integers(1, 40),
    cols=st.integers(1, 6),
    rows=st.integers(1, 6),
    overscan=st.integers(0, 5),
    seed=st.integers(0, 2**16),
)
def test_any_grid_reassembles_bit_exact(
    width: int, height: int, cols: int, rows: int, overscan: int, seed: int
) -> None:
    cols, rows = min(cols, width), min(rows, height)  # a planner never makes empty tiles
    frame = synthetic_frame(width, height, seed=seed)
    with tempfile.TemporaryDirectory() as folder:
        placements = cut_into_tiles(frame, cols, rows, overscan, Path(folder))
        assert_bit_exact(frame, assemble_frame(placements, width, height))


@pytest.mark.slow
def test_real_blender_border_tiles_match_full_render(blender_render: RenderFn) -> None:
    """2×2 Cycles border renders (crop on, 4 px overscan) assemble to the full render."""
    width, height, overscan = 64, 48, 4
    full = read_layers(blender_render("full64", "--size", "64x48"))
    placements = []
    for i, (x0, y0, x1, y1) in enumerate(grid_boxes(width, height, 2, 2)):
        ox0, oy0 = max(0, x0 - overscan), max(0, y0 - overscan)
        ox1, oy1 = min(width, x1 + overscan), min(height, y1 + overscan)
        # Blender's border counts y from the bottom; ours from the top.
        border = f"{ox0 / width},{ox1 / width},{(height - oy1) / height},{(height - oy0) / height}"
        path = blender_render(f"tile64_{i}", "--size", "64x48", "--border", border)
        placements.append(TilePlacement(path, (x0 - ox0, y0 - oy0, x1 - ox0, y1 - oy0), (x0, y0)))
    assembled = assemble_frame(placements, width, height)
    for name in full.channels:
        assert np.array_equal(assembled.channels[name], full.channels[name]), name


def _placements(tmp_path: Path, boxes: list[tuple[int, int, int, int]]) -> list[TilePlacement]:
    frame = synthetic_frame(10, 8)
    out = []
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        path = tmp_path / f"t{i}.exr"
        write_layers(crop(frame, (x0, y0, x1, y1)), path)
        out.append(TilePlacement(path, (0, 0, x1 - x0, y1 - y0), (x0, y0)))
    return out


def test_whole_frame_tile_becomes_the_master_byte_for_byte(tmp_path: Path) -> None:
    tiles = _placements(tmp_path, [(0, 0, 10, 8)])
    assemble_tiles(tiles, 10, 8, tmp_path / "m.exr")
    assert (tmp_path / "m.exr").read_bytes() == tiles[0].path.read_bytes()
    assert tiles[0].path.exists()  # kept: a rerun of the assemble task still finds it


def test_single_tile_with_overscan_is_cropped(tmp_path: Path) -> None:
    frame = synthetic_frame(12, 10)
    write_layers(frame, tmp_path / "t.exr")
    assemble_tiles([TilePlacement(tmp_path / "t.exr", (1, 1, 11, 9), (0, 0))], 10, 8,
                   tmp_path / "m.exr")
    assert_bit_exact(read_layers(tmp_path / "m.exr"), crop(frame, (1, 1, 11, 9)))


def test_whole_frame_tile_of_the_wrong_size_is_refused(tmp_path: Path) -> None:
    write_layers(synthetic_frame(9, 8), tmp_path / "t.exr")
    with pytest.raises(AssemblyError, match="does not fit the tile image of 9x8"):
        assemble_tiles([TilePlacement(tmp_path / "t.exr", (0, 0, 10, 8), (0, 0))], 10, 8,
                       tmp_path / "m.exr")
    assert not (tmp_path / "m.exr").exists()


def test_overlap_raises_naming_tiles(tmp_path: Path) -> None:
    tiles = _placements(tmp_path, [(0, 0, 6, 8), (5, 0, 10, 8)])
    with pytest.raises(AssemblyError, match=r"overlap.*x=5, y=0.*t0\.exr.*t1\.exr"):
        assemble_tiles(tiles, 10, 8, tmp_path / "m.exr")
    assert not (tmp_path / "m.exr").exists()


def test_gap_raises_with_location(tmp_path: Path) -> None:
    tiles = _placements(tmp_path, [(0, 0, 4, 8), (5, 0, 10, 8)])
    with pytest.raises(AssemblyError, match=r"8 pixels uncovered.*x 4\.\.4"):
        assemble_tiles(tiles, 10, 8, tmp_path / "m.exr")


def test_missing_tile_raises(tmp_path: Path) -> None:
    tiles = _placements(tmp_path, [(0, 0, 5, 4), (5, 0, 10, 4), (0, 4, 5, 8)])
    with pytest.raises(AssemblyError, match=r"uncovered.*x 5\.\.9, y 4\.\.7"):
        assemble_frame(tiles, 10, 8)


def test_tile_outside_frame_raises(tmp_path: Path) -> None:
    tiles = _placements(tmp_path, [(0, 0, 10, 8)])
    shifted = [TilePlacement(tiles[0].path, tiles[0].src, (1, 0))]
    with pytest.raises(AssemblyError, match=r"tile 0 \(t0\.exr\).*outside the 10x8 frame"):
        assemble_frame(shifted, 10, 8)


def test_src_box_larger_than_tile_image_raises(tmp_path: Path) -> None:
    tiles = _placements(tmp_path, [(0, 0, 5, 8), (5, 0, 10, 8)])
    bad = [tiles[0], TilePlacement(tiles[1].path, (1, 0, 6, 8), (5, 0))]
    with pytest.raises(AssemblyError, match=r"tile 1 .*does not fit the tile image of 5x8"):
        assemble_frame(bad, 10, 8)


def test_empty_src_box_raises(tmp_path: Path) -> None:
    tiles = _placements(tmp_path, [(0, 0, 10, 8)])
    with pytest.raises(AssemblyError, match="empty or negative"):
        assemble_frame([TilePlacement(tiles[0].path, (3, 3, 3, 8), (0, 0))], 10, 8)


def test_channel_mismatch_raises(tmp_path: Path) -> None:
    tiles = _placements(tmp_path, [(0, 0, 5, 8), (5, 0, 10, 8)])
    frame = read_layers(tiles[1].path)
    del frame.channels["ViewLayer.Denoising Depth.Z"]
    write_layers(frame, tiles[1].path)
    with pytest.raises(AssemblyError, match=r"tile 1 .*missing \['ViewLayer.Denoising Depth.Z'\]"):
        assemble_frame(tiles, 10, 8)


def test_no_tiles_raises() -> None:
    with pytest.raises(AssemblyError, match="no tiles"):
        assemble_frame([], 10, 8)


def test_merge_is_sample_weighted(tmp_path: Path) -> None:
    a, b, c = (synthetic_frame(9, 7, seed=s) for s in (1, 2, 3))
    paths = []
    for i, f in enumerate((a, b, c)):
        paths.append(tmp_path / f"chunk{i}.exr")
        write_layers(f, paths[-1])
    out = tmp_path / "merged.exr"
    merge_sample_chunks(paths, [1, 3, 4], out)
    merged = read_layers(out)
    for name in a.channels:
        expected = (
            a.channels[name].astype(np.float64)
            + 3 * b.channels[name].astype(np.float64)
            + 4 * c.channels[name].astype(np.float64)
        ) / 8
        assert np.array_equal(merged.channels[name], expected.astype(np.float32)), name
    assert merged.attributes["cycles.ViewLayer.samples"] == "8"


def test_merge_single_chunk_is_identity() -> None:
    a = synthetic_frame(5, 4)
    merged = merge_frames([a], [7])
    for name in a.channels:
        assert np.array_equal(merged.channels[name], a.channels[name])


def test_merge_sums_sample_count_pass() -> None:
    a, b = synthetic_frame(4, 3, seed=1), synthetic_frame(4, 3, seed=2)
    for f, n in ((a, 16), (b, 8)):
        f.set_pass("Debug Sample Count", np.full((3, 4), n, dtype=np.float32), ("X",))
    merged = merge_frames([a, b], [16, 8])
    assert np.all(merged.pass_array("Debug Sample Count") == 24)


def test_merge_checks_sizes_and_channels(tmp_path: Path) -> None:
    a, b = synthetic_frame(5, 4), synthetic_frame(5, 5)
    with pytest.raises(AssemblyError, match="chunk 1 is 5x5 but chunk 0 is 5x4"):
        merge_frames([a, b], [1, 1])
    c = synthetic_frame(5, 4)
    del c.channels["ViewLayer.Combined.A"]
    with pytest.raises(AssemblyError, match=r"chunk 1 .*missing \['ViewLayer.Combined.A'\]"):
        merge_frames([a, c], [1, 1])
    with pytest.raises(AssemblyError, match="positive"):
        merge_frames([a, a], [1, 0])
    with pytest.raises(AssemblyError, match="2 chunks but 1 sample counts"):
        merge_sample_chunks([tmp_path / "x.exr", tmp_path / "y.exr"], [1], tmp_path / "o.exr")


@pytest.mark.slow
def test_real_sample_chunks_merge_to_full_render(blender_render: RenderFn, tmp_path: Path) -> None:
    """Cycles sample subsets 0-8 and 8-16 merged ≈ one 16-sample render (float rounding)."""
    common = ("--size", "48x36", "--samples", "16")
    full = read_layers(blender_render("s16", *common))
    chunks = [
        blender_render(f"s16_{off}", *common, "--sample-offset", str(off), "--sample-subset", "8")
        for off in (0, 8)
    ]
    out = tmp_path / "merged.exr"
    # Blender writes the scene total (16) into each chunk's metadata, not the subset's 8
    assert read_layers(chunks[0]).attributes["cycles.ViewLayer.samples"] == "16"
    merge_sample_chunks(chunks, [8, 8], out)
    merged = read_layers(out)
    assert merged.attributes["cycles.ViewLayer.samples"] == "16"
    diff = np.abs(merged.rgb() - full.rgb()).max()
    assert diff < 1e-5, diff
    assert np.abs(read_layers(chunks[0]).rgb() - full.rgb()).max() > 100 * diff
