"""wanhe.imaging.video: preview MP4s and contact sheets, read back for real."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pytest
from PIL import Image

from wanhe.imaging.errors import VideoError
from wanhe.imaging.video import (
    contact_sheet_layout,
    pick_encoder,
    write_contact_sheet,
    write_preview_video,
)


def make_pngs(folder: Path, count: int, size: tuple[int, int] = (65, 49)) -> list[Path]:
    """Frames with a moving bright bar, so every frame differs."""
    width, height = size
    paths = []
    for i in range(count):
        pixels = np.zeros((height, width, 3), dtype=np.uint8)
        pixels[..., 2] = 60
        x = (i * 5) % width
        pixels[:, x : x + 4] = (250, 200, 30)
        path = folder / f"frame_{i + 1:04d}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths


def test_this_pyav_has_libx264() -> None:
    assert pick_encoder() == "libx264"
    assert pick_encoder(["no-such-codec", "mpeg4"]) == "mpeg4"
    with pytest.raises(VideoError, match="none of the video encoders"):
        pick_encoder(["no-such-codec"])


@pytest.mark.parametrize("fps", [24.0, 23.976, 12.5])
def test_video_frame_count_duration_and_even_size(tmp_path: Path, fps: float) -> None:
    pngs = make_pngs(tmp_path, 12)  # 65×49: odd both ways
    out = tmp_path / "preview.mp4"
    info = write_preview_video(pngs, fps, out)
    assert (info.codec, info.frames, info.width, info.height) == ("libx264", 12, 66, 50)
    assert info.duration == pytest.approx(12 / fps, rel=1e-3)
    with av.open(str(out)) as container:
        stream = container.streams.video[0]
        assert stream.codec_context.name == "h264"
        assert (stream.width, stream.height) == (66, 50)
        assert stream.average_rate == Fraction(fps).limit_denominator(1001)
        frames = list(container.decode(stream))
        assert frames[0].format.name == "yuv420p"
        duration = float(stream.duration * stream.time_base)
    assert len(frames) == 12
    assert duration == pytest.approx(12 / fps, rel=0.02)
    # the picture survived encoding: the bar of frame 3 is where it was drawn
    rgb = frames[3].to_ndarray(format="rgb24")
    assert rgb[:, 16:19, 0].mean() > 200 and rgb[:, 40:, 0].mean() < 40
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_mpeg4_fallback(tmp_path: Path) -> None:
    info = write_preview_video(
        make_pngs(tmp_path, 3, (32, 18)), 10, tmp_path / "m.mp4", codec="mpeg4"
    )
    with av.open(str(tmp_path / "m.mp4")) as container:
        assert container.streams.video[0].codec_context.name == "mpeg4"
        assert len(list(container.decode(video=0))) == info.frames == 3


def test_video_rejects_mixed_sizes_without_leaving_a_file(tmp_path: Path) -> None:
    pngs = make_pngs(tmp_path, 2)
    odd = tmp_path / "odd.png"
    Image.new("RGB", (30, 20)).save(odd)
    out = tmp_path / "bad.mp4"
    with pytest.raises(
        VideoError, match=r"frame 2 \(odd.png\) is 30x20 but the first frame is 65x49"
    ):
        write_preview_video([*pngs, odd], 24, out)
    assert not out.exists()
    assert [p.name for p in tmp_path.iterdir() if ".tmp-" in p.name] == []


def test_video_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(VideoError, match="no preview frames"):
        write_preview_video([], 24, tmp_path / "x.mp4")
    with pytest.raises(VideoError, match="fps"):
        write_preview_video(make_pngs(tmp_path, 1), 0, tmp_path / "x.mp4")
    with pytest.raises(VideoError, match="cannot read preview image"):
        write_preview_video([tmp_path / "missing.png"], 24, tmp_path / "x.mp4")


def test_contact_sheet_size_and_content(tmp_path: Path) -> None:
    pngs = make_pngs(tmp_path, 5)
    out = tmp_path / "sheet.png"
    size = write_contact_sheet(pngs, out, thumb_width=100, labels=[f"f{i}" for i in range(5)])
    # 3 columns × 2 rows of 100×75 thumbnails (65×49 scaled), 20 px labels, 8 px gaps
    assert size == (3 * 100 + 4 * 8, 2 * (75 + 20) + 3 * 8) == (332, 214)
    image = np.asarray(Image.open(out))
    assert image.shape == (214, 332, 3)
    layout = contact_sheet_layout(5, (65, 49), thumb_width=100)
    x, y = layout.origin(4)  # second row, second column
    assert image[y + 10, x + 50, 2] > 40  # thumbnail background (blue 60)
    label_band = image[y + 75 : y + 95, x : x + 100]
    assert label_band.max() > 150  # the label's text was drawn
    x, y = layout.origin(5)  # the empty sixth cell stays background
    assert image[y + 10 : y + 60, x + 10 : x + 90].max() == 24


def test_contact_sheet_columns_and_default_labels(tmp_path: Path) -> None:
    pngs = make_pngs(tmp_path, 4, (40, 20))
    size = write_contact_sheet(pngs, tmp_path / "s.png", columns=4, thumb_width=60)
    assert size == (4 * 60 + 5 * 8, 30 + 20 + 2 * 8)
    size = write_contact_sheet(pngs, tmp_path / "s.png", columns=10, thumb_width=60)
    assert size[0] == 4 * 60 + 5 * 8  # never more columns than images
    with pytest.raises(VideoError, match="4 images but 1 labels"):
        write_contact_sheet(pngs, tmp_path / "s.png", labels=["x"])
