"""Errors raised by :mod:`wanhe.imaging`.

Every error is an :class:`ImagingError`. Callers (the engine) can treat
:class:`OutputError` as possibly transient (disk full, permissions on a mount) and the
other errors as a problem with the input that a retry will not fix.
"""

from __future__ import annotations

import errno as errno_codes
import os
from pathlib import Path


class ImagingError(Exception):
    """Base class of every error raised by :mod:`wanhe.imaging`."""


class ExrReadError(ImagingError):
    """An EXR file is missing, truncated, corrupt or uses a layout we do not support."""


class PassNotFoundError(ImagingError, LookupError):
    """A frame does not contain the requested render pass."""

    def __str__(self) -> str:  # LookupError would otherwise quote the message
        return str(self.args[0]) if self.args else ""


class AssemblyError(ImagingError):
    """Tiles or sample chunks do not fit together into one frame."""


class DenoiseError(ImagingError):
    """A frame cannot be denoised (missing Combined pass, bad auxiliary passes, OIDN failure)."""


class VideoError(ImagingError):
    """Preview frames cannot be turned into a video or contact sheet."""


def _fix_for(code: int | None, folder: Path) -> str:
    if code in (errno_codes.ENOSPC, errno_codes.EDQUOT):
        return (
            f"the disk holding {folder} is full (or over quota): free space there, "
            "or point the output at a larger volume, then retry the task"
        )
    if code in (errno_codes.EACCES, errno_codes.EPERM):
        return f"{folder} is not writable by this process: fix its permissions or owner"
    if code == errno_codes.EROFS:
        return f"{folder} is on a read-only file system: choose a writable output folder"
    if code == errno_codes.ENOENT:
        return f"create the folder {folder} first (or check the output path for typos)"
    if code == errno_codes.ENOTDIR:
        return f"a part of {folder} is a file, not a folder: fix the output path"
    return "check that the output folder exists, is writable and has free space, then retry"


class OutputError(ImagingError):
    """Writing an output file failed; no partial file was left behind.

    ``path`` is the file that was meant to be written, ``errno`` the OS error code when
    there was one (``errno.ENOSPC`` for a full disk).
    """

    def __init__(self, path: os.PathLike[str] | str, cause: BaseException | None = None) -> None:
        self.path = Path(path)
        self.errno: int | None = getattr(cause, "errno", None)
        reason = (
            os.strerror(self.errno)
            if self.errno is not None
            else (str(cause) if cause is not None else "unknown error")
        )
        fix = _fix_for(self.errno, self.path.parent)
        super().__init__(f"cannot write {self.path}: {reason}. Fix: {fix}.")
