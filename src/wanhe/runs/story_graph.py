"""A storyboard's farm task graph with each task's estimated seconds: what `wanhe estimate
STORY --machines N --cores C [--gpus G] [--deadline T]` schedules.

The graph is the job's own (`wanhe.story.plan.compile_story`: the tasks the farm would run,
with their dependencies and the workers they hold); each task's seconds come from the
per-part estimate (`wanhe.runs.estimate_story`):

- voice: its line's characters at its voice's probed rate; the first voice task carries a
  worker's Piper start (counted once, as in the part);
- lipsync, render: the shot's lip sync probe, and each frame's share of the shot's Blender
  estimate (the cost model's per-frame costs, scaled to the part: loads included);
- gen: its candidates at the shot's per-candidate cost; a shot's first task carries the
  model's load and the job's first the worker's start (counted once, as in the part);
- clip, reel: the assembly probe's per-frame cost times their frames;
- dub, track, score: not probed (seconds): 0.

A task holds the CPU slots and GPUs its resources ask for; the frames of a Blender shot with
a cached render would not run on the farm, but the estimate counts them all (as the parts do).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanhe.estimate.workers import GraphTask

__all__ = ["TaskCosts", "story_graph"]


@dataclass
class TaskCosts:
    """Seconds per task, as the parts reckoned them."""

    voices: dict[str, float] = field(default_factory=dict)  # "voice/<line>/<lang>"
    voice_start_s: float = 0.0
    frames: dict[str, dict[int, float]] = field(default_factory=dict)  # shot → frame → s
    lipsync: dict[str, float] = field(default_factory=dict)  # shot → s (one language)
    clip_frame_s: float = 0.0  # assembly: seconds per frame encoded
    clip_frames: dict[str, int] = field(default_factory=dict)  # shot → its clip's frames
    reel_frames: int = 0  # every reel's frames, all languages
    gen: dict[str, tuple[float, float]] = field(default_factory=dict)  # shot → (each, cold)
    gen_start_s: float = 0.0

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TaskCosts:
        """From `dataclasses.asdict` of one, through JSON (its frames' keys are text)."""
        made = cls(**data)
        made.frames = {shot: {int(f): float(s) for f, s in frames.items()}
                       for shot, frames in data["frames"].items()}
        made.gen = {shot: (float(e), float(c)) for shot, (e, c) in data["gen"].items()}
        return made


def _seconds(task: Any, costs: TaskCosts, first: set[str], shots: dict[str, str]) -> float:
    """`shots`: each task tag (`<shot>`, or `<shot>.<lang>` for a lip-synced language) → its
    shot."""
    kind, key = task.kind, task.key
    if kind == "voice":
        extra = costs.voice_start_s if "voice" not in first else 0.0
        first.add("voice")
        return costs.voices.get(key, 0.0) + extra
    if kind == "render":
        tag, frame = key.removeprefix("render/").rsplit("/", 1)
        return costs.frames.get(shots[tag], {}).get(int(frame), 0.0)
    if kind == "lipsync":
        return costs.lipsync.get(shots[key.removeprefix("lipsync/")], 0.0)
    if kind == "clip":
        return costs.clip_frame_s * costs.clip_frames.get(shots[key.removeprefix("clip/")], 0)
    if kind == "reel":
        return costs.clip_frame_s * costs.reel_frames
    if kind == "gen":
        shot = str(task.payload["shot_name"])
        each, cold = costs.gen.get(shot, (0.0, 0.0))
        seconds = each * len(task.payload["candidates"])
        if shot not in first:
            first.add(shot)
            seconds += cold
        if "gen" not in first:
            first.add("gen")
            seconds += costs.gen_start_s
        return seconds
    return 0.0  # dub, track, score: not probed


def story_graph(board: Any, base: Path, facts: dict[str, Any], costs: TaskCosts,
                seconds: dict[str, float] | None = None) -> tuple[list[GraphTask], dict[str, int]]:
    """The job's tasks in its order, each with its seconds, dependencies and workers; and
    how many tasks of each kind. `seconds`: each task's by its key instead (a past run's)."""
    from wanhe.story.plan import Layout, compile_story

    root = Path("/wanhe-estimate")  # the graph only names its files: nothing is written
    specs = compile_story(board, base, facts, Layout(root / "out", root / "work",
                                                     root / "cache"))
    index = {t.key: i for i, t in enumerate(specs)}
    first: set[str] = set()
    shots = {shot.id: shot.id for shot in board.shots}
    shots |= {f"{shot.id}.{lang}": shot.id for shot in board.shots
              for lang in shot.lipsync_languages}
    graph: list[GraphTask] = []
    kinds: dict[str, int] = {}
    for task in specs:
        kinds[task.kind] = kinds.get(task.kind, 0) + 1
        graph.append(GraphTask(
            seconds=(_seconds(task, costs, first, shots) if seconds is None
                     else seconds.get(task.key, 0.0)), deps=tuple(index[d] for d in task.deps),
            cpus=math.ceil(task.resources.cpus), gpus=math.ceil(task.resources.gpus)))
    return graph, kinds
