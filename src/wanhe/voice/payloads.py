"""The typed payloads of a storyboard's `voice` task (one line spoken in one language) and
`dub` task (a translated line fitted into the original's slot) (`wanhe.payloads`: built where
the storyboard is compiled, read where the voice executor runs them)."""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import Field

from wanhe.payloads import TaskPayload


class VoiceTask(TaskPayload):
    """A `voice` task's payload."""

    kind: ClassVar[str] = "voice"
    hooks: ClassVar[tuple[str, ...]] = ("job_root",)

    line: str = Field(min_length=1)
    lang: str = Field(min_length=1)
    character: str = ""
    text: str
    voice: dict[str, Any]  # a wanhe.story.schema.Voice, as JSON (the executor reads it so)
    output: str = Field(min_length=1, description="the take's WAV in the story cache")
    cache_key: str = ""
    take: int = Field(default=1, ge=1)
    seed: int = 1
    job_root: str | None = None  # set on the farm: the job's folder, its files stay inside


class DubTask(TaskPayload):
    """A `dub` task's payload."""

    kind: ClassVar[str] = "dub"
    hooks: ClassVar[tuple[str, ...]] = ("job_root",)

    line: str = Field(min_length=1)
    lang: str = Field(min_length=1)
    input: str = Field(min_length=1, description="the translated take")
    original: str = Field(min_length=1, description="the original language's take")
    max_stretch: float = Field(gt=0)
    output: str = Field(min_length=1)
    job_root: str | None = None
