"""Errors raised by wanhe.blender.

`SceneError` carries a message meant for a person (what is wrong and what to do). The
`Blender*` errors describe the Blender subprocess; timeouts and crashes carry the usage the
killed process had accumulated during the task, because failed attempts are metered too.
"""

from __future__ import annotations

from typing import Any


class SceneError(Exception):
    """A scene file cannot be used; the message names the file, the problem and the fix."""


class BlenderError(Exception):
    """Base class of errors about the Blender subprocess."""


class BlenderTaskError(BlenderError):
    """Blender answered, but the task failed (bad request, unreadable scene, render error)."""


class _KilledOrDied(BlenderError):
    def __init__(
        self,
        message: str,
        *,
        wall_s: float = 0.0,
        cpu_s: float | None = None,
        peak_rss_bytes: int | None = None,
        log_tail: list[str] | None = None,
    ) -> None:
        super().__init__(message)
        self.wall_s = wall_s
        # CPU seconds the process tree used during this task, measured from outside
        # (None when the process could not be measured).
        self.cpu_s = cpu_s
        # Peak resident memory of the process over its lifetime (from wait4), not only the task.
        self.peak_rss_bytes = peak_rss_bytes
        self.log_tail = list(log_tail or [])


class BlenderTimeout(_KilledOrDied):
    """The task passed its wall-clock limit or printed nothing for too long; it was killed.

    `silent` says which: True when the log-silence limit ran out, False for the wall clock.
    """

    def __init__(self, message: str, *, silent: bool = False, **usage: Any) -> None:
        super().__init__(message, **usage)
        self.silent = silent


class BlenderCrashed(_KilledOrDied):
    """The Blender process exited or was killed while a task was running."""

    def __init__(
        self,
        message: str,
        *,
        returncode: int | None = None,
        wall_s: float = 0.0,
        cpu_s: float | None = None,
        peak_rss_bytes: int | None = None,
        log_tail: list[str] | None = None,
    ) -> None:
        super().__init__(
            message, wall_s=wall_s, cpu_s=cpu_s, peak_rss_bytes=peak_rss_bytes, log_tail=log_tail
        )
        # Popen convention: negative = killed by that signal number.
        self.returncode = returncode
