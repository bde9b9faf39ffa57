"""Check a .blend before rendering it: is it a readable Blender file, what does it ask for,
which external files does it need and which of those are missing.

Cheap checks come first and need no Blender (existence, magic bytes, compression, the
end-of-file block, BAT's parse); only then is a short-lived Blender started to read settings.
"""

from __future__ import annotations

import gzip
import os
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from pydantic import ConfigDict, Field

from wanhe.blender.errors import BlenderCrashed, BlenderTaskError, BlenderTimeout, SceneError
from wanhe.blender.protocol import SceneInfo
from wanhe.blender.runner import BlenderProcess

_BLEND_MAGIC = b"BLENDER"
_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_GZIP_MAGIC = b"\x1f\x8b"
_CHUNK = 1 << 20


class SceneReport(SceneInfo):
    """SceneInfo plus the scene's external files (textures, libraries, caches)."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    path: Path
    dependencies: list[Path]
    missing: list[Path]
    missing_caches: list[Path] = Field(default_factory=list)  # missing point caches
    # On the farm: files the scene names outside the job's own (never looked at, never shown
    # to its render)
    outside: list[Path] = Field(default_factory=list)

    @property
    def texture_bytes(self) -> int:
        """Bytes on disk of the image files the scene uses (for the memory estimate)."""
        from wanhe.blender.memory import TEXTURE_SUFFIXES

        total = 0
        for dep in set(self.dependencies):
            if dep.suffix.lower() in TEXTURE_SUFFIXES:
                try:
                    total += dep.stat().st_size
                except OSError:
                    continue
        return total

    @property
    def blend_bytes(self) -> int:
        try:
            return self.path.stat().st_size
        except OSError:
            return 0

    @property
    def external_files(self) -> int:
        """Every external file the scene names, found or missing."""
        return len(set(self.dependencies) | set(self.missing))


def inspect_scene(
    path: str | Path,
    blender: str | None = None,
    *,
    timeout_s: float = 120.0,
    process: BlenderProcess | None = None,
    within: Path | None = None,
) -> SceneReport:
    """Validate `path` and report its settings and dependencies. Raises SceneError.

    Blender runs in a short-lived process, or in `process` if given (left running, with the
    scene loaded, ready to render it). `within` (a farm job's input folder): an external
    file outside it is reported in `outside`, unlooked-at — whether it exists on the farm is
    not the submitter's to learn.
    """
    path = Path(path).expanduser().absolute()
    check_blend_file(path)
    own = process is None
    bp = BlenderProcess(blender) if process is None else process
    try:
        bp.spawn()  # Blender loads while BAT reads the file: two processes, two cores
        deps, missing, caches, outside = trace_dependencies(path, within)
        try:
            info = bp.inspect(path, timeout_s=timeout_s)
        except BlenderTaskError as e:
            raise SceneError(
                f"{path} could not be opened by Blender ({e}) — the file may be truncated or "
                "corrupt; re-save it from Blender or copy it again"
            ) from None
        except (BlenderTimeout, BlenderCrashed) as e:
            raise SceneError(
                f"Blender failed while reading {path} ({str(e).splitlines()[0]}) — the file may "
                "be corrupt or need a newer Blender; open it in Blender and re-save it"
            ) from None
    finally:
        if own:
            bp.kill()  # it only read the scene: nothing to wait for (a quit takes ~0.3 s)
    return SceneReport(**info.model_dump(), path=path, dependencies=deps, missing=missing,
                       missing_caches=caches, outside=outside)


def check_blend_file(path: Path) -> None:
    """Raise SceneError unless `path` looks like a complete .blend (plain, zstd or gzip)."""
    if not path.exists():
        raise SceneError(f"scene file not found: {path} — check the path")
    if path.is_dir():
        raise SceneError(f"{path} is a directory, not a .blend file — pass the .blend inside it")
    if not path.is_file():
        raise SceneError(f"{path} is not a regular file — pass a file saved by Blender")
    try:
        with path.open("rb") as f:
            head = f.read(8)
            f.seek(0)
            if head.startswith(_BLEND_MAGIC):
                kind, stream = "", _raw_chunks(f)
            elif head.startswith(_ZSTD_MAGIC):
                kind, stream = "zstd-compressed ", _zstd_chunks(f)
            elif head.startswith(_GZIP_MAGIC):
                kind, stream = "gzip-compressed ", _gzip_chunks(f)
            else:
                raise SceneError(
                    f"{path} is not a .blend file ({_describe_head(head)}) — pass a file saved "
                    "by Blender"
                )
            first, tail = _first_and_tail(stream)
    except SceneError:
        raise
    except PermissionError:
        raise SceneError(f"cannot read {path}: permission denied — check its permissions") from None
    except (OSError, EOFError, zlib.error, ValueError) as e:
        # zstandard raises ZstdError (a subclass of Exception only) on corrupt frames.
        raise SceneError(
            f"{path} is truncated or corrupt ({e}) — re-save it from Blender or copy it again"
        ) from None
    except Exception as e:
        if type(e).__name__ == "ZstdError":
            raise SceneError(
                f"{path} is truncated or corrupt ({e}) — re-save it from Blender or copy it again"
            ) from None
        raise
    if not first.startswith(_BLEND_MAGIC):
        raise SceneError(
            f"{path} is not a .blend file (a {kind}file that does not hold one) — pass a file "
            "saved by Blender"
        )
    # Every .blend ends with an ENDB block header (followed by at most a few zero bytes);
    # a file cut short anywhere lacks it.
    if b"ENDB" not in tail:
        raise SceneError(
            f"{path} is truncated or corrupt (its {kind}data ends without Blender's end-of-file "
            "block) — re-save it from Blender or copy it again"
        )


def trace_dependencies(
    path: Path, within: Path | None = None,
) -> tuple[list[Path], list[Path], list[Path], list[Path]]:
    """External files the scene uses (via BAT), which of them do not exist, which of the
    missing ones are point caches (Blender simulates those again instead), and (`within`
    given) which lie outside `within`: those are only named, never looked at."""
    from blender_asset_tracer import trace

    deps: dict[Path, None] = {}
    missing: dict[Path, None] = {}
    caches: dict[Path, None] = {}
    outside: dict[Path, None] = {}
    root = within
    roots = set() if within is None else {Path(os.path.normpath(within.absolute())),
                                          within.resolve()}

    def out_of_bounds(target: Path) -> bool:
        folded = Path(os.path.normpath(target))
        return bool(roots) and not any(folded == r or r in folded.parents for r in roots)

    try:
        for usage in trace.deps(path):
            if out_of_bounds(usage.abspath):
                outside[usage.abspath] = None
                continue
            if (getattr(usage.block, "dna_type_name", "") == "PointCache"
                    and not list(usage.files())):
                caches[usage.abspath] = None
                missing[usage.abspath] = None
                continue
            if usage.is_sequence:
                # abspath is a pattern (frame '#'s, <UDIM>); files() expands what exists.
                files = list(usage.files())
                if not files:
                    missing[usage.abspath] = None
                for f in files:
                    deps[f] = None
            else:
                deps[usage.abspath] = None
                if not usage.abspath.exists():
                    missing[usage.abspath] = None
    except Exception as e:  # BAT raises its own parse errors, OSError, struct.error, ...
        raise SceneError(
            f"{path} is truncated or corrupt (cannot parse it: {type(e).__name__}: {e}) — "
            "re-save it from Blender or copy it again"
        ) from None
    if root is not None:  # a link inside the job's files may still point out of them
        for dep in list(deps):
            if out_of_bounds(dep.resolve()):
                del deps[dep]
                missing.pop(dep, None)
                outside[dep] = None
    return list(deps), list(missing), list(caches), list(outside)


def _describe_head(head: bytes) -> str:
    if not head:
        return "it is empty"
    try:
        text = head.decode("utf-8")
        if text.isprintable() or text.strip().isprintable():
            return f"it starts with text {text!r}"
    except UnicodeDecodeError:
        pass
    return f"it starts with bytes {head.hex(' ')}"


def _raw_chunks(f: IO[bytes]) -> Iterator[bytes]:
    while chunk := f.read(_CHUNK):
        yield chunk


def _zstd_chunks(f: IO[bytes]) -> Iterator[bytes]:
    import zstandard  # a dependency of bpy; Blender writes zstd .blend files by default

    reader = zstandard.ZstdDecompressor().stream_reader(f, read_across_frames=True)
    while chunk := reader.read(_CHUNK):
        yield chunk


def _gzip_chunks(f: IO[bytes]) -> Iterator[bytes]:
    with gzip.GzipFile(fileobj=f) as g:
        while chunk := g.read(_CHUNK):
            yield chunk


def _first_and_tail(chunks: Iterator[bytes]) -> tuple[bytes, bytes]:
    """The first 16 bytes and the last 64 bytes of the (decompressed) stream."""
    first = b""
    tail = b""
    for chunk in chunks:
        if len(first) < 16:
            first = (first + chunk)[:16]
        tail = (tail + chunk)[-64:]
    return first, tail
