"""`wanhe estimate STORY`'s engine on a real storyboard: real espeak-ng and Piper voices, a
real rigged Blender shot lip-synced in a second language, a still; every part estimated from
its own probe, and asked again, nothing is probed; a storyboard with an error is refused."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import build_scene
from tests.story.conftest import BASE, write
from wanhe.config import Settings
from wanhe.runs.estimate import Prices
from wanhe.runs.estimate_story import estimate_story
from wanhe.story.load import StoryError


@pytest.fixture
def board() -> dict[str, Any]:
    """tests/story's small valid storyboard (two espeak-ng voices, a still, en and cmn)."""
    import copy

    return copy.deepcopy(BASE)


@pytest.fixture(scope="module")
def rig(scene_dir: Path) -> Path:
    pytest.importorskip("bpy")
    return build_scene(scene_dir / "rig.blend", "story-rig")


def _board(board: dict[str, Any], folder: Path, rig: Path) -> Path:
    (folder / "rig.blend").parent.mkdir(parents=True, exist_ok=True)
    (folder / "rig.blend").write_bytes(rig.read_bytes())
    board["characters"][1]["voice"] = {"engine": "piper", "model": "bundled", "pitch": 2}
    board["characters"][1]["rig"] = {"object": "Mouth", "open": "MouthOpen",
                                     "wide": "MouthWide"}
    board["scenes"][0]["shots"].append({
        "id": "s2", "blender": {"file": "rig.blend", "frames": "1-6", "samples": 1},
        "lipsync_languages": ["cmn"],
        "lines": [{"character": "Mei", "text": "We go tonight, all of us.",
                   "translations": {"cmn": "我们今晚走。"}}]})
    return write(folder, board)


def test_every_part_from_its_probe_then_all_cached(tmp_path: Path, board: dict[str, Any],
                                                   rig: Path) -> None:
    story = _board(board, tmp_path / "film", rig)
    settings = Settings(home=tmp_path / "home")
    probes: list[str] = []
    made = estimate_story(story, settings=settings, prices=Prices(core_hour=2.0),
                          on_probe=probes.append).to_dict()
    parts = {p["part"]: p for p in made["parts"]}
    assert list(parts) == ["voices", "blender", "assembly"]
    assert all(p["core_s"] > 0 and p["gpu_s"] == 0 for p in parts.values())
    # 2 lines × 2 languages; 4 voices: Joe's and Mei's, each in en and cmn
    assert parts["voices"]["what"].startswith("4 line take(s) in 2 language(s), 4 voice(s)")
    assert len(parts["voices"]["detail"]["rates"]) == 4
    assert parts["blender"]["detail"]["frames"] == 12  # 6 frames, again lip-synced in cmn
    assert parts["blender"]["detail"]["lipsync_core_s"] > 0
    assert made["reel_frames"] == round(made["reel_s"] * 12)  # fps 12
    assert parts["assembly"]["detail"]["frames"] > 2 * made["reel_frames"]  # clips + 2 reels
    assert made["core_s"] == pytest.approx(sum(p["core_s"] for p in parts.values()))
    assert made["cost"] == pytest.approx(made["core_hours"] * 2.0)
    assert len(probes) == 5  # four voices and the Blender shot
    again = estimate_story(story, settings=settings, prices=Prices(),
                           on_probe=probes.append).to_dict()
    assert len(probes) == 5, probes[5:]  # nothing probed again
    assert again["core_s"] == pytest.approx(made["core_s"])
    assert all("(cached)" in p["source"] for p in again["parts"])


def test_a_storyboard_with_an_error_is_refused(tmp_path: Path, board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["lines"][0]["character"] = "Zed"
    story = write(tmp_path, board)
    with pytest.raises(StoryError, match="unknown character 'Zed'"):
        estimate_story(story, settings=Settings(home=tmp_path / "home"), prices=Prices())
