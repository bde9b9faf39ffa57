"""The generation scoring executor: ranks a shot's candidates (`gen_score` tasks) with the
measures of `wanhe.ai.scoring`; keeps the NSFW detector loaded. Light: in-process, no cores
reserved. Writes the shot's scores.json and returns the scores (kept in the database)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from wanhe.engine.executors.base import Executor, TaskContext, TaskResult, measured
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskFailed
from wanhe.payloads import PayloadError


@register_executor
class GenScoreExecutor(Executor):
    kinds = frozenset({"gen_score"})

    def __init__(self, worker: Any) -> None:
        super().__init__(worker)
        self._nsfw: Any = None
        self._nsfw_error: str | None = None
        self._clip: dict[str, Any] = {}  # model path -> ClipAdherence

    def _detector(self) -> Any:
        if self._nsfw is None and self._nsfw_error is None:
            try:
                from wanhe.ai.scoring import NsfwCheck

                self._nsfw = NsfwCheck()
            except Exception as exc:  # not installed: score without it, and say so
                self._nsfw_error = f"NSFW check unavailable: {type(exc).__name__}: {exc}"
        return self._nsfw

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        from wanhe.ai import scoring
        from wanhe.ai.payloads import ScoreTask
        from wanhe.ai.pipelines import read_pixels
        from wanhe.imaging.atomic import atomic_write

        try:  # the typed payload, checked before anything runs
            task = ScoreTask.read(payload)
        except PayloadError as exc:
            raise TaskFailed(str(exc)) from None

        def work() -> dict[str, Any]:
            scores: list[scoring.CandidateScore] = []
            thumbs: list[Any] = []
            detector = self._detector()
            clip = None
            if task.clip is not None:
                path = task.clip.path
                if path not in self._clip:
                    try:
                        self._clip = {path: scoring.ClipAdherence(path)}  # keep one
                    except Exception as exc:
                        raise TaskFailed(f"CLIP model {task.clip.name!r} at {path} "
                                         f"does not load ({type(exc).__name__}: "
                                         f"{str(exc)[:200]})") from None
                clip = self._clip[path]
            entries = task.candidates
            for n, cand in enumerate(entries):
                file = Path(cand.output)
                try:
                    pixels = read_pixels(file)
                except Exception as exc:
                    raise TaskFailed(f"cannot read candidate {cand.index} ({file.name}): "
                                     f"{exc}") from None
                frames = [pixels] if pixels.ndim == 3 else [
                    pixels[i] for i in sorted({0, len(pixels) // 2, len(pixels) - 1})]
                score = scoring.measure(cand.index, cand.seed, cand.output, frames)
                if detector is not None:
                    score.nsfw = max(detector.score(f) for f in frames)
                if clip is not None:
                    score.prompt_adherence = clip.score(frames, task.prompt)
                scores.append(score)
                thumbs.append(np.mean([scoring.thumbnail(f) for f in frames], axis=0))
                ctx.progress((n + 1) / len(entries))
            scoring.mark_duplicates(scores, thumbs)
            ranked = scoring.rank(scores)
            body = {"shot": task.shot, "shot_name": task.shot_name,
                    "prompt": task.prompt, "nsfw_check": self._nsfw_error or "nudenet",
                    "scores": [s.to_dict() for s in ranked]}
            out = Path(task.output)
            out.parent.mkdir(parents=True, exist_ok=True)
            with atomic_write(out) as tmp:
                tmp.write_text(json.dumps(body, indent=2))
            return body

        return measured(work)
