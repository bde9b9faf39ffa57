"""The task graph a storyboard compiles to (pure): one voice per line and language, one dub
per line and dubbed language, lip sync and one render per frame for a rigged Blender shot,
a clip per shot, a track per language, the reel; content-named caches leave tasks out."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from wanhe.story.plan import Layout, cached_outputs, compile_story
from wanhe.story.schema import Storyboard


def _board(board: dict[str, Any], **shot: Any) -> Storyboard:
    board["characters"][1]["rig"] = {"object": "Mouth", "open": "MouthOpen"}
    board["scenes"][0]["shots"].append({
        "id": "s2", "blender": {"file": "rig.blend", "frames": "1-6"},
        "lines": [{"character": "Mei", "text": "Yes.", "translations": {"cmn": "是。"}}],
        **shot})
    return Storyboard.model_validate(board)


FACTS = {"files": {"board.png": "aa", "rig.blend": "bb"}, "models": {},
         "scenes": {"rig.blend": {"camera": "Camera"}}, "ai": {}, "gpus": 0}


def _layout(tmp: Path) -> Layout:
    return Layout(tmp / "out", tmp / "work", tmp / "cache")


def _check_graph(tasks: list[Any]) -> None:
    keys = [t.key for t in tasks]
    assert len(keys) == len(set(keys))
    for n, task in enumerate(tasks):  # every dependency exists and comes first
        assert all(d in keys[:n] for d in task.deps), task.key


def test_the_graph_of_a_storyboard(tmp_path: Path, board: dict[str, Any]) -> None:
    story = _board(board)
    tasks = compile_story(story, tmp_path, FACTS, _layout(tmp_path))
    _check_graph(tasks)
    assert Counter(t.kind for t in tasks) == {
        "voice": 4, "dub": 2, "lipsync": 1, "render": 6, "clip": 2, "track": 2, "reel": 1}
    render = next(t for t in tasks if t.kind == "render")
    assert render.deps == ["lipsync/s2"] and render.payload["camera"] == "Camera"
    assert render.payload["scene"].startswith(str(tmp_path / "cache" / "lipsync"))
    voice = next(t for t in tasks if t.key == "voice/s1.1/cmn")
    assert voice.payload["voice"]["engine"] == "espeak"
    assert voice.payload["output"].startswith(str(tmp_path / "cache" / "voice"))
    again = compile_story(story, tmp_path, FACTS, _layout(tmp_path))
    assert [t.payload for t in again] == [t.payload for t in tasks]  # deterministic


def test_a_changed_line_renames_its_voice_only(tmp_path: Path, board: dict[str, Any]) -> None:
    first = {t.key: t.payload.get("output") for t in
             compile_story(_board(board), tmp_path, FACTS, _layout(tmp_path))}
    board["scenes"][0]["shots"][0]["lines"][0]["translations"]["cmn"] = "您好。"
    board["scenes"][0]["shots"].pop()
    second = {t.key: t.payload.get("output") for t in
              compile_story(_board(board), tmp_path, FACTS, _layout(tmp_path))}
    changed = {k for k in first if k.startswith(("voice/", "dub/")) and first[k] != second[k]}
    assert changed == {"voice/s1.1/cmn", "dub/s1.1/cmn"}


def test_cached_frames_and_lip_sync_are_left_out(tmp_path: Path,
                                                 board: dict[str, Any]) -> None:
    story = _board(board)
    tasks = compile_story(story, tmp_path, FACTS, _layout(tmp_path))
    present = frozenset(cached_outputs(tasks))
    assert len(present) == 7
    cached = compile_story(story, tmp_path, FACTS, _layout(tmp_path), present)
    _check_graph(cached)
    assert not any(t.kind in ("render", "lipsync") for t in cached)
    clip = next(t for t in cached if t.key == "clip/s2")
    assert len(clip.payload["exrs"]) == 6 and not any(d.startswith("render/") for d in clip.deps)


def test_lip_sync_in_a_dubbed_language(tmp_path: Path, board: dict[str, Any]) -> None:
    tasks = compile_story(_board(board, lipsync_languages=["cmn"]), tmp_path, FACTS,
                          _layout(tmp_path))
    _check_graph(tasks)
    kinds = Counter(t.kind for t in tasks)
    assert (kinds["lipsync"], kinds["render"], kinds["clip"]) == (2, 12, 3)
    dubbed = next(t for t in tasks if t.key == "lipsync/s2.cmn")
    assert "dub/s2.1/cmn" in dubbed.deps
    assert dubbed.payload["audio_wavs"] != dubbed.payload["line_wavs"]
    reel = next(t for t in tasks if t.kind == "reel")
    assert set(reel.payload["lang_clips"]) == {"cmn"}
    assert str(tmp_path / "out" / "reel.cmn.mp4") in reel.payload["files"]
