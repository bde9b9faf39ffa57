"""Bring a job's outputs (EXR and PNG frames, the preview video) into a local folder:
resumable, verified by checksum, never a half-written file under the final name.

Each file is written to `NAME.wanhe-part`; an interrupted download resumes from the part's
length with an HTTP Range request; the whole file's SHA-256 must match the farm's
(`GET /api/jobs/{id}/checksums`) before it is renamed into place. A file already there with
the right hash is skipped. Standard library only.
"""

from __future__ import annotations

import hashlib
import os
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from .farm import Farm, FarmError
from .shared import hashing

PART = ".wanhe-part"
WANTED = (".exr", ".png", ".mp4")
_BLOCK = 1 << 20

Progress = Callable[[int, int], None]


class DownloadError(FarmError):
    """A file that could not be brought back intact."""


@dataclass
class Downloaded:
    fetched: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already here, same hash
    resumed: list[str] = field(default_factory=list)
    bytes: int = 0


def wanted(path: str) -> bool:
    """Frames (EXR, PNG) and the preview video; not progressive previews."""
    name = PurePosixPath(path).name
    return name.lower().endswith(WANTED) and ".partial." not in name


def safe_target(folder: Path, relative: str) -> Path:
    """Where `relative` lands under `folder`; DownloadError for a path that leaves it."""
    parts = PurePosixPath(relative).parts
    if not parts or relative.startswith("/") or any(p in ("..", "") for p in parts):
        raise DownloadError(f"the farm named an unsafe output path {relative!r}")
    return folder.joinpath(*parts)


def fetch_one(farm: Farm, job_id: int, relative: str, sha256: str, target: Path,
              on_bytes: Callable[[int], None] | None = None) -> str:
    """Download one output to `target`; 'skipped', 'resumed' or 'fetched'."""
    if target.is_file() and hashing.sha256_file(target) == sha256:
        return "skipped"
    target.parent.mkdir(parents=True, exist_ok=True)
    part = target.with_name(target.name + PART)
    start = part.stat().st_size if part.is_file() else 0
    digest = hashlib.sha256()
    if start:
        with part.open("rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                digest.update(block)
    url = f"/api/jobs/{int(job_id)}/files/{urllib.parse.quote(relative)}"
    with part.open("ab") as out:
        for chunk in farm.stream(url, start=start):
            out.write(chunk)
            digest.update(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
        out.flush()
        os.fsync(out.fileno())
    if digest.hexdigest() != sha256:
        part.unlink(missing_ok=True)  # a bad part would poison the next resume too
        raise DownloadError(f"{relative} arrived with the wrong checksum — download again")
    os.replace(part, target)
    return "resumed" if start else "fetched"


def download_outputs(farm: Farm, job_id: int, folder: Path,
                     on_progress: Progress | None = None) -> Downloaded:
    """Every wanted output of the job into `folder` (frames keep their farm names)."""
    sums = farm.checksums(job_id)
    detail = farm.job(job_id)
    sizes = {f["path"]: int(f["bytes"]) for f in detail.get("outputs", [])}
    todo = sorted(p for p in sums if wanted(p))
    if not todo:
        raise DownloadError(f"job {job_id} has no finished frames to download yet")
    total = sum(sizes.get(p, 0) for p in todo)
    done = Downloaded()
    seen = 0

    def bytes_in(n: int) -> None:
        nonlocal seen
        seen += n
        done.bytes += n
        if on_progress is not None:
            on_progress(seen, total)

    for relative in todo:
        target = safe_target(folder, relative)
        outcome = fetch_one(farm, job_id, relative, sums[relative], target, bytes_in)
        if outcome == "skipped":
            bytes_in(0)
            seen += sizes.get(relative, 0)
        getattr(done, outcome).append(relative)  # fetched, resumed or skipped
    return done
