"""The checks of a storyboard that need its files and this machine's tools — every one before
any task runs: images that open, .blend files with the named cameras, rig objects and shape
keys, Piper voice files, installed espeak-ng voices, a reel of a sane length.

Returns the facts the plan depends on (file digests, what each scene holds), JSON-able.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from wanhe.story.load import StoryError
from wanhe.story.schema import BUNDLED_VOICE, Storyboard
from wanhe.story.timing import estimate_reel_s

AI_SHOTS_NEED_GEN = ("AI shots need the gen job type (the generation job type is not on this "
                     "farm) — render the shot as an image or a Blender scene for now")
if TYPE_CHECKING:
    from wanhe.blender.shapekeys import Boxed

ModelLookup = Callable[[str], "dict[str, Any] | None"]


def gen_available() -> bool:
    from wanhe.jobtypes.registry import find_job_type

    return find_job_type("gen") is not None


def ai_size(width: int, height: int) -> str:
    """The size an AI shot is generated at: the film's, down to multiples of 8 (latents)."""
    return f"{max(8, width - width % 8)}x{max(8, height - height % 8)}"


def _contained(base: Path, rel: str, what: str, inputs: Path | None) -> Path:
    """A file the storyboard names, relative to its folder, resolved. On the farm (`inputs`:
    the job's own input folder) it must lie inside the job's files: checked before it is
    opened, so no path on the farm can be probed."""
    if inputs is not None:
        from wanhe.storage import OutsideJob, job_input

        try:
            return job_input(base, rel, inputs, what, "add it to the storyboard's folder")
        except OutsideJob as exc:
            raise StoryError(str(exc)) from None
    return (base / rel).resolve()


def _inside(base: Path, rel: str, what: str, inputs: Path | None = None) -> Path:
    path = _contained(base, rel, what, inputs)
    if not path.is_file():
        raise StoryError(f"{what}: {rel!r} does not exist (paths are relative to the "
                         f"storyboard's folder {base})")
    return path


def check_storyboard(board: Storyboard, base: Path, *, models: ModelLookup | None = None,
                     gpus: int = 0, skip_prompts: bool = False,
                     inputs: Path | None = None,
                     scene_box: Callable[[], Boxed | None] | None = None) -> dict[str, Any]:
    """Raise StoryError naming the first problem; else the facts the plan needs.

    `models`: the model catalogue as the submitter sees it (AI-prompt shots need it and the
    gen job type); `gpus`: GPUs the farm has (AI candidates run on the CPU without);
    `skip_prompts`: leave AI shots to the farm's own check (a submitter sees no catalogue);
    `inputs`: on the farm, the job's own input folder — every file named must lie inside it;
    `scene_box`: on the farm, the submitting project's sandbox the Blender shots are read in
    (`wanhe.blender.shapekeys.Boxed`, made when the first shot asks)."""
    from wanhe.storage import sha256_file

    film = board.film
    estimate = estimate_reel_s(board)
    if estimate > film.max_reel_s:
        raise StoryError(f"the reel would last about {estimate:.0f} s, over film.max_reel_s "
                         f"({film.max_reel_s:.0f} s) — split it into several storyboards or "
                         "raise film.max_reel_s (at most 3600)")
    files: dict[str, str] = {}
    voice_models = _check_voices(board, base, inputs)
    scenes: dict[str, Any] = {}
    ai: dict[str, Any] = {}
    for shot in board.shots:
        where = f"shot {shot.id!r}"
        if shot.prompt is not None and not skip_prompts:
            ai[shot.prompt.model] = _check_prompt(shot, board, where, models)
        if shot.image is not None:
            path = _inside(base, shot.image.path, f"{where} image", inputs)
            _check_image(path, where)
            files[shot.image.path] = sha256_file(path)
        if shot.blender is not None:
            scenes[shot.blender.file] = _check_blender_shot(
                board, shot, base, where, files, inputs,
                scene_box() if scene_box is not None else None)
    return {"files": files, "models": voice_models, "scenes": scenes, "ai": ai, "gpus": gpus,
            "warnings": voice_warnings(board)}


def voice_warnings(board: Storyboard) -> list[str]:
    """Lines an espeak-ng voice would not speak in their language on the installed version
    (its phonemes switch to another language or leave the language's set): warnings, since
    a storyboard may want them (a name read the English way), each naming the line and fix."""
    from wanhe.story.schema import line_id
    from wanhe.voice.phonemes import check_lines, espeak_input, espeak_version

    film = board.film
    groups: dict[tuple[str, str], list[tuple[str, str]]] = {}  # (voice, lang) -> (id, text)
    for shot in board.shots:
        for n, line in enumerate(shot.lines):
            for lang in film.languages:
                voice = board.voice_for(line.character, lang)
                if voice.engine != "espeak":
                    continue
                text = line.text if lang == film.original else line.translations[lang]
                groups.setdefault((voice.voice or lang, lang), []).append(
                    (line_id(shot, n), text))
    warnings: list[str] = []
    version = espeak_version()
    for (name, lang), lines in groups.items():
        bad = dict(check_lines([text for _, text in lines], name, lang))
        for lid, text in lines:
            if text in bad:
                spoken_by = espeak_input(text, name)[0]
                warnings.append(
                    f"line {lid} ({lang}): espeak-ng {version} voice {spoken_by!r} does not "
                    f"speak it in {lang} — {bad.pop(text).describe()}; give {lang} text in its own "
                    f"script, another voice, or a Piper voice for {lang}")
    return warnings


def _check_voices(board: Storyboard, base: Path, inputs: Path | None) -> dict[str, str]:
    """Each voice that speaks a line, with the tools it needs: espeak-ng only for lines an
    espeak voice speaks, rubberband only for a pitch shift or a dub that may be sped up.
    Returns the digest of each Piper voice file by its name in the storyboard."""
    from wanhe.storage import sha256_file
    from wanhe.voice.phonemes import MANDARIN_VOICES, PINYIN_VOICE
    from wanhe.voice.stretch import StretchError, check_rubberband
    from wanhe.voice.tts import VoiceError, bundled_model, check_espeak_voice, check_piper_model

    film = board.film
    speakers = {line.character for shot in board.shots for line in shot.lines}
    voice_models: dict[str, str] = {}
    for character in board.characters:
        if character.name not in speakers:
            continue
        for lang in film.languages:
            voice = board.voice_for(character.name, lang)
            where = f"character {character.name!r} ({lang})"
            try:
                if voice.engine == "piper":
                    path = bundled_model() if voice.model == BUNDLED_VOICE else _contained(
                        base, voice.model, f"{where} voice model", inputs)
                    check_piper_model(path)
                    if voice.model not in voice_models:
                        voice_models[voice.model] = sha256_file(path)
                else:
                    check_espeak_voice(voice.voice or lang)
                    if (voice.voice or lang).lower() in MANDARIN_VOICES:
                        check_espeak_voice(PINYIN_VOICE)  # what Chinese characters speak with
                if voice.pitch:
                    check_rubberband(f"a pitch of {voice.pitch:+g} semitones")
                if lang != film.original and film.max_stretch > 0:
                    check_rubberband(f"a dub sped up to fit (film.max_stretch "
                                     f"{film.max_stretch:g}; 0 turns that off)")
            except VoiceError as exc:
                why = _defaulted(board, character.name, lang) if voice.engine == "espeak" else ""
                raise StoryError(f"{where}: {exc}{why}") from None
            except StretchError as exc:
                raise StoryError(f"{where}: {exc}") from None
    return voice_models


def _defaulted(board: Storyboard, name: str, lang: str) -> str:
    """Why a line speaks with espeak-ng when the storyboard did not say so."""
    character = board.character(name)
    if lang == board.film.original or lang in character.voices:
        return ""
    return (f" (a language without a voice under {name}'s voices speaks with espeak-ng: "
            f"give voices.{lang} a Piper voice to need none)")


def _check_prompt(shot: Any, board: Storyboard, where: str,
                  models: ModelLookup | None) -> dict[str, Any]:
    from wanhe.ai.models import TEXT_TO_IMAGE
    from wanhe.ai.spec import Shot as GenShot

    if not gen_available():
        raise StoryError(f"{where}: {AI_SHOTS_NEED_GEN}")
    prompt = shot.prompt
    record = models(prompt.model) if models is not None else None
    if record is None:
        raise StoryError(f"{where}: unknown model {prompt.model!r} — register it with `wanhe "
                         "models add NAME PATH` (wanhe models list shows them)")
    if record["task"] != TEXT_TO_IMAGE:
        raise StoryError(f"{where}: model {prompt.model!r} makes {record['task']}; a story "
                         "shot's prompt needs a text-to-image model")
    try:
        GenShot(name=shot.id, model=prompt.model, prompt=prompt.prompt,
                size=ai_size(board.film.width, board.film.height),
                candidates=prompt.candidates, steps=prompt.steps)
    except ValueError as exc:
        raise StoryError(f"{where}: {exc}") from None
    return record


def _check_image(path: Path, where: str) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError) as exc:
        raise StoryError(f"{where}: {path.name} is not an image Pillow can read ({exc})") \
            from None


def _check_blender_shot(board: Storyboard, shot: Any, base: Path, where: str,
                        files: dict[str, str], inputs: Path | None,
                        boxed: Boxed | None = None) -> dict[str, Any]:
    from wanhe.blender.errors import SceneError
    from wanhe.blender.inspect import check_blend_file
    from wanhe.blender.shapekeys import ShapeKeyError, inspect_story_scene
    from wanhe.storage import sha256_file

    source = shot.blender
    path = _inside(base, source.file, f"{where} blender.file", inputs)
    try:
        check_blend_file(path)
        info = inspect_story_scene(path, boxed)
    except (SceneError, ShapeKeyError) as exc:
        raise StoryError(f"{where}: {exc}") from None
    files[source.file] = sha256_file(path)
    camera = source.camera or info["camera"]
    if source.camera and source.camera not in info["cameras"]:
        raise StoryError(f"{where}: camera {source.camera!r} is not in {source.file} (cameras: "
                         f"{', '.join(info['cameras']) or 'none'})")
    if camera is None:
        raise StoryError(f"{where}: {source.file} has no active camera — name one in "
                         "blender.camera")
    if shot.lipsync:
        for line in shot.lines:
            rig = board.character(line.character).rig
            if rig is None:
                continue
            obj = info["objects"].get(rig.object)
            if obj is None:
                raise StoryError(
                    f"{where}: rig object {rig.object!r} of {line.character!r} is not in "
                    f"{source.file} — fix characters.rig.object, or set lipsync: false on "
                    "the shot if the character is off screen")
            for key in (rig.open, rig.wide, *rig.visemes.values()):
                if key is not None and key not in obj["shape_keys"]:
                    raise StoryError(
                        f"{where}: shape key {key!r} is not on {rig.object!r} in "
                        f"{source.file} (it has: {', '.join(obj['shape_keys']) or 'none'})")
    return {**info, "camera": camera}


def local_models(db_url: str) -> ModelLookup:
    """The local catalogue (project `local`, then farm-wide) as a lookup; the database is
    opened only when an AI shot asks."""

    def lookup(name: str) -> dict[str, Any] | None:
        from wanhe.ai import catalog
        from wanhe.store.store import Store

        store = Store(db_url)
        try:
            project = store.ensure_project("local")
            return catalog.find_model(store, name, project.id)
        finally:
            store.dispose()

    return lookup
