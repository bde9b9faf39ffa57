"""What the estimate's probe job types (`gen_probe`, `story_probe`) share: they are the farm's
own kinds, made whole by `POST /api/estimate` (its spec and tasks stored as they are) and
never submitted by a user nor compiled from options; they take no main file; and a probe that
fails is not retried, so that the estimate says why at once.

Not a kind itself: the registry imports no module whose name starts with `_`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from pydantic import BaseModel

from wanhe.jobtypes.base import CompiledJob, InputError, Inspected, JobFolder, JobType
from wanhe.lifecycle import RetryRules


class EstimateProbeJob(JobType):
    """A probe job of `POST /api/estimate` with `kind: <estimate_kind>`."""

    estimate_kind: ClassVar[str]  # the estimate's `kind` that makes these jobs ("gen", "story")
    main_file = "none"
    internal = True

    def check(self, options: BaseModel) -> None:
        raise InputError(
            "kind",
            f"{self.kind} jobs are the farm's own: POST /api/estimate "
            f"with kind {self.estimate_kind} makes them",
        )

    def compile(
        self, options: BaseModel, inspected: Inspected, main: Path | None, folder: JobFolder
    ) -> CompiledJob:
        raise InputError("kind", f"{self.kind} jobs are made by POST /api/estimate")

    def retry_rules(self, spec: dict[str, Any]) -> RetryRules:
        return RetryRules(max_attempts=1)
