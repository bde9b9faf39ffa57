"""A done task's files exist, or it is not done.

A task declares the files it makes in its payload, by the farm's convention: `output` (a file
path with a suffix; a folder, such as an OpenJD job's output folder, names no file) and each
of its `candidates`' `output` (AI generation). The worker checks them when the executor says
it succeeded (a full disk can make a writer report success with nothing written), and a retry
of a job re-queues the done tasks whose files are gone.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import PurePath
from typing import Any

from wanhe.model import TaskState
from wanhe.store.rows import TaskRow


def declared_outputs(payload: dict[str, Any]) -> list[str]:
    """The files a task with this payload says it makes."""
    found: list[str] = []
    output = payload.get("output")
    if isinstance(output, str) and output and PurePath(output).suffix:
        found.append(output)
    for candidate in payload.get("candidates") or []:
        path = candidate.get("output") if isinstance(candidate, dict) else None
        if isinstance(path, str) and path:
            found.append(path)
    return found


def missing_outputs(payload: dict[str, Any]) -> list[str]:
    """Declared files that are not there."""
    return [path for path in declared_outputs(payload) if not os.path.exists(path)]


def stale_done_tasks(tasks: Sequence[TaskRow]) -> list[int]:
    """Done tasks to run again because a file they made is gone: each such task, and every
    done task of the same frame (its tiles and intermediate files may be gone with it, and a
    frame is re-made whole, as `wanhe render` does when it resumes)."""
    stale_frames: set[int] = set()
    stale: set[int] = set()
    for task in tasks:
        if task.state is TaskState.DONE and missing_outputs(task.payload):
            stale.add(task.id)
            if task.frame is not None:
                stale_frames.add(task.frame)
    if stale_frames:
        stale |= {t.id for t in tasks
                  if t.state is TaskState.DONE and t.frame in stale_frames}
    return sorted(stale)
