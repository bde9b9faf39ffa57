"""The QC and VIDEO task kinds: check each finished frame, re-render it once when it fails;
encode the job's preview video and contact sheet.

``run_qc`` checks the master EXR (:func:`wanhe.imaging.qc.check_exr`: size, NaN/Inf, black or
blank, fireflies, missing tiles, seams, brightness/histogram jumps against the neighbouring
frames that are already finished). A frame that fails is re-rendered once with a fresh seed in
the worker's warm Blender, re-assembled, re-denoised and re-previewed under temporary names,
re-checked, and renamed into place only if it passes. Both results are recorded; a frame that
still fails (or whose ``--quality`` target was not reached) is flagged, with the reasons.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from wanhe.engine.executors.base import TaskContext
from wanhe.engine.frame_steps import run_assemble, run_denoise, run_preview, run_render
from wanhe.engine.seam_check import check_seams_by_render, seam_reason
from wanhe.imaging.qc import FrameStats, QCResult, QCThresholds, check_exr, frame_stats
from wanhe.imaging.qc_thresholds import thresholds_from

__all__ = ["RERENDER_SEED_OFFSET", "neighbour_stats", "run_qc", "run_video", "thresholds_from"]

RERENDER_SEED_OFFSET = 1_000_003
Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def neighbour_stats(paths: list[str]) -> list[FrameStats]:
    """:func:`frame_stats` of the neighbouring masters that exist (finished) and read cleanly."""
    from wanhe.imaging.errors import ImagingError
    from wanhe.imaging.exr import read_layers

    stats = []
    for path in paths:
        if not Path(path).is_file():
            continue
        with contextlib.suppress(ImagingError, ValueError):
            stats.append(frame_stats(read_layers(path).rgb("Combined")))
    return stats


def _check(path: str, payload: dict[str, Any], limits: QCThresholds,
           neighbours: list[FrameStats]) -> QCResult:
    from wanhe.imaging.errors import ImagingError
    from wanhe.imaging.qc import QCIssue, Severity

    try:
        return check_exr(
            path,
            expected_size=(int(payload["width"]), int(payload["height"])),
            tile_boxes=[tuple(b) for b in payload["tiles"]] if payload.get("tiles") else None,
            neighbour_stats=neighbours or None,
            thresholds=limits,
        )
    except (ImagingError, ValueError) as exc:
        issue = QCIssue("unreadable", Severity.ERROR, f"cannot read the frame: {exc}")
        return QCResult((issue,), None)


def _reasons(result: QCResult) -> list[str]:
    return [i.message for i in result.issues if str(i.severity) == "error"]


def _retry_paths(payload: dict[str, Any]) -> tuple[Path, Path]:
    master, preview = Path(payload["input"]), Path(payload["rerender"]["preview"]["output"])
    return (master.with_name(f".{master.name}.qc-retry.exr"),
            preview.with_name(f".{preview.name}.qc-retry.png"))


def _rerender(
    payload: dict[str, Any], seed: int, blender: Any, log: Log
) -> tuple[Path, Path, float]:
    """Render the frame again with ``seed`` under temporary names; return (master, preview,
    Blender's CPU seconds)."""

    plan = payload["rerender"]
    retry_dir = Path(plan["work_dir"]) / "qc-retry"
    retry_dir.mkdir(parents=True, exist_ok=True)
    renamed: dict[str, str] = {}
    cpu_s = 0.0
    for render in plan["renders"]:
        out = str(retry_dir / Path(render["output"]).name)
        renamed[render["output"]] = out
        log(f"[qc] re-rendering {Path(render['output']).name} with seed {seed}")
        done = run_render({**render, "output": out, "seed": seed, "partial": None}, blender,
                          TaskContext(log=log))
        cpu_s += done.cpu_s
    master, preview = _retry_paths(payload)
    denoise = plan.get("denoise")
    assembled = str(retry_dir / "assembled.exr") if denoise else str(master)
    assemble = plan["assemble"]
    placements = [{**p, "paths": [renamed[x] for x in p["paths"]]} for p in assemble["placements"]]
    run_assemble({**assemble, "placements": placements, "output": assembled})
    if denoise:
        run_denoise({**denoise, "input": assembled, "output": str(master)})
    run_preview({**plan["preview"], "input": str(master), "output": str(preview)})
    return master, preview, cpu_s


def run_qc(payload: dict[str, Any], blender: Any = None, log: Log | None = None) -> dict[str, Any]:
    """Check one frame; re-render it once if it fails (needs ``blender`` and the payload's
    ``rerender`` plan); returns ``{"qc": {...}}`` for the task output."""
    say = log or _quiet
    limits = thresholds_from(payload.get("thresholds"))
    neighbours = neighbour_stats(list(payload.get("neighbours") or []))
    base_seed = int(payload.get("seed") or 0)
    first = _check(payload["input"], payload, limits, neighbours)
    attempts: list[dict[str, Any]] = [{"source": "original", "seed": payload.get("seed"),
                                       **first.to_dict()}]
    kept, final = "original", first
    rerender: str | None = None
    rerender_cpu_s = 0.0
    if not first.passed:
        say(f"[qc] frame {payload['frame']} failed: {'; '.join(_reasons(first))}")
        if blender is None or not payload.get("rerender"):
            rerender = "not possible here (no Blender or no re-render plan); frame flagged"
        else:
            seed = base_seed + RERENDER_SEED_OFFSET
            master, preview = _retry_paths(payload)
            try:
                master, preview, rerender_cpu_s = _rerender(payload, seed, blender, say)
                second = _check(str(master), payload, limits, neighbours)
            except Exception as exc:  # a failed re-render must not lose the original frame
                second = None
                rerender = f"re-render failed: {exc}"
            if second is not None:
                attempts.append({"source": "rerender", "seed": seed, "kept": second.passed,
                                 **second.to_dict()})
                if second.passed:
                    os.replace(master, payload["input"])
                    os.replace(preview, payload["rerender"]["preview"]["output"])
                    kept, final = "rerender", second
                    rerender = f"re-rendered with seed {seed}: passes, kept"
                else:
                    rerender = f"re-rendered with seed {seed}: still fails, original kept"
            for leftover in (master, preview):
                leftover.unlink(missing_ok=True)
        say(f"[qc] {rerender}")
    notes = list(payload.get("notes") or [])
    seams: dict[str, Any] | None = None
    if payload.get("seams") and blender is not None:
        try:
            seams = check_seams_by_render(payload["seams"], blender, say)
        except Exception as exc:  # the check must not lose the frame; say it did not run
            seams = {"checked": 0, "disagree": [], "skipped": f"seam renders failed: {exc}"}
        reason = seam_reason(seams)
        if reason:
            say(f"[qc] frame {payload['frame']}: {reason}")
            notes.append(reason)
    flagged = not final.passed or bool(notes)
    result = {
        **final.to_dict(),
        "frame": payload["frame"],
        "kept": kept,
        "rerender": rerender,
        "flagged": flagged,
        "reasons": _reasons(final) + notes,
        "attempts": attempts,
        "neighbours_compared": len(neighbours),
        "rerender_cpu_s": rerender_cpu_s,  # Blender's, metered with the QC task
        "seams": seams,
        "thresholds": limits.to_dict(),
    }
    return {"qc": result}


def run_video(payload: dict[str, Any]) -> dict[str, Any]:
    """H.264 MP4 of the frames' previews at the scene's rate, and a contact sheet."""
    from wanhe.imaging.errors import VideoError
    from wanhe.imaging.video import write_contact_sheet, write_preview_video
    from wanhe.lifecycle import TaskFailed

    previews = [str(p) for p in payload["previews"]]
    missing = [p for p in previews if not Path(p).is_file()]
    if missing:
        raise TaskFailed(f"{len(missing)} preview frame(s) are missing, e.g. {missing[0]}; "
                         "the frames' preview tasks must finish first")
    frames = list(payload.get("frames") or range(1, len(previews) + 1))
    out, sheet = Path(payload["output"]), Path(payload["contact_sheet"])
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        info = write_preview_video(previews, float(payload["fps"]), out)
        size = write_contact_sheet(previews, sheet, labels=[f"frame {f}" for f in frames])
    except VideoError as exc:
        raise TaskFailed(str(exc)) from exc
    return {
        "video": str(out), "contact_sheet": str(sheet), "codec": info.codec,
        "frames": info.frames, "fps": info.fps, "size": [info.width, info.height],
        "duration_s": info.duration, "contact_sheet_size": list(size),
    }
