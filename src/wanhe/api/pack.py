"""`wanhe submit`'s packing: find a scene's files with blender-asset-tracer, hash them, upload
only what the farm lacks (content addressing), many small files per request.

Files keep their layout relative to the folder that holds them all, so the scene's relative
(`//…`) paths resolve the same on the farm. Symlinks are read through: the farm gets content,
never links.
"""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from wanhe.api.client import Client
from wanhe.storage import sha256_file

SMALL_FILE = 1 << 20  # files below this go in tar batches
BATCH_BYTES = 32 << 20
BATCH_FILES = 2000
QUERY_CHUNK = 10_000


@dataclass(slots=True)
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


def collect(scene: Path) -> Bundle:
    """The scene and every external file it uses that exists here."""
    from blender_asset_tracer import trace

    from wanhe.blender.inspect import check_blend_file

    scene = _norm(scene.expanduser())
    check_blend_file(scene)
    found: dict[Path, None] = {scene: None}
    missing: list[str] = []
    absolute: list[str] = []
    caches: list[str] = []
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
    root = Path(os.path.commonpath([str(p.parent) for p in found]))
    files = {p.relative_to(root).as_posix(): p for p in found}
    return Bundle(root, scene.relative_to(root).as_posix(), files, {},
                  list(dict.fromkeys(missing)), absolute, caches)


def hash_all(bundle: Bundle, threads: int = 8) -> None:
    names = list(bundle.files)
    with ThreadPoolExecutor(threads) as pool:
        for name, digest in zip(
            names, pool.map(lambda n: sha256_file(bundle.files[n]), names), strict=True
        ):
            bundle.hashes[name] = digest


def _batches(paths: list[tuple[str, Path, int]]) -> Iterator[list[tuple[str, Path, int]]]:
    batch: list[tuple[str, Path, int]] = []
    size = 0
    for item in paths:
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


def upload(
    client: Client, bundle: Bundle, *, threads: int = 4,
    on_progress: Callable[[int, int], None] | None = None,
) -> tuple[int, int]:
    """Send what the farm lacks; return (files sent, bytes sent)."""
    by_hash = {sha: bundle.files[name] for name, sha in bundle.hashes.items()}
    hashes = list(by_hash)
    missing: list[str] = []
    for i in range(0, len(hashes), QUERY_CHUNK):
        answer = client.json("POST", "/api/blobs/missing",
                             json={"hashes": hashes[i:i + QUERY_CHUNK]})
        missing.extend(answer["missing"])
    items = [(sha, by_hash[sha], by_hash[sha].stat().st_size) for sha in missing]
    small = [i for i in items if i[2] < SMALL_FILE]
    large = [i for i in items if i[2] >= SMALL_FILE]
    total_bytes = sum(i[2] for i in items)
    done = [0]

    def progress(n: int) -> None:
        done[0] += n
        if on_progress is not None:
            on_progress(done[0], total_bytes)

    def send_batch(batch: list[tuple[str, Path, int]]) -> None:
        client.request("POST", "/api/blobs/batch", content=_tar(batch),
                       headers={"Content-Type": "application/x-tar"})
        progress(sum(i[2] for i in batch))

    def send_large(item: tuple[str, Path, int]) -> None:
        sha, path, size = item
        with path.open("rb") as f:
            client.request("PUT", f"/api/blobs/{sha}", content=f,
                           headers={"Content-Type": "application/octet-stream",
                                    "Content-Length": str(size)})
        progress(size)

    with ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(send_batch, b) for b in _batches(small)]
        futures += [pool.submit(send_large, item) for item in large]
        for future in futures:
            future.result()
    return len(items), total_bytes
