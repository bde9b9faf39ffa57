"""Atomic file output: write to a temporary name, fsync, rename into place.

A task that dies half-way (killed, disk full, bug) never leaves a half-written output under
the real name, and a finished output is never seen half-written by a reader.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from wanhe.imaging.errors import OutputError

__all__ = ["atomic_write", "temp_name_for"]


def temp_name_for(path: Path) -> Path:
    """The temporary sibling used while ``path`` is being written: ``.name.tmp-<random>``."""
    return path.with_name(f".{path.name}.tmp-{secrets.token_hex(6)}")


def _fsync_path(path: Path, *, directory: bool = False) -> None:
    flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


@contextlib.contextmanager
def atomic_write(path: os.PathLike[str] | str) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``path``; on success move it into place.

    The body must create and write the yielded path. When the body returns, the file is
    fsynced, renamed over ``path`` with :func:`os.replace` (atomic on POSIX) and the folder is
    fsynced so the rename survives a power cut. If anything fails the temporary file is removed;
    an :class:`OSError` (disk full, read-only folder, missing folder) is raised as
    :class:`OutputError` naming the path and the fix; other exceptions propagate unchanged.

    >>> with atomic_write(out) as tmp:          # doctest: +SKIP
    ...     tmp.write_bytes(data)
    """
    target = Path(path)
    tmp = temp_name_for(target)
    try:
        yield tmp
        if not tmp.exists():
            raise OutputError(target, RuntimeError("the writer produced no file"))
        _fsync_path(tmp)
        os.replace(tmp, target)
        with contextlib.suppress(OSError):  # not every file system can fsync a folder
            _fsync_path(target.parent, directory=True)
    except OutputError:
        _remove_quietly(tmp)
        raise
    except OSError as exc:
        _remove_quietly(tmp)
        raise OutputError(target, exc) from exc
    except BaseException:
        _remove_quietly(tmp)
        raise
