"""The typed payload of an OpenJD action task (`openjd`): which job file and step, the task's
parameter values, and where its session lives (`wanhe.payloads`: built where the job type
compiles it, read where the executor runs it)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from wanhe.payloads import TaskPayload


class ActionTask(TaskPayload):
    """An `openjd` task's payload."""

    kind: ClassVar[str] = "openjd"

    job: str = Field(min_length=1, description="the job's session key (one session per job)")
    job_file: str = Field(min_length=1, description="the job file (JSON) the host runs")
    job_root: str = Field(min_length=1, description="the job's folder on the farm")
    sessions: str = Field(min_length=1, description="where session folders are made")
    path_mapping: list[dict[str, str]] = Field(default_factory=list)
    outputs: list[dict[str, str | None]] = Field(default_factory=list)  # OUT/INOUT folders
    step: str = Field(min_length=1)
    params: dict[str, dict[str, Any]] = Field(
        default_factory=dict, description="task parameter name -> {type, value}")
    index: int = Field(default=0, ge=0, description="the task's place in its step")
    host: dict[str, Any] = Field(default_factory=dict, description="the step's host "
                                 "requirements (HostRequirements.to_json)")
    adaptive: dict[str, Any] | None = None  # an adaptive step's chunking (chunks.Adaptive)
    ledger: str | None = None  # where an adaptive step's slots claim their chunks

    @property
    def warm_key(self) -> str:
        return f"openjd:{self.job}:{self.step}"
