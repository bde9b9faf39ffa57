"""`wanhe submit story.yaml`: check the storyboard here, send it and the files it names
(images, .blend scenes, Piper voices) to the farm — only what the farm lacks — and queue a
`story` job. Files keep their paths relative to the storyboard's folder."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from wanhe.story.load import StoryError
from wanhe.story.schema import BUNDLED_VOICE, Storyboard


def story_files(board: Storyboard, base: Path) -> dict[str, Path]:
    """Every file the storyboard names, by its path relative to `base` (which must hold them:
    the farm resolves them there)."""
    names: list[str] = []
    for shot in board.shots:
        if shot.image is not None:
            names.append(shot.image.path)
        if shot.blender is not None:
            names.append(shot.blender.file)
    for character in board.characters:
        for voice in [character.voice, *character.voices.values()]:
            if voice.engine == "piper" and voice.model != BUNDLED_VOICE:
                names += [voice.model, voice.model + ".json"]
    files: dict[str, Path] = {}
    root = base.resolve()
    for name in names:
        path = (base / name).resolve()
        if not path.is_relative_to(root):
            raise StoryError(f"{name!r} lies outside the storyboard's folder {root}; the farm "
                             "gets files by their path under it — move the file there")
        files[path.relative_to(root).as_posix()] = path
        if path.suffix == ".blend" and path.is_file():
            files.update(_scene_files(path, root, name))
    return files


def _scene_files(scene: Path, root: Path, name: str) -> dict[str, Path]:
    """The files a .blend uses (textures, libraries: blender-asset-tracer), under `root`."""
    from wanhe.blender.inspect import check_blend_file
    from wanhe.transfer.pack import collect

    found: dict[str, Path] = {}
    for path in collect(scene, check_blend_file).files.values():
        path = path.resolve()
        if not path.is_relative_to(root):
            raise StoryError(f"{name} uses {path}, outside the storyboard's folder {root} — "
                             "keep the scene's files under it (relative // paths)")
        found[path.relative_to(root).as_posix()] = path
    return found


def submit_story(client: Any, storyboard: Path, *, name: str | None, priority: int,
                 depends_on: list[int], kitsu: dict[str, Any] | None = None
                 ) -> tuple[dict[str, Any], int, int, int]:
    """(the job as the farm answered, files, files sent, bytes sent); `kitsu`: the sequence
    and task type the reel publishes to (docs/kitsu.md)."""
    from wanhe.story.checks import check_storyboard
    from wanhe.story.load import load_storyboard
    from wanhe.transfer.pack import Bundle, hash_all, upload

    storyboard = storyboard.expanduser().resolve()
    board = load_storyboard(storyboard)
    # every mistake here, before any upload (AI shots' models: the farm's catalogue decides)
    check_storyboard(board, storyboard.parent, skip_prompts=True)
    files = {storyboard.name: storyboard, **story_files(board, storyboard.parent)}
    bundle = Bundle(storyboard.parent, storyboard.name, files)
    hash_all(bundle)
    sent, size = upload(client, bundle)
    job = client.json("POST", "/api/jobs", json={
        "kind": "story", "name": name or board.film.title, "main": bundle.main,
        "files": bundle.hashes, "options": {}, "priority": priority,
        "depends_on": depends_on, **({"kitsu": kitsu} if kitsu else {}),
    })
    return job, len(files), sent, size
