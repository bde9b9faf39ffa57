"""A story reel's shots as Kitsu counts them: frame in, frame out and frame count of each
shot in the reel's timing, for the shots wanhe creates in Kitsu (`--create-shots`)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from wanhe.store.store import Store

FIRST_FRAME = 1  # the reel's first frame, as Kitsu's shots (and Blender's scenes) count


@dataclass(frozen=True, slots=True)
class ShotFrames:
    frame_in: int
    frame_out: int
    nb_frames: int


def reel_frames(store: Store, job_id: int, spec: dict[str, Any]) -> dict[str, ShotFrames]:
    """Each shot's frames in the finished reel, from its reel task's output (the start and
    duration the reel was cut with) at the film's fps; {} when the job has no such output."""
    fps = float(((spec.get("board") or {}).get("film") or {}).get("fps") or 24.0)
    placed: list[dict[str, Any]] = []
    for task in store.tasks(job_id):
        if task.kind == "reel" and isinstance(task.output.get("shots"), list):
            placed = task.output["shots"]
    frames = {}
    for shot in placed:
        start = round(float(shot["start_s"]) * fps)
        count = max(1, round(float(shot["duration_s"]) * fps))
        frames[str(shot["id"])] = ShotFrames(FIRST_FRAME + start,
                                             FIRST_FRAME + start + count - 1, count)
    return frames
