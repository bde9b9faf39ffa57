"""What a generation job publishes to Kitsu: the candidate someone picked, with its recipe.

A gen job sent with a shot (`wanhe gen image … --server URL --shot SQ01/SH010`) publishes
nothing when it finishes: a person chooses first (`wanhe gen pick`, the contact sheet). Its
first shot that has a picked candidate gives the file and the comment: the model, the prompt,
the seed, the steps and the size that made it, so the supervisor reading Kitsu can ask for it
again (`wanhe gen again` rebuilds a candidate from the same recipe).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any

from wanhe.ai.results import job_results
from wanhe.store.rows import JobRow
from wanhe.store.store import Store

# the task type a pick goes to without --task: Kitsu's shot task type of its Concept
# department (its "Concept" task type is for assets)
DEFAULT_TASK = "Storyboard"


@dataclass(frozen=True, slots=True)
class Pick:
    shot: int
    shot_name: str
    candidate: int
    file: str  # relative to the job's outputs
    recipe: dict[str, Any]
    prompt: str


def find_pick(store: Store, job: JobRow) -> Pick | None:
    """The job's first shot with a picked candidate that is made (None: nobody picked yet)."""
    base = PurePosixPath(str(job.spec.get("output", "")))
    for shot in job_results(store, job.id)["shots"]:
        chosen = shot["chosen"]
        if chosen is None or chosen["why"] != "picked":
            continue
        cand = next(c for c in shot["candidates"] if c["index"] == chosen["index"])
        if cand.get("state") != "done":
            continue
        try:
            file = PurePosixPath(str(cand["output"])).relative_to(base).as_posix()
        except ValueError:  # made outside the job's folder: nothing the storage keeps
            continue
        return Pick(shot["shot"], str(shot["name"]), int(cand["index"]), file,
                    dict(cand.get("recipe") or {}), str(shot.get("prompt") or ""))
    return None


def recipe_lines(pick: Pick) -> list[str]:
    """The recipe as a supervisor reads it: model, seed, steps, size; the prompt(s)."""
    r = pick.recipe
    model = (r.get("model") or {}).get("name", "?") if isinstance(r.get("model"), dict) \
        else r.get("model", "?")
    made = [f"model {model}", f"seed {r.get('seed', '?')}", f"steps {r.get('steps', '?')}",
            f"size {r.get('width', '?')}x{r.get('height', '?')}"]
    if r.get("guidance") is not None:
        made.append(f"guidance {r['guidance']}")
    if r.get("frames"):
        made.append(f"{r['frames']} frames at {r.get('fps', '?')} fps")
    lines = [", ".join(made), f"prompt: {r.get('prompt', pick.prompt)}"]
    if r.get("negative"):
        lines.append(f"negative: {r['negative']}")
    return lines
