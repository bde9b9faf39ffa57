"""Packing a scene for the farm: find its files with blender-asset-tracer, hash them, upload
only what the farm lacks (content addressing), small files in tar batches, large ones alone.

Files keep their layout relative to the folder that holds them all, so the scene's relative
(`//…`) paths resolve the same on the farm. Symlinks are read through: the farm gets content,
never links. The requests go through a `Transport`, which each client implements over its
own HTTP library and which raises its own `TransferError` for a refusal.
"""

from __future__ import annotations

import io
import os
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from .errors import PackError
from .hashing import sha256_file

SMALL_FILE = 1 << 20  # files below this go in tar batches
BATCH_BYTES = 32 << 20
BATCH_FILES = 2000
QUERY_CHUNK = 10_000

Progress = Callable[[int, int], None]
_Item = tuple[str, Path, int]  # (sha256, local path, bytes)


class Transport(Protocol):
    """The two requests an upload makes, over the client's own HTTP library."""

    def post_json(self, path: str, payload: dict[str, Any]) -> Any:
        """POST `payload` as JSON; the JSON answer."""

    def send(self, method: str, path: str, body: bytes | IO[bytes], *, content_type: str,
             size: int) -> None:
        """Send `size` bytes (`body`: bytes, or a file open for reading) as the request body."""


@dataclass
class Bundle:
    root: Path
    main: str
    files: dict[str, Path]  # relative path -> local path
    hashes: dict[str, str] = field(default_factory=dict)  # relative path -> sha256
    missing_local: list[str] = field(default_factory=list)
    absolute_refs: list[str] = field(default_factory=list)
    missing_caches: list[str] = field(default_factory=list)  # missing point caches (re-simulated)


def _norm(path: Path) -> Path:
    return Path(os.path.normpath(path.absolute()))


def collect(scene: Path, check: Callable[[Path], None] | None = None) -> Bundle:
    """The scene and every external file it uses that exists here (PackError otherwise).
    `check` vets the scene file first (the CLI passes wanhe's own .blend check, whose
    messages say what is wrong with it)."""
    try:
        from blender_asset_tracer import trace
    except ImportError as exc:  # the add-on's wheel is not on sys.path
        raise PackError(f"blender-asset-tracer is missing ({exc}) — reinstall the add-on "
                        "built by `wanhe addon build`") from None
    scene = _norm(scene.expanduser())
    if check is not None:
        check(scene)
    if not scene.is_file():
        raise PackError(f"cannot pack {scene}: the file does not exist — save the scene first")
    found: dict[Path, None] = {scene: None}
    missing: list[str] = []
    absolute: list[str] = []
    caches: list[str] = []
    try:
        for usage in trace.deps(scene):
            raw = bytes(usage.asset_path)
            if not raw.startswith(b"//"):
                absolute.append(raw.decode("utf-8", "replace"))
            paths = list(usage.files()) if usage.is_sequence else [usage.abspath]
            if not paths and getattr(usage.block, "dna_type_name", "") == "PointCache":
                caches.append(str(usage.abspath))
            if not paths:
                missing.append(str(usage.abspath))
            for path in paths:
                path = _norm(Path(path))
                if path.is_file():
                    found[path] = None
                else:
                    missing.append(str(path))
    except Exception as exc:  # BAT's own errors: a truncated or foreign file, a bad library
        raise PackError(f"cannot pack {scene.name}: {type(exc).__name__}: "
                        f"{' '.join(str(exc).split())[:200]}") from None
    root = Path(os.path.commonpath([str(p.parent) for p in found]))
    files = {p.relative_to(root).as_posix(): p for p in found}
    return Bundle(root, scene.relative_to(root).as_posix(), files, {},
                  list(dict.fromkeys(missing)), absolute, caches)


def _hash(path: Path) -> str:
    try:
        return sha256_file(path)
    except OSError as exc:
        raise PackError(f"cannot read {path}: {exc.strerror or exc}") from None


def hash_all(bundle: Bundle, *, threads: int = 8) -> None:
    """Fill `bundle.hashes`, `threads` files at a time."""
    names = list(bundle.files)
    with ThreadPoolExecutor(threads) as pool:
        digests = pool.map(lambda n: _hash(bundle.files[n]), names)
        bundle.hashes.update(zip(names, digests, strict=True))


def _batches(items: list[_Item]) -> Iterator[list[_Item]]:
    batch: list[_Item] = []
    size = 0
    for item in items:
        if batch and (size + item[2] > BATCH_BYTES or len(batch) >= BATCH_FILES):
            yield batch
            batch, size = [], 0
        batch.append(item)
        size += item[2]
    if batch:
        yield batch


def _tar(batch: list[_Item]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for sha, path, _size in batch:
            data = path.read_bytes()
            info = tarfile.TarInfo(sha)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def missing_on_farm(transport: Transport, hashes: list[str]) -> list[str]:
    """The hashes the farm has no blob of, asked in chunks."""
    missing: list[str] = []
    for i in range(0, len(hashes), QUERY_CHUNK):
        answer = transport.post_json("/api/blobs/missing", {"hashes": hashes[i:i + QUERY_CHUNK]})
        missing.extend(answer["missing"])
    return missing


def upload(transport: Transport, bundle: Bundle, *, threads: int = 4,
           on_progress: Progress | None = None) -> tuple[int, int]:
    """Send what the farm lacks, `threads` requests at a time; (files sent, bytes sent).
    `on_progress(done, total)` gets the bytes sent so far, 0 of them first."""
    by_hash = {sha: bundle.files[name] for name, sha in bundle.hashes.items()}
    missing = missing_on_farm(transport, list(by_hash))
    items = [(sha, by_hash[sha], by_hash[sha].stat().st_size) for sha in missing]
    total = sum(i[2] for i in items)
    done = 0
    lock = threading.Lock()

    def progress(n: int) -> None:
        nonlocal done
        with lock:
            done += n
            if on_progress is not None:
                on_progress(done, total)

    def send_batch(batch: list[_Item]) -> None:
        data = _tar(batch)
        transport.send("POST", "/api/blobs/batch", data, content_type="application/x-tar",
                       size=len(data))
        progress(sum(i[2] for i in batch))

    def send_large(item: _Item) -> None:
        sha, path, size = item
        with path.open("rb") as f:
            transport.send("PUT", f"/api/blobs/{sha}", f,
                           content_type="application/octet-stream", size=size)
        progress(size)

    progress(0)
    with ThreadPoolExecutor(threads) as pool:
        small = [i for i in items if i[2] < SMALL_FILE]
        futures = [pool.submit(send_batch, b) for b in _batches(small)]
        futures += [pool.submit(send_large, i) for i in items if i[2] >= SMALL_FILE]
        for future in futures:
            future.result()
    return len(items), total
