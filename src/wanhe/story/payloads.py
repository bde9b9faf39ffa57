"""The typed payloads of a storyboard's own tasks (`wanhe.payloads`: built where the
storyboard is compiled, `wanhe.story.plan`, read where the story executor runs them):
`lipsync` (a rigged shot's mouths keyed in a copy of its scene), `clip` (a shot's picture),
`track` (one language's dialogue) and `reel` (the deliverables). The shot, film and board are
the storyboard's own models, so a payload that reads is a storyboard that validates.

Every field added after the first stored rows has a default: rows stored by an older wanhe
still read. `job_root` is set by the farm after compiling (`confine_tasks`).
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from wanhe.ai.payloads import Candidate
from wanhe.payloads import TaskPayload
from wanhe.story.schema import Film, Shot, Storyboard

# paths are absolute, as the workers read them
ByLine = dict[str, dict[str, str]]  # line id -> language -> a take's WAV


class _StoryTask(TaskPayload):
    hooks: ClassVar[tuple[str, ...]] = ("job_root",)

    job_root: str | None = None  # set on the farm: the job's folder, its files stay inside


class LipsyncTask(_StoryTask):
    """A `lipsync` task's payload: the mouths of a shot's rigged speakers keyed from its lines'
    audio, in a content-named copy of its scene."""

    kind: ClassVar[str] = "lipsync"

    scene: str = Field(min_length=1, description="the shot's .blend")
    output: str = Field(min_length=1, description="the keyed copy (in the story cache)")
    shot: Shot
    film: Film
    lang: str = ""
    line_wavs: list[str] = Field(description="the original's takes: where each line falls")
    audio_wavs: list[str] = Field(default_factory=list,
                                   description="what the mouths say (empty: `line_wavs`)")
    phonemes: list[str] = Field(default_factory=list,
                                 description="each take's phoneme timings (empty: unknown)")
    frame_start: int
    frames: int = Field(ge=1)
    rigs: dict[str, dict[str, Any]] = Field(
        description="character -> its rig (`wanhe.story.schema.Rig`, as JSON)")


class ClipAI(BaseModel):
    """An AI shot's candidates and how one is chosen (`wanhe.story.plan.choose_candidate`)."""

    model_config = ConfigDict(extra="ignore")

    candidates: list[Candidate] = Field(min_length=1)
    scores: str = ""  # the scoring task's scores.json ("": not scored)
    pick: int | None = None


class ClipTask(_StoryTask):
    """A `clip` task's payload: the shot's picture (a still, an AI candidate or its rendered
    frames) as an H.264 clip, and its thumbnail."""

    kind: ClassVar[str] = "clip"

    shot: Shot
    film: Film
    line_wavs: list[str] = Field(description="the original's takes: the shot's length")
    output: str = Field(min_length=1)
    thumb: str = Field(min_length=1)
    exrs: list[str] = Field(default_factory=list, description="a Blender shot's frames")
    ai: ClipAI | None = None


class TrackTask(_StoryTask):
    """A `track` task's payload: one language's dialogue, every line at its place."""

    kind: ClassVar[str] = "track"

    board: Storyboard
    lang: str = Field(min_length=1)
    voices: ByLine
    dubs: ByLine = Field(default_factory=dict)
    output: str = Field(min_length=1)


class ReelTask(_StoryTask):
    """The `reel` task's payload: the reel, subtitles, editorial package, contact sheet and
    report from every clip and track."""

    kind: ClassVar[str] = "reel"

    board: Storyboard
    voices: ByLine
    dubs: ByLine = Field(default_factory=dict)
    clips: dict[str, str] = Field(description="shot id -> its clip")
    thumbs: dict[str, str] = Field(description="shot id -> its thumbnail")
    tracks: dict[str, str] = Field(description="language -> its dialogue track")
    output: str = Field(min_length=1, description="the job's output folder")
    lang_clips: dict[str, dict[str, str]] = Field(
        default_factory=dict, description="language -> shot id -> its clip lip-synced in it")
    files: list[str] = Field(default_factory=list, description="the reel's deliverables")
