"""`wanhe estimate STORY.yaml`: what a storyboard's reel will cost, part by part.

The storyboard is checked as `wanhe story render` checks it (its files, voices, cameras and
models), then each part is probed or reckoned:

- voices: every voice that speaks synthesizes its shortest and its longest line (as a voice
  task does: synthesis, pitch shift, trimming, the phoneme timings; into a temporary
  folder, not the voice cache), which fits its compute and its speech per character
  (:mod:`wanhe.estimate.ai`); each line in each language is then its characters' worth,
  and a worker's first Piper take its import (timed in a fresh interpreter, once).
  The lines' lengths give the reel's timing (`wanhe.story.timing`), so its frame count;
- Blender shots: the scene probe of `wanhe estimate SCENE` (`wanhe.runs.estimate`) at the
  film's size, the shot's samples and frames, one thread, no denoising (as a story renders
  them), once more per lip-synced language; a rigged shot's lip sync is one Blender that
  starts, opens the scene and saves a keyed copy (timed once per scene);
- AI shots: the generation estimate (`wanhe.runs.estimate_ai`) of the spec the story
  compiles them to;
- assembly: encoding the clips and the reels, from a probe that encodes frames of the film's
  size as a clip does (per frame). The dubs' time stretch, the audio mix and the editorial
  files are not probed (seconds).

Each probe is cached under the home folder's `probes/` (voices by voice, the assembly by
film size), so asking again probes nothing.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from wanhe.config import Settings
from wanhe.estimate.ai import LineRate, fit_line_rate
from wanhe.estimate.deadline import DeadlineAnswer, fewest_within
from wanhe.estimate.workers import GraphTask, graph_runs, graph_schedule, useful_machines
from wanhe.runs.estimate import Farm, Prices
from wanhe.runs.story_graph import TaskCosts, story_graph
from wanhe.story.schema import Storyboard, Voice, line_id

__all__ = ["Part", "StoryEstimate", "StoryFarm", "estimate_story"]

PROBE_VERSION = 3  # bump when a probe's plan changes: older cached probes are not reused
ASSEMBLY_FRAMES = 24  # frames the assembly probe encodes


@dataclass
class Part:
    part: str  # voices, blender, ai, assembly
    what: str
    core_s: float
    gpu_s: float
    source: str
    detail: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class StoryFarm:
    """The farm a storyboard is asked about: `machines` of `cores` CPU slots and `gpus`
    GPUs each."""

    machines: int
    cores: int
    gpus: int = 0


@dataclass
class StoryEstimate:
    storyboard: str
    languages: list[str]
    reel_s: float
    reel_frames: int
    parts: list[Part]
    prices: Prices
    notes: list[str] = field(default_factory=list)
    graph: list[GraphTask] = field(default_factory=list)  # the job's tasks, with seconds
    task_kinds: dict[str, int] = field(default_factory=dict)
    farm: StoryFarm | None = None
    deadline_s: float | None = None
    costs: TaskCosts = field(default_factory=TaskCosts)  # each task's seconds, by the parts

    def on_farm(self) -> tuple[float, DeadlineAnswer | None] | None:
        """The job's wall on the farm asked about (its task graph list-scheduled with its
        dependencies, :func:`wanhe.estimate.workers.graph_schedule`, best of 1 … N), and the
        fewest machines that meet the deadline; None without a farm. Raises ValueError for
        a farm that cannot run a task (a GPU task on machines without GPUs)."""
        farm = self.farm
        if farm is None or not self.graph:
            return None
        if farm.gpus == 0 and any(t.gpus for t in self.graph):
            raise ValueError("--gpus: this storyboard's AI shots run on the GPU — give "
                             "--gpus G (GPUs a machine)")
        useful = useful_machines(self.graph, farm.cores, farm.gpus)  # more cannot help
        most = useful if self.deadline_s is not None else min(farm.machines, useful)
        runs = graph_runs(self.graph, most, cores=farm.cores, gpus=farm.gpus)
        wall = runs[min(farm.machines, useful) - 1]  # (the best of 1 … that many)
        if farm.machines > useful:  # past MOST_MACHINES: that farm too (no better)
            wall = min(wall, graph_schedule(self.graph, farm.machines, cores=farm.cores,
                                            gpus=farm.gpus))
        answer = None
        if self.deadline_s is not None:
            answer = fewest_within(lambda n: runs[n - 1], useful, self.deadline_s)
        return wall, answer

    def farm_dict(self) -> dict[str, Any] | None:
        found = self.on_farm()
        if found is None or self.farm is None:
            return None
        wall, answer = found
        return {
            **asdict(self.farm), "unit": "machine", "tasks": len(self.graph),
            "task_kinds": self.task_kinds, "wall_s": wall,
            "busy_s": sum(t.seconds * max(t.cpus, t.gpus) for t in self.graph),
            "deadline_s": self.deadline_s,
            "deadline": None if answer is None else {
                **asdict(answer), "explanation": answer.explain(self.deadline_s or 0.0)},
        }

    def to_dict(self) -> dict[str, Any]:
        core_s = sum(p.core_s for p in self.parts)
        gpu_s = sum(p.gpu_s for p in self.parts)
        core_h, gpu_h = core_s / 3600, gpu_s / 3600
        return {
            "kind": "story", "storyboard": self.storyboard, "languages": self.languages,
            "reel_s": self.reel_s, "reel_frames": self.reel_frames,
            "parts": [asdict(p) for p in self.parts], "core_s": core_s, "gpu_s": gpu_s,
            "core_hours": core_h, "gpu_hours": gpu_h,
            "cost": core_h * self.prices.core_hour + gpu_h * self.prices.gpu_hour,
            "prices": asdict(self.prices), "farm": self.farm_dict(), "notes": self.notes,
            "task_costs": asdict(self.costs),  # what a farm's estimate schedules (the API)
        }


def _cpu_now() -> float:
    """CPU seconds of this process and of its finished children (espeak-ng, rubberband)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def _cached(path: Path, make: Any) -> tuple[dict[str, Any], bool]:
    """The JSON at `path`, or what `make()` returns, written there; (it, whether cached)."""
    from wanhe.imaging.atomic import atomic_write

    try:
        return json.loads(path.read_text()), True
    except (OSError, ValueError):
        pass
    made = make()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(path) as tmp:
        tmp.write_text(json.dumps(made))
    return made, False


def _key(*parts: Any) -> str:
    return hashlib.sha256(json.dumps([PROBE_VERSION, *parts], sort_keys=True,
                                     default=str).encode()).hexdigest()


# ------------------------------------------------------------------------------- voices


def _voice_texts(board: Storyboard) -> dict[str, tuple[str, Voice, list[str]]]:
    """Every voice that speaks (by its settings and language): (lang, voice, its texts)."""
    film = board.film
    found: dict[str, tuple[str, Voice, list[str]]] = {}
    for shot in board.shots:
        for line in shot.lines:
            for lang in film.languages:
                voice = board.voice_for(line.character, lang)
                text = line.text if lang == film.original else line.translations[lang]
                key = json.dumps([lang, voice.model_dump(mode="json")], sort_keys=True)
                found.setdefault(key, (lang, voice, []))[2].append(text)
    return found


def _probe_voice(lang: str, voice: Voice, texts: list[str], base: Path) -> dict[str, Any]:
    """Synthesize the voice's shortest and longest text: [(chars, compute s, audio s)]."""
    from wanhe.voice.tts import PiperVoices, resolve_model, synthesize, write_take_phonemes

    model = resolve_model(voice.model, base) if voice.engine == "piper" else None
    picked = sorted({min(texts, key=len), max(texts, key=len)}, key=len)
    voices = PiperVoices()
    rows: list[list[float]] = []
    with tempfile.TemporaryDirectory(prefix="wanhe-estimate-voice-") as tmp:
        # once untimed: what a worker pays only for its first take (imports, first session)
        synthesize(picked[0], voice, lang, model, Path(tmp) / "warm.wav", voices)
        for n, text in enumerate(picked):
            started = _cpu_now()
            take = Path(tmp) / f"probe{n}.wav"
            made = synthesize(text, voice, lang, model, take, voices)
            write_take_phonemes(text, voice, lang, model, take)
            rows.append([len(text), _cpu_now() - started, made.seconds])
    return {"lines": rows}


def _probe_piper_start() -> dict[str, Any]:
    """CPU seconds a worker pays once before its first Piper take: importing Piper and
    onnxruntime (in a fresh interpreter, less the interpreter's own start)."""
    import subprocess
    import sys

    def cpu(code: str) -> float:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)

    return {"cpu_s": max(cpu("import piper, onnxruntime") - cpu("pass"), 0.0)}


def _voice_rates(board: Storyboard, base: Path, facts: dict[str, Any], cache: Path,
                 on_probe: Any) -> tuple[dict[str, LineRate], int]:
    """Each speaking voice's rate (by `_voice_texts` key); how many were probed now."""
    rates: dict[str, LineRate] = {}
    probed = 0
    for key, (lang, voice, texts) in _voice_texts(board).items():
        digest = facts["models"].get(voice.model) if voice.engine == "piper" else None
        path = cache / f"voice-{_key('voice', key, digest)}.json"

        def make(lang: str = lang, voice: Voice = voice, texts: list[str] = texts
                 ) -> dict[str, Any]:
            if on_probe is not None:
                on_probe(f"probing the {voice.engine} voice "
                         f"{voice.voice or voice.model} ({lang}) …")
            return _probe_voice(lang, voice, texts, base)

        data, was_cached = _cached(path, make)
        probed += not was_cached
        rates[key] = fit_line_rate([(int(c), float(t), float(a)) for c, t, a in data["lines"]])
    return rates, probed


# ----------------------------------------------------------------------------- assembly


def _probe_assembly(width: int, height: int, fps: float) -> dict[str, Any]:
    """CPU seconds per frame of a clip of the film's size: a still with a camera move,
    scaled and encoded as a clip task does (`wanhe.imaging.reel`)."""
    import numpy as np
    from PIL import Image

    from wanhe.imaging.reel import still_frames, write_clip

    with tempfile.TemporaryDirectory(prefix="wanhe-estimate-clip-") as tmp:
        still = Path(tmp) / "still.png"
        noise = np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)
        Image.fromarray(noise).save(still)
        move = {"start_zoom": 1.0, "end_zoom": 1.3, "start_center": (0.5, 0.5),
                "end_center": (0.6, 0.45)}
        write_clip(still_frames(still, (width, height), 2, move), fps, Path(tmp) / "w.mp4")
        started = _cpu_now()
        write_clip(still_frames(still, (width, height), ASSEMBLY_FRAMES, move), fps,
                   Path(tmp) / "clip.mp4")
        spent = _cpu_now() - started
    return {"per_frame_s": spent / ASSEMBLY_FRAMES}


# ------------------------------------------------------------------------------ blender


def _blender_part(board: Storyboard, shot: Any, base: Path, facts: dict[str, Any],
                  settings: Settings, prices: Prices, on_probe: Any,
                  costs: TaskCosts) -> Part:
    """The shot's part; its frames' and lip sync's seconds (one language) go in `costs`."""
    from wanhe.render.spec import RenderOptions
    from wanhe.runs.estimate import estimate_render, prepare_spec

    blend = shot.blender
    film = board.film
    camera = facts["scenes"][blend.file]["camera"]
    options = RenderOptions(frames=blend.frames, samples=blend.samples, threads=1,
                            denoise=False, camera=camera)
    prepared = prepare_spec((base / blend.file).resolve(), options, settings.blender)
    spec = prepared.spec.model_copy(update={"width": film.width, "height": film.height})
    prepared = replace(prepared, spec=spec)

    def told() -> None:
        if on_probe is not None:
            on_probe(f"probing shot {shot.id!r} ({blend.file}, frames {blend.frames}) …")

    report = estimate_render(prepared, farm=Farm(machines=1, cores=1), prices=prices,
                             blender=settings.blender, cache_dir=settings.home / "probes",
                             on_probe=told)
    times = 1 + len(shot.lipsync_languages)
    breakdown = report.estimate.breakdown
    render_s = (breakdown.render_core_s + breakdown.load_core_s) * times
    rigged = shot.lipsync and any(board.character(line.character).rig is not None
                                  for line in shot.lines)
    lipsync_s = 0.0
    if rigged:
        from wanhe.storage import sha256_file

        scene = (base / blend.file).resolve()
        keying, _ = _cached(settings.home / "probes" /
                            f"lipsync-{_key('lipsync', sha256_file(scene))}.json",
                            lambda: _probe_lipsync(scene))
        lipsync_s = float(keying["cpu_s"]) * times
        costs.lipsync[shot.id] = float(keying["cpu_s"])
    per_frame = {f: sum(t) for f, t in report.estimate.frame_task_core_s.items()}
    scale = render_s / times / max(sum(per_frame.values()), 1e-12)  # loads included
    costs.frames[shot.id] = {f: c * scale for f, c in per_frame.items()}
    what = (f"shot {shot.id}: {len(blend.frame_list)} frame(s) at {film.width}x{film.height}, "
            f"{blend.samples} samples" + (f", × {times} (lip-synced languages)"
                                          if times > 1 else "")
            + (", lip sync" if rigged else ""))
    source = (f"scene probe{' (cached)' if report.cached else ''}: ±"
              f"{200 * report.estimate.sigma_rel:.0f} % (2σ), {report.estimate.form()}")
    return Part("blender", what, render_s + lipsync_s, 0.0, source,
                {"render_core_s": render_s, "lipsync_core_s": lipsync_s,
                 "frames": len(blend.frame_list) * times, "cached": report.cached})


def _probe_lipsync(scene: Path) -> dict[str, Any]:
    """CPU seconds of a lip sync task's Blender: a fresh Blender that opens the scene and
    saves a keyed copy (`wanhe.blender.shapekeys`, as the task does; no keys here)."""
    from wanhe.blender.shapekeys import write_mouth_keys

    with tempfile.TemporaryDirectory(prefix="wanhe-estimate-keys-") as tmp:
        _, cpu = write_mouth_keys(scene, Path(tmp) / "keyed.blend", 1, {})
    return {"cpu_s": cpu}


# --------------------------------------------------------------------------- the whole


def estimate_story(path: Path, *, settings: Settings, prices: Prices,
                   on_probe: Any = None, farm: StoryFarm | None = None,
                   deadline_s: float | None = None,
                   facts: dict[str, Any] | None = None) -> StoryEstimate:
    """The estimate of the storyboard at `path` (raises StoryError, InputError, VoiceError:
    one line each). `farm`, `deadline_s`: its task graph's wall time on that farm and the
    fewest machines that finish within the deadline (`StoryEstimate.on_farm`). `facts`: the
    storyboard's check made already (a farm's submit), else it is checked here."""
    from wanhe.story.checks import check_storyboard, local_models
    from wanhe.story.load import load_storyboard
    from wanhe.story.timing import reel_timing

    board = load_storyboard(path)
    base = path.parent
    if facts is None:
        facts = check_storyboard(board, base, models=local_models(settings.db_url))
    film = board.film
    cache = settings.home / "probes"
    parts: list[Part] = []
    notes: list[str] = list(facts.get("warnings") or [])

    costs = TaskCosts()
    rates, probed = _voice_rates(board, base, facts, cache, on_probe)
    durations: dict[tuple[str, str], float] = {}
    voice_s = 0.0
    lines = 0
    for shot in board.shots:
        for n, line in enumerate(shot.lines):
            for lang in film.languages:
                voice = board.voice_for(line.character, lang)
                text = line.text if lang == film.original else line.translations[lang]
                rate = rates[json.dumps([lang, voice.model_dump(mode="json")], sort_keys=True)]
                durations[(line_id(shot, n), lang)] = rate.audio_s(len(text))
                costs.voices[f"voice/{line_id(shot, n)}/{lang}"] = rate.compute_s(len(text))
                voice_s += rate.compute_s(len(text))
                lines += 1
    if any(voice.engine == "piper" for _, voice, _ in _voice_texts(board).values()):
        start, _ = _cached(cache / f"piper-start-{_key('piper-start')}.json",
                           _probe_piper_start)
        voice_s += float(start["cpu_s"])  # one worker, as for a model's load
        costs.voice_start_s = float(start["cpu_s"])
    if lines:
        per_audio = voice_s / max(sum(durations.values()), 1e-9)
        parts.append(Part(
            "voices", f"{lines} line take(s) in {len(film.languages)} language(s), "
                      f"{len(rates)} voice(s)", voice_s, 0.0,
            f"synthesis probe of each voice{' (cached)' if not probed else ''}: "
            f"{per_audio:.2f} s of compute per s of speech",
            {"rates": {k: asdict(r) for k, r in rates.items()}}))
    timing = reel_timing(board, durations)
    reel_frames = sum(s.layout.frames(film.fps) for s in timing.shots)

    for shot in board.shots:
        if shot.blender is not None:
            parts.append(_blender_part(board, shot, base, facts, settings, prices, on_probe,
                                       costs))

    ai_shots = [shot for shot in board.shots if shot.prompt is not None]
    if ai_shots:
        parts.append(_ai_part(board, ai_shots, settings, prices, on_probe))
        gen = parts[-1].detail["gen"]
        costs.gen = {s["name"]: (float(s["per_candidate_s"]), float(s["cold_s"]))
                     for s in gen["shots"]}
        costs.gen_start_s = float(gen["worker_start_s"])

    assembly, was_cached = _cached(
        cache / f"assembly-{_key('assembly', film.width, film.height, film.fps)}.json",
        lambda: _probe_assembly(film.width, film.height, film.fps))
    clip_frames = sum(s.layout.frames(film.fps) * (1 + len(shot.lipsync_languages))
                      for s, shot in zip(timing.shots, board.shots, strict=True))
    reels = 1 + len({lang for shot in board.shots for lang in shot.lipsync_languages})
    frames = clip_frames + reel_frames * reels
    costs.clip_frame_s = float(assembly["per_frame_s"])
    costs.clip_frames = {shot.id: s.layout.frames(film.fps)
                         for s, shot in zip(timing.shots, board.shots, strict=True)}
    costs.reel_frames = reel_frames * reels
    parts.append(Part(
        "assembly", f"{clip_frames} clip frame(s), {reels} reel(s) of {reel_frames} frame(s)",
        assembly["per_frame_s"] * frames, 0.0,
        f"encoding probe{' (cached)' if was_cached else ''}: "
        f"{1000 * assembly['per_frame_s']:.1f} ms per frame at {film.width}x{film.height}",
        {"frames": frames, "per_frame_s": assembly["per_frame_s"]}))
    notes.append("not probed: the dubs' time stretch, the audio mix, subtitles and the "
                 "editorial files (seconds)")
    graph, kinds = story_graph(board, base, facts, costs)
    return StoryEstimate(str(path), list(film.languages), timing.duration, reel_frames, parts,
                         prices, notes, graph=graph, task_kinds=kinds, farm=farm,
                         deadline_s=deadline_s, costs=costs)


def _ai_part(board: Storyboard, shots: list[Any], settings: Settings, prices: Prices,
             on_probe: Any) -> Part:
    """The AI shots as the one generation spec the story compiles them to."""
    from wanhe.ai.spec import GenSpec
    from wanhe.ai.spec import Shot as GenShot
    from wanhe.runs.estimate_ai import estimate_gen
    from wanhe.story.checks import ai_size

    film = board.film
    spec = GenSpec(shots=[GenShot(
        name=shot.id, model=shot.prompt.model, prompt=shot.prompt.prompt,
        negative=shot.prompt.negative, size=ai_size(film.width, film.height),
        candidates=shot.prompt.candidates, seed=shot.prompt.seed, steps=shot.prompt.steps,
        guidance=shot.prompt.guidance) for shot in shots], threads=os.cpu_count() or 1)
    made = estimate_gen(spec, settings=settings, prices=prices, name="ai shots",
                        on_probe=on_probe)
    data = made.to_dict()
    sources = sorted({s["source"] if s["source"] == "probe" else
                      f"history of {s['history_runs']} run(s)" for s in data["shots"]})
    seconds = float(data["seconds"])
    core_s, gpu_s = (seconds, seconds) if made.device == "gpu" else (seconds, 0.0)
    return Part("ai", f"{len(shots)} shot(s), {data['candidates']} candidate(s) on the "
                      f"{made.device.upper()}", core_s, gpu_s,
                "generation " + ", ".join(sources), {"gen": data})
