"""Burn-ins for review copies: the shot, the timecode and the line being spoken, drawn on
the picture (Pillow's bundled font, on a dark band so they read over any board)."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

RGB8 = NDArray[np.uint8]


def timecode(frame: int, fps: float, start_hours: int = 1) -> str:
    """Non-drop HH:MM:SS:FF of `frame` counted from `start_hours`:00:00:00 (the editorial
    package's start), at the film's rate rounded to whole frames per second."""
    base = max(1, round(fps))
    seconds, ff = divmod(frame, base)
    minutes, ss = divmod(seconds, 60)
    hours, mm = divmod(minutes, 60)
    return f"{start_hours + hours:02d}:{mm:02d}:{ss:02d}:{ff:02d}"


def burn(pixels: RGB8, top: str, bottom: str) -> RGB8:
    """`top` (shot, timecode) at the top left, `bottom` (the line) along the bottom."""
    image = Image.fromarray(pixels)
    height = image.height
    size = max(8, height // 18)
    font = ImageFont.load_default(size=size)
    draw = ImageDraw.Draw(image, "RGBA")
    pad = max(2, size // 4)
    for text, y in ((top, pad), (bottom, height - size - 3 * pad)):
        if not text:
            continue
        box = draw.textbbox((pad, y), text, font=font)
        draw.rectangle((box[0] - pad, box[1] - pad, box[2] + pad, box[3] + pad),
                       fill=(0, 0, 0, 160))
        draw.text((pad, y), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(image)
