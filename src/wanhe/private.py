"""The farm's own files are private to the user the farm runs as: the database (and SQLite's
-wal and -shm, which SQLite creates with the database file's mode), the storage and work
folders, Ray's session folder and its token. Folders the farm creates are 0700, files 0600;
ones that exist already lose the group's and others' read and write bits (a folder keeps its
search bit, so a project user the farm lets into one job's folder can still pass through).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

FOLDER_MODE = 0o700
FILE_MODE = 0o600


def _tighten(path: Path) -> None:
    """Drop group/other read and write from an existing path of ours (never another user's)."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if info.st_uid != os.geteuid() or stat.S_ISLNK(info.st_mode):
        return
    mode = stat.S_IMODE(info.st_mode)
    if mode & 0o066:
        os.chmod(path, mode & ~0o066)


def private_folder(path: Path) -> Path:
    """`path` as a folder: made 0700 when missing (its missing parents with the default
    mode); one that exists is left as it is."""
    if path.is_dir():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        path.mkdir(mode=FOLDER_MODE)
    except FileExistsError:  # made by another process a moment ago
        return path
    os.chmod(path, FOLDER_MODE)  # mkdir's mode passes through the umask
    return path


def private_file(path: Path) -> Path:
    """`path` as a file only this user may read: created empty 0600, or tightened."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except FileExistsError:
        _tighten(path)
        return path
    os.close(fd)
    return path
