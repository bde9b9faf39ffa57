"""Where a farm's inputs and outputs live: content-addressed blobs and per-job folders.

Layout under the storage root (`Settings.storage_root`)::

    blobs/ab/cdef…      every uploaded file once, named by its SHA-256 (first two hex digits
                        make the folder)
    jobs/<id>/input/    a job's files materialised from blobs (hard links, copies across
                        file systems) at their relative paths; the .blend opens from here
    jobs/<id>/output/   what the job writes (frame_####.exr/.png, preview video)
    jobs/<id>/work/     intermediate tiles
    staging/<uuid>/     a checkout before its job has an id
    logs/               per-attempt task logs (written by the dispatcher)

Every path a user names is checked: relative, no `..`, no drive letters or backslashes, no
control characters; every resolved path must stay inside its folder (a symlink pointing out
is refused). The root is a local path for now; an fsspec URL (s3://, gs://) is the planned
extension — the blob and checkout API here is what would move behind it.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import tempfile
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path, PurePosixPath
from typing import IO

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_PATH_LENGTH = 1024
MAX_PART_LENGTH = 255
_CHUNK = 1 << 20


class StorageError(ValueError):
    """A request the storage refuses; the message says why and what to do."""


class UnsafePath(StorageError):
    """A user-supplied path that would leave its folder (`..`, absolute, symlink out)."""


class TooLarge(StorageError):
    """An upload over the size limit."""


class HashMismatch(StorageError):
    """Uploaded bytes whose SHA-256 is not the one they were sent as."""


def check_sha256(value: str) -> str:
    if not SHA256_RE.match(value):
        raise StorageError(
            f"{value[:80]!r} is not a SHA-256 digest (64 lowercase hex characters)"
        )
    return value


def safe_relpath(path: str) -> PurePosixPath:
    """`path` as a clean relative POSIX path, or UnsafePath saying what is wrong with it."""
    if not path or not path.strip():
        raise UnsafePath("an empty path names no file")
    if len(path) > MAX_PATH_LENGTH:
        raise UnsafePath(f"path longer than {MAX_PATH_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise UnsafePath(f"path {path!r} contains control characters")
    if "\\" in path:
        raise UnsafePath(f"path {path!r} contains a backslash — use / between folders")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise UnsafePath(f"path {path!r} is absolute — send paths relative to the upload root")
    parts = PurePosixPath(path).parts
    if any(p == ".." for p in parts):
        raise UnsafePath(f"path {path!r} climbs out of the upload with '..'")
    clean = [p for p in parts if p not in ("", ".")]
    if not clean:
        raise UnsafePath(f"path {path!r} names no file")
    if any(len(p) > MAX_PART_LENGTH for p in clean):
        raise UnsafePath(f"path {path!r} has a name longer than {MAX_PART_LENGTH} characters")
    return PurePosixPath(*clean)


def inside(folder: Path, relative: str) -> Path:
    """`folder/relative`, resolved (symlinks followed), refused unless it stays inside `folder`."""
    rel = safe_relpath(relative)
    base = folder.resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise UnsafePath(f"path {relative!r} leads out of its folder (a symlink?)")
    return target


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_CHUNK), b""):
            digest.update(block)
    return digest.hexdigest()


class Storage:
    """Content-addressed blobs and job folders under one local root."""

    def __init__(self, root: Path, *, max_blob_bytes: int = 20 * 1024**3) -> None:
        self.root = Path(root).expanduser().absolute()
        self.max_blob_bytes = max_blob_bytes
        for sub in ("blobs", "jobs", "staging", "tmp"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    # ------------------------------------------------------------------ blobs

    def blob_path(self, sha: str) -> Path:
        check_sha256(sha)
        return self.root / "blobs" / sha[:2] / sha[2:]

    def has(self, sha: str) -> bool:
        return self.blob_path(sha).is_file()

    def missing(self, hashes: Iterable[str]) -> list[str]:
        """The hashes (validated, de-duplicated, in order) that are not stored yet."""
        seen: dict[str, None] = {}
        for sha in hashes:
            check_sha256(sha)
            seen.setdefault(sha, None)
        return [sha for sha in seen if not self.has(sha)]

    def put_chunks(self, sha: str, chunks: Iterable[bytes], *, limit: int | None = None) -> int:
        """Store bytes that must hash to `sha`; return their size. Atomic: temp name, rename."""
        final = self.blob_path(sha)
        limit = self.max_blob_bytes if limit is None else limit
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root / "tmp", prefix="blob-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(
                            f"file is larger than the upload limit of {limit} bytes — "
                            "raise WANHE_MAX_UPLOAD_BYTES on the server or split the file"
                        )
                    digest.update(chunk)
                    f.write(chunk)
            actual = digest.hexdigest()
            if actual != sha:
                raise HashMismatch(
                    f"the uploaded bytes hash to {actual}, not {sha} — the upload was corrupted "
                    "or sent under the wrong name; send it again"
                )
            final.parent.mkdir(parents=True, exist_ok=True)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        return size

    def put_bytes(self, sha: str, data: bytes) -> int:
        return self.put_chunks(sha, [data])

    def put_file(self, sha: str, f: IO[bytes], *, limit: int | None = None) -> int:
        return self.put_chunks(sha, iter(lambda: f.read(_CHUNK), b""), limit=limit)

    # ------------------------------------------------------------------ checkouts

    def job_dir(self, job_id: int) -> Path:
        return self.root / "jobs" / str(int(job_id))

    def output_dir(self, job_id: int) -> Path:
        return self.job_dir(job_id) / "output"

    def new_staging(self) -> Path:
        folder = self.root / "staging" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def checkout(self, folder: Path, files: dict[str, str]) -> dict[str, Path]:
        """Materialise `files` (relative path -> sha256) into `folder/input`; return the paths.

        Hard links where the file system allows (a blob is stored once however many jobs use
        it), copies otherwise. Refuses unsafe paths and a path used both as file and folder.
        """
        checked = {str(safe_relpath(p)): check_sha256(sha) for p, sha in files.items()}
        names = set(checked)
        for name in names:
            parent = PurePosixPath(name).parent
            while str(parent) not in (".", ""):
                if str(parent) in names:
                    raise UnsafePath(f"{parent} is sent both as a file and as a folder")
                parent = parent.parent
        missing = [sha for sha in set(checked.values()) if not self.has(sha)]
        if missing:
            raise StorageError(
                f"{len(missing)} file(s) were never uploaded (first: {sorted(missing)[0]}) — "
                "upload them with PUT /api/blobs/{sha256} first"
            )
        base = folder / "input"
        base.mkdir(parents=True, exist_ok=True)
        placed: dict[str, Path] = {}
        for name, sha in checked.items():
            target = base / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.parent.resolve() != (base.resolve() / name).parent:
                raise UnsafePath(f"path {name!r} leads out of the job's folder")
            blob = self.blob_path(sha)
            try:
                os.link(blob, target)
            except OSError:
                shutil.copyfile(blob, target)
            placed[name] = target
        return placed

    def adopt(self, staging: Path, job_id: int) -> Path:
        """Move a staged checkout to its job's folder (one rename); return the job folder."""
        target = self.job_dir(job_id)
        if target.exists():  # left over from an id the database handed out before and rolled back
            trash = self.root / "staging" / f"stale-{job_id}-{uuid.uuid4().hex[:8]}"
            os.replace(target, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, target)
        return target

    def discard(self, folder: Path) -> None:
        if folder.resolve().is_relative_to(self.root.resolve()):
            shutil.rmtree(folder, ignore_errors=True)

    # ------------------------------------------------------------------ outputs

    def job_file(self, job_id: int, relative: str) -> Path:
        """An existing file under the job's output folder (UnsafePath, FileNotFoundError)."""
        path = inside(self.output_dir(job_id), relative)
        if not path.is_file():
            raise FileNotFoundError(relative)
        return path

    def outputs(self, job_id: int) -> Iterator[tuple[str, int]]:
        """(relative path, size) of every finished output file of a job."""
        base = self.output_dir(job_id)
        if not base.is_dir():
            return
        for path in sorted(base.rglob("*")):
            if path.is_file() and not path.is_symlink() and not path.name.startswith("."):
                yield path.relative_to(base).as_posix(), path.stat().st_size
