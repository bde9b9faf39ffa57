"""The checks of a storyboard that need its files and this machine's tools — every one before
any task runs: images that open, .blend files with the named cameras, rig objects and shape
keys, Piper voice files, installed espeak-ng voices, a reel of a sane length.

Returns the facts the plan depends on (file digests, what each scene holds), JSON-able.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wanhe.story.load import StoryError
from wanhe.story.schema import BUNDLED_VOICE, Storyboard
from wanhe.story.timing import estimate_reel_s

AI_SHOTS_NEED_GEN = ("AI shots need the gen job type (the generation job type is not on this "
                     "farm yet) — render the shot as an image or a Blender scene for now")


def _inside(base: Path, rel: str, what: str) -> Path:
    path = (base / rel).resolve()
    if not path.is_file():
        raise StoryError(f"{what}: {rel!r} does not exist (paths are relative to the "
                         f"storyboard's folder {base})")
    return path


def check_storyboard(board: Storyboard, base: Path, *, prompts: bool = False) -> dict[str, Any]:
    """Raise StoryError naming the first problem; else the facts the plan needs."""
    from wanhe.storage import sha256_file
    from wanhe.voice.tts import (
        VoiceError,
        bundled_model,
        check_espeak_voice,
        check_piper_model,
    )

    film = board.film
    estimate = estimate_reel_s(board)
    if estimate > film.max_reel_s:
        raise StoryError(f"the reel would last about {estimate:.0f} s, over film.max_reel_s "
                         f"({film.max_reel_s:.0f} s) — split it into several storyboards or "
                         "raise film.max_reel_s (at most 3600)")
    files: dict[str, str] = {}
    models: dict[str, str] = {}
    for character in board.characters:
        for lang in film.languages:
            used = any(line.character == character.name for shot in board.shots
                       for line in shot.lines)
            if not used:
                continue
            voice = board.voice_for(character.name, lang)
            where = f"character {character.name!r} ({lang})"
            try:
                if voice.engine == "piper":
                    path = bundled_model() if voice.model == BUNDLED_VOICE else (
                        base / voice.model).resolve()
                    check_piper_model(path)
                    if voice.model not in models:
                        models[voice.model] = sha256_file(path)
                else:
                    check_espeak_voice(voice.voice or lang)
            except VoiceError as exc:
                raise StoryError(f"{where}: {exc}") from None
    scenes: dict[str, Any] = {}
    for shot in board.shots:
        where = f"shot {shot.id!r}"
        if shot.prompt is not None and not prompts:
            raise StoryError(f"{where}: {AI_SHOTS_NEED_GEN}")
        if shot.image is not None:
            path = _inside(base, shot.image.path, f"{where} image")
            _check_image(path, where)
            files[shot.image.path] = sha256_file(path)
        if shot.blender is not None:
            scenes[shot.blender.file] = _check_blender_shot(board, shot, base, where, files)
    return {"files": files, "models": models, "scenes": scenes}


def _check_image(path: Path, where: str) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            image.verify()
    except (OSError, UnidentifiedImageError) as exc:
        raise StoryError(f"{where}: {path.name} is not an image Pillow can read ({exc})") \
            from None


def _check_blender_shot(board: Storyboard, shot: Any, base: Path, where: str,
                        files: dict[str, str]) -> dict[str, Any]:
    from wanhe.blender.errors import SceneError
    from wanhe.blender.inspect import check_blend_file
    from wanhe.blender.shapekeys import ShapeKeyError, inspect_story_scene
    from wanhe.storage import sha256_file

    source = shot.blender
    path = _inside(base, source.file, f"{where} blender.file")
    try:
        check_blend_file(path)
        info = inspect_story_scene(path)
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
            for key in (rig.open, rig.wide):
                if key is not None and key not in obj["shape_keys"]:
                    raise StoryError(
                        f"{where}: shape key {key!r} is not on {rig.object!r} in "
                        f"{source.file} (it has: {', '.join(obj['shape_keys']) or 'none'})")
    return {**info, "camera": camera}
