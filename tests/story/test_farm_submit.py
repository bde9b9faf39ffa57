"""A story job through the farm's API (`POST /api/jobs` with kind "story"): the storyboard
and its files uploaded by content, checked before the job is stored (422 at `main` when it is
bad), compiled into its task graph. The service runs without its dispatcher here; the local
end-to-end test runs the same graph to a reel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.api.conftest import Farm, farm  # noqa: F401  (the fixture)
from tests.story.conftest import write
from wanhe.cli.story_submit import story_files
from wanhe.story.load import load_storyboard


def _files(folder: Path, data: dict[str, Any]) -> tuple[dict[str, bytes], str]:
    path = write(folder, data)
    board = load_storyboard(path)
    named = {path.name: path, **story_files(board, folder)}
    return {name: p.read_bytes() for name, p in named.items()}, path.name


def test_a_story_job_is_checked_and_compiled(farm: Farm, tmp_path: Path,  # noqa: F811
                                             board: dict[str, Any]) -> None:
    token = farm.project("films")
    files, main = _files(tmp_path / "ok", board)
    assert set(files) == {"story.yaml", "board.png"}
    hashes = farm.upload(token, files)
    made = farm.client.post("/api/jobs", json={"kind": "story", "main": main, "files": hashes,
                                               "options": {}}, headers=farm.auth(token))
    assert made.status_code == 201, made.text
    job = farm.client.get(f"/api/jobs/{made.json()['id']}", headers=farm.auth(token)).json()
    assert job["kind"] == "story"
    kinds = job["tasks"]
    assert kinds["waiting"] + kinds.get("ready", 0) == 7  # 2 voices, dub, clip, 2 tracks, reel
    # the story cache is the project's own: another project's identical storyboard gets a
    # cache of its own (no reuse of, nor timing on, what the first project's film says)
    cache = Path(job["spec"]["cache"])
    assert cache.parent.name == "story" and cache.name.startswith("project-")
    other = farm.project("rivals")
    again = farm.client.post("/api/jobs", json={"kind": "story", "main": main,
                                                "files": farm.upload(other, files),
                                                "options": {}}, headers=farm.auth(other))
    assert again.status_code == 201, again.text
    theirs = farm.client.get(f"/api/jobs/{again.json()['id']}", headers=farm.auth(other)).json()
    assert Path(theirs["spec"]["cache"]).parent == cache.parent
    assert Path(theirs["spec"]["cache"]) != cache
    from wanhe.store.store import Store

    store = Store(farm.settings.db_url)
    voice_outputs = {t.payload["output"] for t in store.tasks(made.json()["id"])
                     if t.kind in ("voice", "dub")}
    assert voice_outputs and all(Path(o).is_relative_to(cache) for o in voice_outputs)


def test_a_bad_story_is_refused_before_it_is_stored(farm: Farm, tmp_path: Path,  # noqa: F811
                                                    board: dict[str, Any]) -> None:
    token = farm.project("films")
    board["scenes"][0]["shots"][0]["lines"][0]["character"] = "Zed"
    path = write(tmp_path / "bad", board)
    main = path.name
    hashes = farm.upload(token, {main: path.read_bytes(),
                                 "board.png": (path.parent / "board.png").read_bytes()})
    bad = farm.client.post("/api/jobs", json={"kind": "story", "main": main, "files": hashes,
                                              "options": {}}, headers=farm.auth(token))
    assert bad.status_code == 422
    detail = bad.json()["detail"][0]
    assert detail["loc"] == ["body", "main"] and "unknown character 'Zed'" in detail["msg"]
    syntax = farm.upload(token, {"story.yaml": b"film: [\n"})
    bad = farm.client.post("/api/jobs", json={"kind": "story", "main": "story.yaml",
                                              "files": syntax, "options": {}},
                           headers=farm.auth(token))
    assert bad.status_code == 422 and "story.yaml:2:1: malformed YAML" in bad.text
    assert farm.client.get("/api/jobs", headers=farm.auth(token)).json() == []


def test_files_outside_the_storyboard_folder_are_refused(tmp_path: Path,
                                                         board: dict[str, Any]) -> None:
    import pytest

    from wanhe.story.load import StoryError

    board["scenes"][0]["shots"][0]["image"]["path"] = "../elsewhere.png"
    path = write(tmp_path / "x", board)
    with pytest.raises(StoryError, match="outside the storyboard's folder"):
        story_files(load_storyboard(path), path.parent)
    assert yaml.safe_load(path.read_text())  # the file itself is fine


def test_a_scene_brings_the_files_it_uses(tmp_path: Path, board: dict[str, Any]) -> None:
    import subprocess
    import sys

    import pytest

    pytest.importorskip("bpy")
    root = Path(__file__).resolve().parents[2]
    scene = tmp_path / "film" / "shots" / "tex.blend"
    marker = tmp_path / "marker"
    subprocess.run([sys.executable, str(root / "examples" / "make_scenes.py"),
                    "missing-texture", str(scene), "--marker", str(marker)], check=True,
                   capture_output=True, timeout=120)
    texture = scene.parent / "textures" / "missing_wood.png"  # the scene's // path
    texture.parent.mkdir(parents=True)
    texture.write_bytes(b"\x89PNG not really")
    shot = board["scenes"][0]["shots"][0]
    shot.pop("image")
    shot["blender"] = {"file": "shots/tex.blend", "frames": "1-2"}
    path = write(tmp_path / "film", board)
    files = story_files(load_storyboard(path), path.parent)
    assert set(files) == {"shots/tex.blend", "shots/textures/missing_wood.png"}
