"""Story reel pictures and the reel file (PyAV / FFmpeg, Pillow, NumPy).

- `still_frames`: a still with a camera move (pan/zoom from a start to an end framing);
- `exr_frames`: rendered EXRs as display frames, the last held to fill the shot;
- `write_clip`: frames → H.264 MP4 (no audio);
- `write_reel`: the shots' clips one after another, with one AAC track per language, each
  tagged with its language (ISO 639-2, as MP4 stores it), the first the default.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator, Sequence
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np
from numpy.typing import NDArray
from PIL import Image

from wanhe.imaging.atomic import atomic_write
from wanhe.imaging.video import pick_encoder

RGB8 = NDArray[np.uint8]
AUDIO_RATE = 48_000

# BCP-47 primary subtags to the ISO 639-2/T codes MP4 stores; 3-letter codes pass through.
_ISO639_2 = {
    "en": "eng", "zh": "zho", "fr": "fra", "de": "deu", "es": "spa", "it": "ita", "ja": "jpn",
    "ko": "kor", "pt": "por", "ru": "rus", "ar": "ara", "hi": "hin", "nl": "nld", "sv": "swe",
    "pl": "pol", "tr": "tur", "vi": "vie", "th": "tha", "id": "ind", "uk": "ukr", "cs": "ces",
    "el": "ell", "he": "heb", "fi": "fin", "da": "dan", "no": "nor", "nb": "nob", "hu": "hun",
    "ro": "ron", "ms": "msa", "fa": "fas", "bn": "ben", "ta": "tam", "te": "tel", "ur": "urd",
}


def iso639_2(lang: str) -> str:
    primary = lang.split("-")[0].lower()
    return _ISO639_2.get(primary, primary if len(primary) == 3 else "und")


def h264_options(encoder: str, crf: int) -> dict[str, str]:
    """x264's settings for review copies: High profile (with yuv420p, what QuickTime,
    Premiere and browsers play)."""
    if encoder not in ("libx264", "h264"):
        return {}
    return {"crf": str(crf), "preset": "veryfast", "profile": "high"}


def _ease(t: float) -> float:
    return 0.5 - 0.5 * math.cos(math.pi * min(1.0, max(0.0, t)))


def still_frames(path: Path, size: tuple[int, int], count: int,
                 move: dict[str, Any] | None) -> Iterator[RGB8]:
    """`count` frames of `size` from the image at `path`, covering the frame (cropped, not
    letterboxed), moving from the start framing to the end framing (eased)."""
    width, height = size
    with Image.open(path) as opened:
        image = opened.convert("RGB")
    iw, ih = image.size
    aspect = width / height
    base_w, base_h = (iw, iw / aspect) if iw / ih < aspect else (ih * aspect, ih)
    move = move or {}
    z0, z1 = float(move.get("start_zoom", 1.0)), float(move.get("end_zoom", 1.0))
    c0 = move.get("start_center", (0.5, 0.5))
    c1 = move.get("end_center", (0.5, 0.5))
    still: RGB8 | None = None
    for n in range(count):
        t = _ease(n / max(1, count - 1))
        zoom = z0 + (z1 - z0) * t
        cx = (c0[0] + (c1[0] - c0[0]) * t) * iw
        cy = (c0[1] + (c1[1] - c0[1]) * t) * ih
        w, h = base_w / zoom, base_h / zoom
        x0 = min(max(cx - w / 2, 0.0), iw - w)
        y0 = min(max(cy - h / 2, 0.0), ih - h)
        if still is not None and z0 == z1 and c0 == c1:
            yield still
            continue
        frame = image.resize((width, height), Image.Resampling.BILINEAR,
                             box=(x0, y0, x0 + w, y0 + h))
        still = np.asarray(frame)
        yield still


def exr_frames(paths: Sequence[Path], size: tuple[int, int], count: int) -> Iterator[RGB8]:
    """Display frames of the rendered EXRs, resized to `size`; the last is held until
    `count` frames were given (a shot longer than its frame range)."""
    from wanhe.imaging.exr import read_layers
    from wanhe.imaging.preview import to_display_8bit

    last: RGB8 | None = None
    for n in range(count):
        if n < len(paths):
            rgba = read_layers(paths[n]).rgba("Combined")
            pixels: RGB8 = np.asarray(to_display_8bit(rgba[..., :3]), np.uint8)
            if pixels.shape[1::-1] != size:
                pixels = np.asarray(Image.fromarray(pixels).resize(size))
            last = np.ascontiguousarray(pixels)
        assert last is not None
        yield last


def write_clip(frames: Iterable[RGB8], fps: float, out: Path, *, crf: int = 23) -> int:
    """Encode `frames` as H.264 yuv420p at `fps` into `out` (atomically); the frame count."""
    rate = Fraction(fps).limit_denominator(1001)
    encoder = pick_encoder()
    count = 0
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        container: Any = av.open(str(tmp), mode="w", format="mp4",
                                 options={"movflags": "+faststart"})
        try:
            stream: Any = None
            for pixels in frames:
                if stream is None:
                    stream = container.add_stream(encoder, rate=rate)
                    stream.height, stream.width = pixels.shape[:2]
                    stream.pix_fmt = "yuv420p"
                    stream.options = h264_options(encoder, crf)
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), "rgb24")
                frame.pts = count
                count += 1
                for packet in stream.encode(frame):
                    container.mux(packet)
            if stream is not None:
                for packet in stream.encode():
                    container.mux(packet)
        finally:
            container.close()
    return count


def _clip_frames(paths: Sequence[Path]) -> Iterator[RGB8]:
    for path in paths:
        with av.open(str(path)) as clip:
            for frame in clip.decode(video=0):
                yield np.asarray(frame.to_ndarray(format="rgb24"), np.uint8)


def write_reel(clips: Sequence[Path], tracks: Sequence[tuple[str, NDArray[np.float32]]],
               fps: float, frames: int, size: tuple[int, int], out: Path, *,
               crf: int = 23, burn_in: Callable[[int], tuple[str, str]] | None = None) -> None:
    """The reel: `frames` frames from the clips in order (a missing tail is held), and one
    AAC track per (language, mono float samples at 48 kHz), the first the default.
    `burn_in(frame)`: (top, bottom) texts drawn on that frame (`wanhe.imaging.burnin`)."""
    rate = Fraction(fps).limit_denominator(1001)
    encoder = pick_encoder()
    with atomic_write(out) as tmp:
        container: Any = av.open(str(tmp), mode="w", format="mp4",
                                 options={"movflags": "+faststart"})
        try:
            video: Any = container.add_stream(encoder, rate=rate)  # the first stream
            video.width, video.height = size
            video.pix_fmt = "yuv420p"
            video.options = h264_options(encoder, crf)
            audio: list[Any] = []
            for n, (lang, _) in enumerate(tracks):
                stream: Any = container.add_stream("aac", rate=AUDIO_RATE)
                stream.layout = "mono"
                stream.metadata["language"] = iso639_2(lang)
                stream.metadata["title"] = lang
                stream.disposition = (av.stream.Disposition.default if n == 0
                                      else av.stream.Disposition(0))
                audio.append(stream)
            cursors = [0] * len(tracks)
            last: RGB8 | None = None
            source = _clip_frames(clips)
            for n in range(frames):
                pixels = next(source, None)
                pixels = last if pixels is None else pixels
                assert pixels is not None, "no clip frames"
                last = pixels
                if burn_in is not None:
                    from wanhe.imaging.burnin import burn

                    pixels = burn(pixels, *burn_in(n))
                frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(pixels), "rgb24")
                frame.pts = n
                for packet in video.encode(frame):
                    container.mux(packet)
                until = round((n + 1) / float(rate) * AUDIO_RATE)
                for i, (_, samples) in enumerate(tracks):
                    cursors[i] = _feed(container, audio[i], samples, cursors[i], until)
            for packet in video.encode():
                container.mux(packet)
            total = round(frames / float(rate) * AUDIO_RATE)
            for i, (_, samples) in enumerate(tracks):
                _feed(container, audio[i], samples, cursors[i], total)
                for packet in audio[i].encode(None):
                    container.mux(packet)
        finally:
            container.close()


def _feed(container: Any, stream: Any, samples: NDArray[np.float32], at: int,
          until: int) -> int:
    """Encode samples [at, until) of a track (zeros past its end); the new cursor."""
    chunk = 1024
    while at + chunk <= until:
        part = samples[at:at + chunk]
        if len(part) < chunk:
            part = np.pad(part, (0, chunk - len(part)))
        frame = av.AudioFrame.from_ndarray(part.reshape(1, -1).astype(np.float32),
                                           format="fltp", layout="mono")
        frame.sample_rate = AUDIO_RATE
        frame.pts = at
        for packet in stream.encode(frame):
            container.mux(packet)
        at += chunk
    return at


def write_audio(samples: NDArray[np.float32], lang: str, out: Path) -> None:
    """One language's track alone as AAC in an .m4a (what the dashboard's player switches)."""
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(out) as tmp:
        container: Any = av.open(str(tmp), mode="w", format="mp4")
        try:
            stream: Any = container.add_stream("aac", rate=AUDIO_RATE)
            stream.layout = "mono"
            stream.metadata["language"] = iso639_2(lang)
            _feed(container, stream, samples, 0, len(samples) + 1023)
            for packet in stream.encode(None):
                container.mux(packet)
        finally:
            container.close()
