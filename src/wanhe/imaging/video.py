"""Preview videos and contact sheets from preview PNGs (PyAV / FFmpeg and Pillow).

The PyAV wheel bundles FFmpeg with ``libx264``; :func:`pick_encoder` falls back to the
``h264`` alias and then to ``mpeg4`` for builds without it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from wanhe.imaging.atomic import atomic_write
from wanhe.imaging.errors import VideoError

__all__ = [
    "ContactSheetLayout",
    "VideoInfo",
    "contact_sheet_layout",
    "pick_encoder",
    "write_contact_sheet",
    "write_preview_video",
]

ENCODERS = ("libx264", "h264", "mpeg4")


@dataclass(frozen=True)
class VideoInfo:
    codec: str
    frames: int
    width: int
    height: int
    fps: float
    duration: float  # seconds: frames / fps


def pick_encoder(preferred: Sequence[str] = ENCODERS) -> str:
    """The first encoder of ``preferred`` that this PyAV build has."""
    for name in preferred:
        try:
            av.codec.Codec(name, "w")
        except Exception:  # PyAV raises UnknownCodecError (a ValueError) or FFmpegError
            continue
        return name
    raise VideoError(f"none of the video encoders {list(preferred)} is in this PyAV build")


def _load_rgb(path: Path) -> NDArray[np.uint8]:
    try:
        with Image.open(path) as image:
            return np.asarray(image.convert("RGB"))
    except (OSError, ValueError) as exc:
        raise VideoError(f"cannot read preview image {path}: {exc}") from exc


def _even(frame: NDArray[np.uint8]) -> NDArray[np.uint8]:
    """Pad odd widths/heights by repeating the last column/row (yuv420p needs even sizes)."""
    h, w = frame.shape[:2]
    if h % 2 == 0 and w % 2 == 0:
        return frame
    return np.pad(frame, ((0, h % 2), (0, w % 2), (0, 0)), mode="edge")


def write_preview_video(
    png_paths: Sequence[os.PathLike[str] | str],
    fps: float,
    out_mp4: os.PathLike[str] | str,
    *,
    crf: int = 20,
    codec: str | None = None,
) -> VideoInfo:
    """Encode the PNGs, in order, as an H.264 yuv420p MP4 at ``fps`` (written atomically).

    Odd sizes are padded by one edge-repeated pixel to even. Every image must have the size of
    the first. ``crf`` sets libx264's quality (lower is better, 0-51).
    """
    paths = [Path(p) for p in png_paths]
    if not paths:
        raise VideoError("no preview frames to encode")
    if not (0 < fps <= 1000) or not math.isfinite(fps):
        raise VideoError(f"fps must be in (0, 1000], got {fps}")
    rate = Fraction(fps).limit_denominator(1001)
    encoder = codec or pick_encoder()
    first = _load_rgb(paths[0])
    height, width = first.shape[:2]
    even_h, even_w = height + height % 2, width + width % 2
    with atomic_write(out_mp4) as tmp:
        container: Any = av.open(
            str(tmp), mode="w", format="mp4", options={"movflags": "faststart"}
        )
        try:
            stream = container.add_stream(encoder, rate=rate)
            stream.width, stream.height, stream.pix_fmt = even_w, even_h, "yuv420p"
            if encoder in ("libx264", "h264"):
                stream.options = {"crf": str(crf), "preset": "medium"}
            for index, path in enumerate(paths):
                pixels = first if index == 0 else _load_rgb(path)
                if pixels.shape[:2] != (height, width):
                    raise VideoError(
                        f"frame {index} ({path.name}) is {pixels.shape[1]}x{pixels.shape[0]} "
                        f"but the first frame is {width}x{height}; previews of one shot must "
                        "share one size"
                    )
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(_even(pixels)), "rgb24")
                frame.pts = index
                for packet in stream.encode(frame):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
        finally:
            container.close()
    return VideoInfo(encoder, len(paths), even_w, even_h, float(rate), len(paths) / float(rate))


@dataclass(frozen=True)
class ContactSheetLayout:
    columns: int
    rows: int
    thumb_width: int
    thumb_height: int
    label_height: int
    gap: int

    @property
    def size(self) -> tuple[int, int]:
        width = self.columns * self.thumb_width + (self.columns + 1) * self.gap
        cell_h = self.thumb_height + self.label_height
        return width, self.rows * cell_h + (self.rows + 1) * self.gap

    def origin(self, index: int) -> tuple[int, int]:
        """Top-left of thumbnail ``index`` (row by row)."""
        row, col = divmod(index, self.columns)
        x = self.gap + col * (self.thumb_width + self.gap)
        y = self.gap + row * (self.thumb_height + self.label_height + self.gap)
        return x, y


def contact_sheet_layout(
    count: int,
    image_size: tuple[int, int],
    *,
    columns: int | None = None,
    thumb_width: int = 320,
    label_height: int = 20,
    gap: int = 8,
) -> ContactSheetLayout:
    """Grid for ``count`` thumbnails of images of ``image_size`` (width, height).

    ``columns=None`` picks ``ceil(sqrt(count))``; thumbnails keep the aspect ratio.
    """
    if count <= 0:
        raise VideoError("no images for the contact sheet")
    if thumb_width <= 0:
        raise VideoError(f"thumb_width must be positive, got {thumb_width}")
    cols = columns if columns is not None else math.ceil(math.sqrt(count))
    if cols <= 0:
        raise VideoError(f"columns must be positive, got {cols}")
    cols = min(cols, count)
    rows = math.ceil(count / cols)
    thumb_height = max(1, round(thumb_width * image_size[1] / image_size[0]))
    return ContactSheetLayout(cols, rows, thumb_width, thumb_height, label_height, gap)


def _fit(draw: ImageDraw.ImageDraw, text: str, font: Any, width: int) -> str:
    """Shorten ``text`` with an ellipsis until it fits ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "…", font=font) > width:
        text = text[:-1]
    return text + "…"


def write_contact_sheet(
    png_paths: Sequence[os.PathLike[str] | str],
    out_png: os.PathLike[str] | str,
    *,
    columns: int | None = None,
    thumb_width: int = 320,
    labels: Sequence[str] | None = None,
) -> tuple[int, int]:
    """A grid of thumbnails with a label under each (default: the file name without suffix),
    written atomically as PNG. Returns the sheet's (width, height)."""
    paths = [Path(p) for p in png_paths]
    if labels is not None and len(labels) != len(paths):
        raise VideoError(f"{len(paths)} images but {len(labels)} labels")
    if not paths:
        raise VideoError("no images for the contact sheet")
    names = list(labels) if labels is not None else [p.stem for p in paths]
    with Image.open(paths[0]) as probe:
        first_size = probe.size
    layout = contact_sheet_layout(len(paths), first_size, columns=columns, thumb_width=thumb_width)
    sheet = Image.new("RGB", layout.size, (24, 24, 24))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(10, layout.label_height - 6))
    for index, (path, label) in enumerate(zip(paths, names, strict=True)):
        thumb = Image.fromarray(_load_rgb(path)).resize(
            (layout.thumb_width, layout.thumb_height), Image.Resampling.LANCZOS
        )
        x, y = layout.origin(index)
        sheet.paste(thumb, (x, y))
        text = _fit(draw, label, font, layout.thumb_width - 4)
        draw.text((x + 2, y + layout.thumb_height + 2), text, fill=(230, 230, 230), font=font)
    with atomic_write(out_png) as tmp:
        sheet.save(tmp, format="PNG")
    return layout.size
