"""A storyboard skeleton from what a production tracker knows of a sequence: one scene, a shot
per tracker shot (its id, its frame count as the duration, its description as the line to
fill), each with an image board to draw at boards/<id>.png.

The skeleton is a valid storyboard (`Storyboard` checks it before anyone writes it); `wanhe
story check` then names what is left to fill: the boards, the lines, the voices.
"""

from __future__ import annotations

import re
from typing import Any

from wanhe.story.schema import MAX_REEL_S, Storyboard

NARRATOR = "Narrator"
_UNSAFE_ID = re.compile(r"[^A-Za-z0-9_.-]+")


def shot_id(name: str) -> str:
    """A tracker's shot name as a storyboard shot id (letters, digits, `_ . -`)."""
    cleaned = _UNSAFE_ID.sub("_", name.strip()).strip("_.-") or "shot"
    return cleaned[:64]


def skeleton(title: str, sequence: str, fps: float, shots: list[dict[str, Any]],
             language: str = "en") -> dict[str, Any]:
    """The storyboard as a dict ready to dump as YAML; `shots` are the tracker's, in order,
    each with `name`, `description` and `nb_frames` (0 or None: not known yet)."""
    board_shots = []
    for shot in shots:
        sid = shot_id(str(shot["name"]))
        entry: dict[str, Any] = {"id": sid, "image": {"path": f"boards/{sid}.png"}}
        frames = shot.get("nb_frames") or 0
        if frames > 0:
            entry["duration"] = round(min(frames / fps, MAX_REEL_S), 3)
        text = (shot.get("description") or "").strip() or f"(write {sid}'s line)"
        entry["lines"] = [{"character": NARRATOR, "text": text[:2000]}]
        board_shots.append(entry)
    data = {"film": {"title": title[:200], "fps": fps, "languages": [language]},
            "characters": [{"name": NARRATOR}],
            "scenes": [{"name": sequence, "shots": board_shots}]}
    Storyboard.model_validate(data)  # a skeleton that does not load helps no one
    return data
