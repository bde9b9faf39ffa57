"""A storyboard compiled into a farm task graph (pure: no files are read or written).

    voice (line × language) ──► dub (line × other language) ──► track (language) ──┐
        └──► lipsync (rigged shot) ──► render (shot × frame) ──► clip (shot) ──────┴─► reel

Voices and dubs are named by their content (text, voice, settings) under the cache folder, so
a re-run finds the ones it made before and re-synthesizes only what changed. Every other
output is the job's own.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wanhe.model import Resources, TaskSpec
from wanhe.render.payloads import RenderTask
from wanhe.story.payloads import ClipAI, ClipTask, LipsyncTask, ReelTask, TrackTask
from wanhe.story.schema import BUNDLED_VOICE, Shot, Storyboard, line_id
from wanhe.voice.payloads import DubTask, VoiceTask

MAX_TASKS = 20_000
CPU = Resources(cpus=1.0)
LIGHT = Resources(cpus=0.0)

# task kinds (executors: wanhe.engine.executors.voice and .story; "render" is Blender's)
VOICE, DUB, LIPSYNC, RENDER, CLIP, TRACK, REEL = (
    "voice", "dub", "lipsync", "render", "clip", "track", "reel")


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a story job's files go: `output` (deliverables), `work` (the job's scratch),
    `cache` (content-named voices, lip syncs and shot renders, shared by the story jobs of
    one project on a farm, or by one user's local runs)."""

    output: Path
    work: Path
    cache: Path

    def reel(self) -> Path:
        return self.output / "reel.mp4"


def resolve_paths(board: Storyboard, base: Path) -> Storyboard:
    """The storyboard with every file path absolute (as the workers read them)."""
    data = board.model_dump(mode="json")
    for scene in data["scenes"]:
        for shot in scene["shots"]:
            if shot.get("image"):
                shot["image"]["path"] = str((base / shot["image"]["path"]).resolve())
            if shot.get("blender"):
                shot["blender"]["file"] = str((base / shot["blender"]["file"]).resolve())
    for character in data["characters"]:
        for voice in [character["voice"], *character["voices"].values()]:
            if voice["engine"] == "piper" and voice["model"] != BUNDLED_VOICE:
                voice["model"] = str((base / voice["model"]).resolve())
    return Storyboard.model_validate(data)


def _digest(*parts: Any) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def fingerprint(board: Storyboard, facts: dict[str, Any]) -> str:
    return _digest(board.model_dump(mode="json"), facts.get("files"), facts.get("models"))


def voice_key(board: Storyboard, facts: dict[str, Any], character: str, text: str,
              lang: str, base_model: str | None = None, take: int = 1) -> str:
    from wanhe.voice.tts import synthesis_key

    voice = board.voice_for(character, lang)
    digest = None
    if voice.engine == "piper":
        digest = facts["models"].get(base_model or voice.model, voice.model)
    return synthesis_key(text, voice, lang, digest, take)


def _model_ref(board: Storyboard, original: Storyboard, character: str, lang: str) -> str:
    """The voice model as the storyboard names it (the facts' digests are keyed by that)."""
    return original.voice_for(character, lang).model


MOUTH_VERSION = "2"  # bump when the mouth curves change


def compile_story(
    original: Storyboard, base: Path, facts: dict[str, Any], layout: Layout,
    present: frozenset[str] = frozenset(),
) -> list[TaskSpec]:
    """The job's task graph, in the order its tasks should run.

    Lip-synced scenes and rendered frames are named by their content in the cache too;
    `present`: those of their files that exist already (see `cached_outputs`), whose tasks are
    left out — a re-run renders only the shots whose scene, rig or dialogue changed."""
    from wanhe.voice.tts import take_seed

    board = resolve_paths(original, base)
    film = board.film
    tasks: list[TaskSpec] = []
    voices: dict[str, dict[str, str]] = {}  # line id -> lang -> wav
    voice_keys: dict[str, dict[str, str]] = {}
    dubs: dict[str, dict[str, str]] = {}
    for shot in board.shots:
        for n, line in enumerate(shot.lines):
            lid = line_id(shot, n)
            voices[lid], voice_keys[lid] = {}, {}
            for lang in film.languages:
                text = line.text if lang == film.original else line.translations[lang]
                voice = board.voice_for(line.character, lang)
                ref = _model_ref(board, original, line.character, lang)
                take = line.take(lang)
                key = voice_key(original, facts, line.character, text, lang, ref, take)
                wav = str(layout.cache / "voice" / key[:2] / f"{key}.wav")
                voices[lid][lang], voice_keys[lid][lang] = wav, key
                tasks.append(TaskSpec(f"voice/{lid}/{lang}", VOICE, VoiceTask(
                    line=lid, lang=lang, character=line.character, text=text,
                    voice=voice.model_dump(mode="json"), output=wav, cache_key=key,
                    take=take, seed=take_seed(take),
                ).stored(), resources=CPU))
            for lang in film.languages[1:]:
                key = _digest(voice_keys[lid][lang], voice_keys[lid][film.original],
                              film.max_stretch)
                wav = str(layout.cache / "dub" / key[:2] / f"{key}.wav")
                dubs.setdefault(lid, {})[lang] = wav
                tasks.append(TaskSpec(f"dub/{lid}/{lang}", DUB, DubTask(
                    line=lid, lang=lang, input=voices[lid][lang],
                    original=voices[lid][film.original], max_stretch=film.max_stretch,
                    output=wav,
                ).stored(), deps=[f"voice/{lid}/{lang}", f"voice/{lid}/{film.original}"],
                    resources=CPU))
    clips: dict[str, str] = {}
    thumbs: dict[str, str] = {}
    clip_keys: list[str] = []
    lang_clips: dict[str, dict[str, str]] = {}  # lang -> shot -> its clip lip-synced in lang
    for shot in board.shots:
        lids = [line_id(shot, n) for n in range(len(shot.lines))]
        originals = [voices[lid][film.original] for lid in lids]
        voice_deps = [f"voice/{lid}/{film.original}" for lid in lids]
        clips[shot.id] = str(layout.output / "shots" / f"{shot.id}.mp4")
        thumbs[shot.id] = str(layout.output / "shots" / f"{shot.id}.png")
        clip = ClipTask(shot=shot, film=film, line_wavs=originals, output=clips[shot.id],
                        thumb=thumbs[shot.id])
        deps = list(voice_deps)
        if shot.prompt is not None:
            gen_tasks, entries, score = _ai_tasks(board, shot, facts, layout)
            tasks += gen_tasks
            clip.ai = ClipAI.model_validate(
                {"candidates": entries, "scores": score, "pick": shot.prompt.pick})
            deps += [t.key for t in gen_tasks]
        if shot.blender is not None:
            made, exrs = _blender_tasks(
                board, original, shot, facts, layout, present, film.original,
                [voice_keys[lid][film.original] for lid in lids], originals, voice_deps,
                originals, originals)
            tasks += made
            clip.exrs = exrs
            deps += [t.key for t in made if t.kind == RENDER]
            for lang in shot.lipsync_languages:  # the shot again, its mouths in `lang`
                dub_deps = [f"dub/{lid}/{lang}" for lid in lids]
                made, exrs = _blender_tasks(
                    board, original, shot, facts, layout, present, lang,
                    [voice_keys[lid][lang] for lid in lids], [dubs[lid][lang] for lid in lids],
                    voice_deps + dub_deps + [f"voice/{lid}/{lang}" for lid in lids], originals,
                    [voices[lid][lang] for lid in lids])
                tasks += made
                dubbed = f"{shot.id}.{lang}"
                lang_clips.setdefault(lang, {})[shot.id] = str(
                    layout.output / "shots" / f"{dubbed}.mp4")
                tasks.append(TaskSpec(f"clip/{dubbed}", CLIP, clip.model_copy(update={
                    "exrs": exrs, "output": lang_clips[lang][shot.id],
                    "thumb": str(layout.output / "shots" / f"{dubbed}.png"),
                }).stored(), deps=voice_deps + [t.key for t in made if t.kind == RENDER],
                    resources=CPU))
                clip_keys.append(f"clip/{dubbed}")
        tasks.append(TaskSpec(f"clip/{shot.id}", CLIP, clip.stored(), deps=deps,
                              resources=CPU))
        clip_keys.append(f"clip/{shot.id}")
    track_keys = []
    tracks: dict[str, str] = {}
    for lang in film.languages:
        tracks[lang] = str(layout.work / "tracks" / f"{lang}.wav")
        deps = [f"voice/{lid}/{lg}" for lid in voices for lg in film.languages]
        if lang != film.original:
            deps += [f"dub/{lid}/{lang}" for lid in voices]
        tasks.append(TaskSpec(f"track/{lang}", TRACK, TrackTask(
            board=board, lang=lang, voices=voices, dubs=dubs, output=tracks[lang],
        ).stored(), deps=deps, resources=LIGHT))
        track_keys.append(f"track/{lang}")
    tasks.append(TaskSpec(REEL, REEL, ReelTask(
        board=board, voices=voices, dubs=dubs, clips=clips, thumbs=thumbs, tracks=tracks,
        output=str(layout.output), lang_clips=lang_clips,
        files=[f for f in deliverables(layout, original) if "/shots/" not in f],
    ).stored(), deps=clip_keys + track_keys, resources=CPU))
    if len(tasks) > MAX_TASKS:
        raise ValueError(f"the storyboard makes {len(tasks):,} tasks, more than one job may "
                         f"hold ({MAX_TASKS:,}) — split it")
    return tasks


def _ai_tasks(board: Storyboard, shot: Shot, facts: dict[str, Any],
              layout: Layout) -> tuple[list[TaskSpec], list[dict[str, Any]], str]:
    """The generation job type's tasks for an AI shot (its candidates and their scoring),
    under keys `ai/<shot>/…`: (tasks, the candidates, the scores file)."""
    from wanhe.ai.compile import compile_gen_job, resolve
    from wanhe.ai.spec import GenSpec
    from wanhe.ai.spec import Shot as GenShot
    from wanhe.story.checks import ai_size

    prompt = shot.prompt
    assert prompt is not None
    spec = GenSpec(shots=[GenShot(
        name=shot.id, model=prompt.model, prompt=prompt.prompt, negative=prompt.negative,
        size=ai_size(board.film.width, board.film.height), candidates=prompt.candidates,
        seed=prompt.seed, steps=prompt.steps, guidance=prompt.guidance)])
    resolved = resolve(spec, {prompt.model: facts["ai"][prompt.model]}, int(facts["gpus"]))
    made = compile_gen_job(resolved, str(layout.work / "ai"))
    entries: list[dict[str, Any]] = []
    score = ""
    for task in made:
        task.key = f"ai/{task.key}"
        task.deps = [f"ai/{d}" for d in task.deps]
        if task.kind == "gen":
            entries += task.payload["candidates"]
        else:
            score = task.payload["output"]
    return made, entries, score


def choose_candidate(entries: list[dict[str, Any]], ranked: list[dict[str, Any]],
                     pick: int | None) -> tuple[dict[str, Any], str]:
    """The candidate an AI shot uses: the storyboard's pick, else the best-ranked one (the
    scorer ranks unflagged candidates first, by score); (candidate, "pick" or "score")."""
    by_index = {int(e["index"]): e for e in entries}
    if pick is not None:
        return by_index[pick], "pick"
    for scored in ranked:
        if int(scored["index"]) in by_index:
            return by_index[int(scored["index"])], "score"
    return entries[0], "first"


def _blender_tasks(
    board: Storyboard, original: Storyboard, shot: Shot, facts: dict[str, Any], layout: Layout,
    present: frozenset[str], lang: str, keys: list[str], audio: list[str], audio_deps: list[str],
    timing: list[str], takes: list[str],
) -> tuple[list[TaskSpec], list[str]]:
    """A Blender shot's lip sync (when a rigged character speaks: the mouths follow the lines'
    `audio` in `lang` — the phonemes of their `takes` — placed by the original's `timing`) and
    frame renders, content-named; (its tasks, every frame's EXR)."""
    from wanhe.voice.tts import phonemes_path

    assert shot.blender is not None
    film = board.film
    tag = shot.id if lang == film.original else f"{shot.id}.{lang}"
    frames, exrs, tasks = shot.blender.frame_list, [], []
    scene = shot.blender.file
    named = original_file(original, shot)
    scene_key = _digest("scene", facts["files"].get(named, named))
    camera = facts["scenes"][named]["camera"]
    rigged = _rigged_lines(board, shot)
    lipsync_dep: list[str] = []
    if rigged:
        scene_key = _digest("lipsync", MOUTH_VERSION, scene_key, rigged, keys,
                            [ln.character for ln in shot.lines], film.fps, film.padding,
                            film.gap, frames, film.max_stretch if lang != film.original else 0)
        scene = str(layout.cache / "lipsync" / scene_key[:2] / f"{scene_key}.blend")
        if scene not in present:
            tasks.append(TaskSpec(f"lipsync/{tag}", LIPSYNC, LipsyncTask(
                scene=shot.blender.file, output=scene, shot=shot, film=film, lang=lang,
                line_wavs=timing, audio_wavs=audio,
                phonemes=[str(phonemes_path(Path(t))) for t in takes],
                frame_start=frames[0], frames=len(frames), rigs=dict(rigged),
            ).stored(), deps=audio_deps, resources=CPU))
            lipsync_dep = [f"lipsync/{tag}"]
    for frame in frames:
        look = _digest("render", scene_key, frame, film.width, film.height,
                       shot.blender.samples, camera)
        exr = str(layout.cache / "render" / look[:2] / f"{look}.exr")
        exrs.append(exr)
        if exr in present:
            continue
        render = RenderTask(
            scene=scene, frame=frame, output=exr, resolution=(film.width, film.height),
            expected_size=(film.width, film.height), samples=shot.blender.samples, seed=0,
            camera=camera, threads=1, denoise_passes=False)
        tasks.append(TaskSpec(f"render/{tag}/{frame}", RENDER, render.stored(),
                              deps=lipsync_dep, resources=CPU))
    return tasks, exrs


def cached_outputs(tasks: list[TaskSpec]) -> list[str]:
    """The content-named files of lip sync and render tasks: the caller checks which exist
    and compiles again with them as `present`."""
    return [str(t.payload["output"]) for t in tasks if t.kind in (LIPSYNC, RENDER)]


def original_file(original: Storyboard, shot: Shot) -> str:
    """The shot's .blend as the storyboard names it (how the facts are keyed)."""
    found = next(s for s in original.shots if s.id == shot.id)
    assert found.blender is not None
    return found.blender.file


def _rigged_lines(board: Storyboard, shot: Shot) -> dict[str, dict[str, Any]]:
    if not shot.lipsync:
        return {}
    rigs: dict[str, dict[str, Any]] = {}
    for line in shot.lines:
        rig = board.character(line.character).rig
        if rig is not None:
            rigs[line.character] = rig.model_dump(mode="json")
    return rigs


def take_file(board: Storyboard, shot: Shot, index: int, lang: str) -> str:
    """A take's name among the job's outputs: `takes/s3.1_joe_en_take1.wav` (line, who,
    language, take) — a file an editor can tell apart from the others."""
    line = shot.lines[index]
    who = "".join(c if c.isalnum() else "-" for c in line.character.lower()).strip("-")
    return f"takes/{line_id(shot, index)}_{who or 'line'}_{lang}_take{line.take(lang)}.wav"


def deliverables(layout: Layout, board: Storyboard) -> list[str]:
    out = layout.output
    files = [out / "reel.mp4", out / "reel.otio", out / "contact_sheet.png",
             out / "report.json"]
    for lang in board.film.languages:
        files += [out / "subtitles" / f"{lang}.srt", out / "subtitles" / f"{lang}.vtt",
                  out / "audio" / f"{lang}.m4a"]
    files += [out / "shots" / f"{shot.id}{suffix}" for shot in board.shots
              for suffix in (".mp4", ".png")]
    files += [out / take_file(board, shot, n, lang) for shot in board.shots
              for n in range(len(shot.lines)) for lang in board.film.languages]
    for shot in board.shots:
        for lang in shot.lipsync_languages:
            files += [out / f"reel.{lang}.mp4", out / "shots" / f"{shot.id}.{lang}.mp4"]
    files += _editorial_files(out / "editorial", board)
    files = list(dict.fromkeys(files))
    return [str(f) for f in files]


def _editorial_files(folder: Path, board: Storyboard) -> list[Path]:
    """The editorial package's files known before it is made (a language whose lines overlap
    gets more EDLs, one per extra lane)."""
    from wanhe.story.editorial import edl_name, line_media_name

    files = [folder / name for name in ("reel.otio", "reel.xml", "reel.picture.edl",
                                        "package.json")]
    files += [folder / edl_name(lang) for lang in board.film.languages]
    files += [folder / "media" / f"{shot.id}.mp4" for shot in board.shots]
    files += [folder / "media" / line_media_name(line_id(shot, n), line.character, lang)
              for shot in board.shots for n, line in enumerate(shot.lines)
              for lang in board.film.languages]
    return files


def compile_with_cache(original: Storyboard, base: Path, facts: dict[str, Any],
                       layout: Layout) -> list[TaskSpec]:
    """`compile_story`, leaving out the lip sync and renders whose files the cache holds (the
    one step here that looks at files: which of those exist)."""
    first = compile_story(original, base, facts, layout)
    present = frozenset(p for p in cached_outputs(first) if Path(p).is_file())
    return compile_story(original, base, facts, layout, present) if present else first
