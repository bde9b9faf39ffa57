"""Typed task payloads: each task kind's payload is a pydantic model, built (and so
validated) where a job type compiles the task and read (validated again) where an executor
runs it. Stored as the JSON `stored()` gives, so the database holds plain JSON as before.

A payload model ignores keys it does not know and gives every field added after its first
stored rows a default: rows stored by an older wanhe still read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Self

from pydantic import BaseModel, ConfigDict, ValidationError


class PayloadError(ValueError):
    """A task's payload does not fit its kind's model: one line naming the field."""


class TaskPayload(BaseModel):
    """Base of every task kind's payload model."""

    model_config = ConfigDict(extra="ignore")
    kind: ClassVar[str] = "task"
    hooks: ClassVar[tuple[str, ...]] = ()
    """Fields set after the task is compiled (the farm's `job_root`, a test's hook): stored
    only when set, so that `payload.setdefault(...)` still sets them."""

    @classmethod
    def read(cls, payload: Mapping[str, Any]) -> Self:
        """A stored payload, validated (PayloadError names the first wrong field)."""
        try:
            return cls.model_validate(dict(payload))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "payload"
            raise PayloadError(f"the {cls.kind} task's payload is not valid: {where}: "
                               f"{first['msg']}") from None

    def stored(self) -> dict[str, Any]:
        """The JSON-able dict the task row keeps."""
        unset = {name for name in self.hooks if getattr(self, name) is None}
        return self.model_dump(mode="json", exclude=unset)
