"""Review copies play everywhere: gen videos, shot clips and reels are H.264 High profile,
yuv420p (QuickTime and Premiere do not play 4:4:4), with the index at the front
(`+faststart`, so a browser starts before the whole file arrived) and AAC audio."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from wanhe.ai.pipelines import write_mp4
from wanhe.imaging.reel import write_clip, write_reel


def _frames(n: int = 4) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    return [rng.integers(0, 256, (32, 48, 3), dtype=np.uint8) for _ in range(n)]


def _video(path: Path) -> tuple[str, str, list[str]]:
    with av.open(str(path)) as container:
        video = container.streams.video[0]
        audio = [s.codec_context.name for s in container.streams.audio]
        return str(video.codec_context.profile), str(video.codec_context.pix_fmt), audio


def _faststart(path: Path) -> bool:
    data = path.read_bytes()
    return 0 <= data.find(b"moov") < data.find(b"mdat")


def test_gen_videos_clips_and_reels_are_high_profile_yuv420p_faststart(tmp_path: Path) -> None:
    gen = tmp_path / "gen.mp4"
    write_mp4(gen, np.stack(_frames()), 8, {"seed": 1})
    clip = tmp_path / "clip.mp4"
    assert write_clip(_frames(), 12, clip) == 4
    reel = tmp_path / "reel.mp4"
    tone = np.sin(np.arange(48_000 // 3) / 10).astype(np.float32) * 0.1
    write_reel([clip], [("en", tone)], 12, 4, (48, 32), reel)
    for path, audio in ((gen, []), (clip, []), (reel, ["aac"])):
        assert _video(path) == ("High", "yuv420p", audio), path.name
        assert _faststart(path), f"{path.name}: moov after mdat"
