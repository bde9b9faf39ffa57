"""The story executor: the story reel's own tasks besides voices and renders.

- `lipsync`: mouth shapes from each line's audio -> keyframes on the rig's shape keys, in a
  copy of the shot's scene (Blender in a subprocess);
- `clip`: the shot's picture as an H.264 clip: a still with its camera move, or its frames;
- `track`: one language's dialogue track: every line (dubbed lines fitted) at its place;
- `reel`: reel.mp4 (picture + one AAC track per language, each loudness-normalised), SRT +
  WebVTT per language, the OTIO timeline, the editorial package (`wanhe.story.editorial`), the
  contact sheet, report.json.

Each task recomputes the reel's timing from the synthesized files (`wanhe.story.timing`), so
every task agrees on where each line falls without a shared state. Outputs are written under
temporary names and renamed.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from wanhe.engine.executors.base import (
    Executor,
    TaskContext,
    TaskResult,
    noted,
    self_peak_rss,
)
from wanhe.engine.executors.registry import register_executor
from wanhe.lifecycle import TaskFailed
from wanhe.metering import METER
from wanhe.payloads import PayloadError, TaskPayload
from wanhe.story.payloads import ClipTask, LipsyncTask, ReelTask, TrackTask


def _own_file(path: str, job_root: str | None) -> Path:
    """A file the task is about to open, checked again now (resolve, then check): on the farm
    it must be the job's own (`job_root`), refused by rule before it is opened."""
    from wanhe.storage import OutsideJob, within_job

    try:
        return within_job(path, job_root)
    except OutsideJob as exc:
        raise TaskFailed(str(exc)) from None


def _seconds(paths: list[str]) -> list[float]:
    from wanhe.voice.tts import wav_seconds

    return [wav_seconds(Path(p)) for p in paths]


def _line_phonemes(path: str | None, audio_s: float) -> list[Any] | None:
    """A take's phonemes (`wanhe.voice.tts.take_phonemes`), their times scaled to the audio
    the mouth follows (a dub is its take sped up); None when unknown."""
    from wanhe.voice.espeak_events import Phoneme

    if not path or not Path(path).is_file():
        return None
    data = json.loads(Path(path).read_text(encoding="utf-8"))
    scale = audio_s / float(data["seconds"]) if float(data["seconds"]) > 0 else 1.0
    return [Phoneme(ipa, a * scale, b * scale) for ipa, a, b in data["phonemes"]]


@contextlib.contextmanager
def _keying_box(job_root: str | None, ctx: TaskContext) -> Iterator[Any]:
    """Where a farm job's lip sync keys its scene: the job's sandbox (`run_in_job`: the
    project's OS user, a mount namespace showing only the job's folders, a cgroup), with a
    scratch folder of its own in the job's `work/` for the request and the keyed copy; None
    (a plain child) for a local run or where the sandbox is off."""
    from wanhe.sandbox.tool import sandboxed

    if job_root is None or not sandboxed(job_root, ctx.project):
        yield None
        return
    import os
    import shutil
    import tempfile

    from wanhe.blender.shapekeys import Boxed, boxed_runner
    from wanhe.sandbox import accounts
    from wanhe.sandbox.tool import run_in_job

    root, project = Path(job_root), str(ctx.project)
    scratch = Path(tempfile.mkdtemp(prefix="lipsync-", dir=root / "work"))
    try:
        account = accounts.session_account(project, ctx.project_id)
        if account.isolated:
            os.chown(scratch, account.uid, account.gid)

        def run(argv: list[str], timeout_s: float) -> Any:
            return run_in_job(argv, root, project, ctx.project_id,
                              name=f"lipsync-{ctx.key or 'shot'}".replace("/", "-"),
                              timeout_s=timeout_s, memory_bytes=ctx.memory_bytes or None,
                              what=f"the lip-sync keying of {ctx.key or 'a shot'}")

        yield Boxed(boxed_runner(run), scratch)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def run_lipsync(task: LipsyncTask, ctx: TaskContext) -> dict[str, Any]:
    from wanhe.blender.shapekeys import write_mouth_keys
    from wanhe.sandbox.box import mode
    from wanhe.story.timing import layout_shot
    from wanhe.voice.audio import read_wav
    from wanhe.voice.lipsync import SpokenLine, rig_keys
    from wanhe.voice.visemes import held_rest_from

    shot, film = task.shot, task.film
    wavs = task.audio_wavs or task.line_wavs  # what the mouths say
    timed: list[str | None] = list(task.phonemes) or [None] * len(wavs)
    layout = layout_shot(shot, film, _seconds(task.line_wavs))  # where
    frames = task.frames
    held_from = held_rest_from(frames, layout.frames(film.fps))
    keys: dict[str, dict[str, list[float]]] = {}
    mouths: dict[str, Any] = {}
    for name, rig in task.rigs.items():
        lines = []
        for line, wav, phonemes, (start, _end) in zip(shot.lines, wavs, timed, layout.lines,
                                                      strict=True):
            if line.character == name:
                samples, rate = read_wav(Path(wav))
                lines.append(SpokenLine(start, samples, rate,
                                        _line_phonemes(phonemes, len(samples) / rate)))
        values, info = rig_keys(rig, lines, film.fps, frames, held_from)
        target = keys.setdefault(rig["object"], {})
        for key, curve in values.items():
            old = target.get(key)
            target[key] = curve if old is None else [max(a, b) for a, b in
                                                     zip(old, curve, strict=True)]
        mouths[name] = info
    scene = _own_file(task.scene, task.job_root)
    with _keying_box(task.job_root, ctx) as boxed:
        written, blender_cpu = write_mouth_keys(
            scene, Path(task.output), task.frame_start, keys, boxed)
    sandboxed = boxed is not None and mode().cgroups  # its CPU counted by its cgroup
    ctx.log(f"[wanhe] lipsync {shot.id}: {written} keyframes on {', '.join(keys)} ("
            + ", ".join(f"{n}: {m['mode']}" for n, m in mouths.items()) + ")"
            + (f"; the shot is extended past its {frames} frames: the held frame is at rest"
               if held_from is not None else ""))
    return {"blend": task.output, "keyframes": written, "mouths": mouths,
            "held_from": held_from, "frame_start": task.frame_start,
            "blender_cpu_s": blender_cpu, "sandboxed": sandboxed}


def run_clip(task: ClipTask, ctx: TaskContext) -> dict[str, Any]:
    from PIL import Image

    from wanhe.imaging.reel import exr_frames, still_frames, write_clip
    from wanhe.story.timing import layout_shot

    shot, film = task.shot, task.film
    layout = layout_shot(shot, film, _seconds(task.line_wavs))
    count = layout.frames(film.fps)
    size = (film.width, film.height)
    thumb: list[Any] = []

    def keep(frames: Any) -> Any:
        for n, frame in enumerate(frames):
            if n == count // 2:
                thumb.append(frame)
            yield frame

    chosen: dict[str, Any] = {}
    if shot.image is not None:
        move = shot.image.camera.model_dump() if shot.image.camera else None
        frames = still_frames(_own_file(shot.image.path, task.job_root), size, count, move)
    elif shot.prompt is not None:
        from wanhe.story.plan import choose_candidate

        if task.ai is None:  # a storyboard's AI shot always has them: a damaged row
            raise TaskFailed("the clip task's payload is not valid: ai: the AI shot's "
                             "candidates are missing")
        ai = task.ai
        ranked = json.loads(Path(ai.scores).read_text())["scores"] if ai.scores else []
        candidate, why = choose_candidate([c.model_dump() for c in ai.candidates], ranked,
                                          ai.pick)
        chosen = {"candidate": candidate["index"], "seed": candidate["seed"],
                  "picked_by": why, "candidate_path": candidate["output"]}
        move = shot.prompt.camera.model_dump() if shot.prompt.camera else None
        frames = still_frames(_own_file(candidate["output"], task.job_root), size, count,
                              move)
    else:
        frames = exr_frames([Path(p) for p in task.exrs], size, count)
    out = Path(task.output)
    written = write_clip(keep(frames), film.fps, out)
    from wanhe.imaging.atomic import atomic_write

    with atomic_write(task.thumb) as tmp:
        Image.fromarray(thumb[0]).save(tmp, format="PNG")
    ctx.log(f"[wanhe] clip {shot.id}: {written} frames, {layout.duration:.2f} s")
    return {"mp4": str(out), "frames": written, "seconds": layout.duration,
            "extended": layout.extended, "needed_s": layout.needed, **chosen}


def _durations(board: Any, voices: dict[str, dict[str, str]]) -> dict[tuple[str, str], float]:
    from wanhe.voice.tts import wav_seconds

    return {(lid, lang): wav_seconds(Path(wav)) for lid, by_lang in voices.items()
            for lang, wav in by_lang.items()}


def _placements(task: TrackTask | ReelTask) -> Any:
    from wanhe.story.timing import reel_timing

    return reel_timing(task.board, _durations(task.board, task.voices))


def _line_audio(task: TrackTask | ReelTask, lid: str, lang: str) -> str:
    if lang == task.board.film.original:
        return task.voices[lid][lang]
    return task.dubs[lid][lang]


def run_track(task: TrackTask, ctx: TaskContext) -> dict[str, Any]:
    from wanhe.voice.audio import MIX_RATE, mix, write_wav

    timing = _placements(task)
    lang = task.lang
    clips = [(p.start, Path(_line_audio(task, p.line, lang))) for p in timing.lines[lang]]
    track = mix(timing.duration, clips)
    write_wav(Path(task.output), track, MIX_RATE)
    ctx.log(f"[wanhe] track {lang}: {len(clips)} lines, {timing.duration:.2f} s")
    return {"wav": task.output, "seconds": timing.duration, "lines": len(clips)}


def _burn_in(timing: Any, lang: str) -> Any:
    """frame -> (shot and timecode, the `lang` line being spoken there) for the reel."""
    from wanhe.imaging.burnin import timecode

    fps = timing.fps
    starts = [(round(s.start * fps), s.id) for s in timing.shots]
    lines = timing.lines[lang]

    def texts(frame: int) -> tuple[str, str]:
        shot = next((sid for at, sid in reversed(starts) if at <= frame), starts[0][1])
        t = (frame + 0.5) / fps
        line = next((p for p in lines if p.start <= t < p.end), None)
        return (f"{shot}  {timecode(frame, fps)}",
                f"{line.line} {line.character}: {line.text}" if line else "")

    return texts


def run_reel(task: ReelTask, ctx: TaskContext) -> dict[str, Any]:
    from wanhe.imaging.atomic import atomic_write
    from wanhe.imaging.reel import write_audio, write_reel
    from wanhe.imaging.video import write_contact_sheet
    from wanhe.story.editorial import (
        apply_gain,
        loudness_gain,
        write_package,
        write_timeline_beside,
    )
    from wanhe.story.subtitles import to_srt, to_webvtt
    from wanhe.voice.audio import read_wav

    board, timing = task.board, _placements(task)
    film = board.film
    out = Path(task.output)
    out.mkdir(parents=True, exist_ok=True)
    frames = sum(s.layout.frames(film.fps) for s in timing.shots)
    clips = [Path(task.clips[s.id]) for s in board.shots]
    tracks, gains = [], {}
    for lang in film.languages:  # each language brought to the same loudness (EBU R128)
        samples, rate = read_wav(Path(task.tracks[lang]))
        gains[lang] = loudness_gain(lang, samples, rate)
        tracks.append((lang, apply_gain(samples, gains[lang].gain_db)))
    write_reel(clips, tracks, film.fps, frames, (film.width, film.height), out / "reel.mp4",
               burn_in=_burn_in(timing, film.original) if film.burn_in else None)
    for lang, own in task.lang_clips.items():  # lip-synced in `lang` too
        picture = [Path(own.get(s.id, task.clips[s.id])) for s in board.shots]
        first = [t for t in tracks if t[0] == lang] + [t for t in tracks if t[0] != lang]
        write_reel(picture, first, film.fps, frames, (film.width, film.height),
                   out / f"reel.{lang}.mp4",
                   burn_in=_burn_in(timing, lang) if film.burn_in else None)
    for lang, samples in tracks:  # each language alone, for players without track switching
        write_audio(samples, lang, out / "audio" / f"{lang}.m4a")
    subs = out / "subtitles"
    subs.mkdir(exist_ok=True)
    for lang in film.languages:
        for suffix, text in ((".srt", to_srt(timing.lines[lang])),
                             (".vtt", to_webvtt(timing.lines[lang]))):
            with atomic_write(subs / f"{lang}{suffix}") as tmp:
                tmp.write_text(text, encoding="utf-8")
    audio = {(p.line, lang): _line_audio(task, p.line, lang)
             for lang, placed in timing.lines.items() for p in placed}
    from wanhe.story.schema import line_id

    takes = {(line_id(shot, n), lang): line.take(lang) for shot in board.shots
             for n, line in enumerate(shot.lines) for lang in film.languages}
    editorial = write_package(out / "editorial", film.title, timing, task.clips, audio,
                              gains, takes=takes)
    write_timeline_beside(out / "editorial", out / "reel.otio")
    thumbs = [task.thumbs[s.id] for s in board.shots]
    write_contact_sheet(thumbs, out / "contact_sheet.png",
                        labels=[f"{s.id} {t.start:.1f}s" for s, t in
                                zip(board.shots, timing.shots, strict=True)],
                        thumb_width=min(320, film.width))
    report = story_report(board, timing)
    report["takes"] = keep_takes(board, task.voices, out)
    report["loudness"] = editorial["loudness"]
    report["editorial"] = {k: editorial[k] for k in ("start_timecode", "edit_rate", "exports")}
    with atomic_write(out / "report.json") as tmp:
        tmp.write_text(json.dumps(report, indent=2), encoding="utf-8")
    ctx.log(f"[wanhe] reel: {timing.duration:.2f} s, {len(report['overruns'])} overrun(s)")
    return {"reel": str(out / "reel.mp4"), "seconds": timing.duration,
            "overruns": report["overruns"], "shots": report["shots"]}


def keep_takes(board: Any, voices: dict[str, dict[str, str]], out: Path) -> list[dict[str, Any]]:
    """Every line's take in every language copied among the job's outputs (`takes/…`, kept in
    storage with them), each with its recipe: what makes it again, byte for byte."""
    import shutil

    from wanhe.imaging.atomic import atomic_write
    from wanhe.story.plan import take_file
    from wanhe.story.schema import line_id
    from wanhe.voice.tts import take_seed, wav_seconds

    film = board.film
    takes = []
    for shot in board.shots:
        for n, line in enumerate(shot.lines):
            lid = line_id(shot, n)
            for lang in film.languages:
                source = Path(voices[lid][lang])
                name = take_file(board, shot, n, lang)
                target = out / name
                target.parent.mkdir(parents=True, exist_ok=True)
                with atomic_write(target) as tmp:
                    shutil.copyfile(source, tmp)
                voice = board.voice_for(line.character, lang)
                take = line.take(lang)
                takes.append({
                    "line": lid, "lang": lang, "character": line.character, "file": name,
                    "key": source.stem, "take": take, "seconds": wav_seconds(target),
                    "recipe": {"text": line.text if lang == film.original
                               else line.translations[lang],
                               **voice.model_dump(mode="json"),
                               "seed": take_seed(take) if voice.engine == "piper" else None},
                })
    return takes


def story_report(board: Any, timing: Any) -> dict[str, Any]:
    """Durations, each shot and line, and the lines that overran their slot."""
    shots = []
    for shot, t in zip(board.shots, timing.shots, strict=True):
        shots.append({"id": shot.id, "source": shot.source_kind, "start_s": t.start,
                      "duration_s": t.layout.duration, "needed_s": t.layout.needed,
                      "extended": t.layout.extended, "lines": len(shot.lines)})
    return {
        "title": board.film.title, "fps": board.film.fps,
        "languages": board.film.languages, "duration_s": timing.duration,
        "shots": shots,
        "lines": {lang: [p.to_dict() for p in placed] for lang, placed in timing.lines.items()},
        "overruns": [p.to_dict() for p in timing.overruns()],
    }


_RUNNERS: dict[str, tuple[type[TaskPayload], Callable[[Any, TaskContext], dict[str, Any]]]] = {
    "lipsync": (LipsyncTask, run_lipsync), "clip": (ClipTask, run_clip),
    "track": (TrackTask, run_track), "reel": (ReelTask, run_reel)}


@register_executor
class StoryExecutor(Executor):
    kinds = frozenset(_RUNNERS)

    def run(self, kind: str, payload: dict[str, Any], ctx: TaskContext) -> TaskResult:
        model, runner = _RUNNERS[kind]
        try:  # the typed payload, checked before anything runs
            task = model.read(payload)
        except PayloadError as exc:
            raise TaskFailed(str(exc)) from None
        started = time.monotonic()
        with METER.task() as share:  # a local run's other workers share this process
            try:
                output = runner(task, ctx)
            except (ValueError, RuntimeError, OSError, KeyError) as exc:
                failed: Exception | None = exc
            else:
                failed = None
        if failed is not None:
            raise TaskFailed(f"{kind}: {type(failed).__name__}: {failed}", cpu_s=share.cpu_s,
                             wall_s=time.monotonic() - started) from failed
        cpu = share.cpu_s
        if output.get("sandboxed"):  # Blender's CPU is its cgroup's (every process in it)
            cpu = share.own_s + share.exact_s + float(output["blender_cpu_s"])
        return TaskResult(time.monotonic() - started, cpu, self_peak_rss(), noted(share, output))
