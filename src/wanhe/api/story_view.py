"""A story job as the dashboard shows it: its shots in order with their state and picture,
the reel with one audio file and subtitles per language, and the lines that overran."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from wanhe.store.store import JobRow, TaskRow

_ORDER = ("failed", "running", "ready", "waiting", "cancelled")


def _state(states: list[str]) -> str:
    if states and all(s == "done" for s in states):
        return "done"
    for state in _ORDER:
        if state in states:
            return state
    return "waiting"


def story_view(job: JobRow, tasks: list[TaskRow], url_of: Callable[[str | None], str | None],
               attempts: Sequence[dict[str, Any]] = ()) -> dict[str, Any]:
    """`url_of(path)`: the URL of a file the job wrote, None if it is not an output;
    `attempts`: the job's attempts (core-hours per task kind)."""
    from wanhe.runs.story import core_hours_by_kind

    board = job.spec.get("board") or {}
    languages: list[str] = list((board.get("film") or {}).get("languages") or [])
    by_shot: dict[str, list[TaskRow]] = {}
    for task in tasks:
        parts = task.key.split("/")
        per_shot = len(parts) == (3 if task.kind == "render" else 2)
        if task.kind in ("lipsync", "clip", "render") and per_shot:
            by_shot.setdefault(parts[1], []).append(task)
    shots = []
    for scene in board.get("scenes") or []:
        for shot in scene.get("shots") or []:
            own = by_shot.get(shot["id"], [])
            clip = next((t for t in own if t.kind == "clip"), None)
            source = "image" if shot.get("image") else "blender" if shot.get("blender") \
                else "prompt"
            shots.append({
                "id": shot["id"], "scene": scene.get("name"), "source": source,
                "state": _state([t.state.value for t in own]),
                "lines": len(shot.get("lines") or []),
                "seconds": clip.output.get("seconds") if clip else None,
                "pick": None if not clip or "candidate" not in clip.output else {
                    "candidate": clip.output["candidate"], "by": clip.output["picked_by"]},
                "thumb_url": url_of(clip.payload.get("thumb")) if clip and clip.state.value
                == "done" else None,
            })
    reel = next((t for t in tasks if t.kind == "reel"), None)
    done = reel is not None and reel.state.value == "done"
    output = Path(job.spec.get("output", "/nonexistent"))

    def file(relative: str) -> str | None:
        return url_of(str(output / relative)) if done else None

    synced = {lang for scene in board.get("scenes") or [] for shot in scene.get("shots") or []
              for lang in shot.get("lipsync_languages") or []}
    reel_url = file("reel.mp4")
    return {
        "shots": shots,
        "languages": languages,
        "reel_url": reel_url,
        # the picture to play per language: the mouths lip-synced in it where a shot asks
        "reel_urls": {lang: (file(f"reel.{lang}.mp4") if lang in synced else None) or reel_url
                      for lang in languages},
        "audio_urls": {lang: file(f"audio/{lang}.m4a") for lang in languages},
        "subtitle_urls": {lang: file(f"subtitles/{lang}.vtt") for lang in languages},
        "contact_sheet_url": file("contact_sheet.png"),
        "seconds": reel.output.get("seconds") if done and reel else None,
        "overruns": list(reel.output.get("overruns", [])) if done and reel else [],
        "core_hours_by_kind": core_hours_by_kind(list(attempts)),
    }
