"""Pack a saved .blend for the farm, as `wanhe submit` does: find its files with
blender-asset-tracer (bundled with the add-on as a wheel), hash them, upload only what the
project has not sent before (content addressing), small files in tar batches.

Files keep their layout relative to the folder that holds them all, so the scene's relative
(`//…`) paths resolve the same on the farm. Standard library and BAT only.
"""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from .farm import Farm, FarmError

SMALL_FILE = 1 << 20  # files below this go in tar batches
BATCH_BYTES = 32 << 20
BATCH_FILES = 2000
QUERY_CHUNK = 10_000
_BLOCK = 1 << 20

Progress = Callable[[int, int], None]


class PackError(FarmError):
    """A file that cannot be packed (unreadable, not a .blend, a broken library)."""


@dataclass
class Bundle:
    root: Path
    main: str
    files: dict[str, Path]  # relative path -> local path
    hashes: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    missing: list[str] = field(default_factory=list)
    absolute_refs: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(p.stat().st_size for p in self.files.values())


def _norm(path: Path) -> Path:
    return Path(os.path.normpath(path.absolute()))


def collect(scene: Path) -> Bundle:
    """The scene and every external file it uses that exists here (PackError otherwise)."""
    try:
        from blender_asset_tracer import trace
    except ImportError as exc:  # the wheel did not come with the add-on
        raise PackError(f"blender-asset-tracer is missing from the add-on ({exc}) — "
                        "reinstall the add-on built by `wanhe addon build`") from None
    scene = _norm(scene.expanduser())
    if not scene.is_file():
        raise PackError(f"cannot pack {scene}: the file does not exist — save the scene first")
    found: dict[Path, None] = {scene: None}
    missing: list[str] = []
    absolute: list[str] = []
    try:
        for usage in trace.deps(scene):
            raw = bytes(usage.asset_path)
            if not raw.startswith(b"//"):
                absolute.append(raw.decode("utf-8", "replace"))
            paths = list(usage.files()) if usage.is_sequence else [usage.abspath]
            if not paths:
                missing.append(str(usage.abspath))
            for path in paths:
                path = _norm(Path(path))
                if path.is_file():
                    found[path] = None
                else:
                    missing.append(str(path))
    except PackError:
        raise
    except Exception as exc:  # BAT's own errors: a truncated or foreign file, a bad library
        raise PackError(f"cannot pack {scene.name}: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:200]}") from None
    root = Path(os.path.commonpath([str(p.parent) for p in found]))
    files = {p.relative_to(root).as_posix(): p for p in found}
    return Bundle(root, scene.relative_to(root).as_posix(), files, {}, missing, absolute)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()


def hash_all(bundle: Bundle) -> None:
    for name, path in bundle.files.items():
        try:
            bundle.hashes[name] = sha256_file(path)
        except OSError as exc:
            raise PackError(f"cannot read {path}: {exc.strerror or exc}") from None


def _batches(items: list[tuple[str, Path, int]]) -> Iterator[list[tuple[str, Path, int]]]:
    batch: list[tuple[str, Path, int]] = []
    size = 0
    for item in items:
        if batch and (size + item[2] > BATCH_BYTES or len(batch) >= BATCH_FILES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[2]
    if batch:
        yield batch


def _tar(batch: list[tuple[str, Path, int]]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for sha, path, _size in batch:
            data = path.read_bytes()
            info = tarfile.TarInfo(sha)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def missing_on_farm(farm: Farm, hashes: list[str]) -> list[str]:
    missing: list[str] = []
    for i in range(0, len(hashes), QUERY_CHUNK):
        answer = farm.post("/api/blobs/missing", {"hashes": hashes[i : i + QUERY_CHUNK]})
        missing.extend(answer["missing"])
    return missing


def upload(farm: Farm, bundle: Bundle, on_progress: Progress | None = None) -> tuple[int, int]:
    """Send what the farm lacks; return (files sent, bytes sent). Sequential: one request at a
    time keeps Blender's own work responsive."""
    by_hash = {sha: bundle.files[name] for name, sha in bundle.hashes.items()}
    missing = missing_on_farm(farm, list(by_hash))
    items = [(sha, by_hash[sha], by_hash[sha].stat().st_size) for sha in missing]
    total = sum(i[2] for i in items)
    done = 0

    def progress(n: int) -> None:
        nonlocal done
        done += n
        if on_progress is not None:
            on_progress(done, total)

    if on_progress is not None:
        on_progress(0, total)
    for batch in _batches([i for i in items if i[2] < SMALL_FILE]):
        with farm.open("POST", "/api/blobs/batch", body=_tar(batch),
                       headers={"Content-Type": "application/x-tar"}, timeout=600):
            pass
        progress(sum(i[2] for i in batch))
    for sha, path, size in (i for i in items if i[2] >= SMALL_FILE):
        with path.open("rb") as f, farm.open(
            "PUT", f"/api/blobs/{sha}", body=f, timeout=600,
            headers={"Content-Type": "application/octet-stream", "Content-Length": str(size)},
        ):
            pass
        progress(size)
    return len(items), total
