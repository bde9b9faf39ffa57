"""Time-stretch without a change of pitch, and pitch-shift without a change of timing, with
the Rubber Band library's command line (Debian's `rubberband-cli`)."""

from __future__ import annotations

import shutil
from pathlib import Path

from wanhe import metering

RUBBERBAND = "rubberband"


class StretchError(RuntimeError):
    pass


def check_rubberband(why: str) -> None:
    """Raise StretchError naming `why` rubberband is needed when it is not installed."""
    if shutil.which(RUBBERBAND) is None:
        raise StretchError(f"{why} needs rubberband, which is not installed — apt-get install "
                           "rubberband-cli")


def _run(args: list[str], src: Path, dst: Path) -> None:
    check_rubberband("rubberband " + " ".join(args))
    tmp = dst.with_name(f".{dst.stem}.rb.wav")
    try:
        done = metering.run([RUBBERBAND, "-q", *args, str(src), str(tmp)],
                            capture_output=True, text=True, timeout=300, check=False)
        if done.returncode != 0 or not tmp.exists():
            raise StretchError(f"rubberband {' '.join(args)} failed: {done.stderr.strip()[:300]}")
        tmp.replace(dst)
    finally:
        tmp.unlink(missing_ok=True)


def time_stretch(src: Path, dst: Path, time_ratio: float) -> None:
    """`dst` lasts `time_ratio` × `src` (0.87 = 13 % faster), at the same pitch."""
    if abs(time_ratio - 1.0) < 1e-6:
        if src != dst:
            shutil.copyfile(src, dst)
        return
    _run(["--fine", "-t", f"{time_ratio:.6f}"], src, dst)


def pitch_shift(src: Path, dst: Path, semitones: float) -> None:
    """`dst` is `src` `semitones` higher (negative: lower), same length, formants kept."""
    _run(["--fine", "-F", "-p", f"{semitones:.4f}"], src, dst)
