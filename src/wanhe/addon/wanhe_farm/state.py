"""What the add-on knows between redraws: the farm's recent jobs, the connection test, the last
submission, the reports it gave. One instance per Blender session; pure Python."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from .background import Runner

FINAL_STATES = ("done", "failed", "cancelled")
REFRESH_ACTIVE_S = 3.0  # jobs listed, some still running
REFRESH_IDLE_S = 30.0


@dataclass
class State:
    runner: Runner = field(default_factory=Runner)
    jobs: list[dict[str, Any]] = field(default_factory=list)
    jobs_error: str = ""
    jobs_at: float = 0.0  # monotonic time of the last refresh (0: never)
    connection: list[str] = field(default_factory=list)
    connection_ok: bool = False
    last_job: dict[str, Any] | None = None  # {"id", "url", "name"}
    reports: list[tuple[str, str]] = field(default_factory=list)  # (level, line), newest last
    estimates: dict[str, dict[str, Any]] = field(default_factory=dict)  # job name -> past job
    farm_estimate: list[str] = field(default_factory=list)  # the Estimate button's answer

    def report(self, level: str, text: str) -> None:
        self.reports.append((level, text))
        del self.reports[:-50]

    @property
    def last_report(self) -> tuple[str, str] | None:
        return self.reports[-1] if self.reports else None

    def refresh_due(self, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        if self.jobs_at == 0.0:
            return True
        active = any(j.get("state") not in FINAL_STATES for j in self.jobs)
        return now - self.jobs_at >= (REFRESH_ACTIVE_S if active else REFRESH_IDLE_S)

    def job(self, job_id: int) -> dict[str, Any] | None:
        return next((j for j in self.jobs if int(j.get("id", -1)) == job_id), None)


STATE = State()
