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
from wanhe.runs.estimate_story import StoryFarm, estimate_story
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
    assert again["farm"] is None  # no farm asked


def test_the_job_graph_on_a_farm_and_a_deadline(tmp_path: Path, board: dict[str, Any],
                                                rig: Path) -> None:
    story = _board(board, tmp_path / "film", rig)
    settings = Settings(home=tmp_path / "home")

    def on(machines: int, cores: int, deadline_s: float | None = None) -> dict[str, Any]:
        return estimate_story(story, settings=settings, prices=Prices(),
                              farm=StoryFarm(machines, cores),
                              deadline_s=deadline_s).to_dict()

    one = on(1, 1)
    farm = one["farm"]
    # the farm's graph: 4 voices, 2 dubs, 2 lip syncs, 12 renders, 3 clips, 2 tracks, a reel
    assert farm["task_kinds"] == {"voice": 4, "dub": 2, "lipsync": 2, "render": 12,
                                  "clip": 3, "track": 2, "reel": 1}
    # one slot runs every task one after another: the parts' sum
    assert farm["wall_s"] == pytest.approx(one["core_s"])
    assert farm["busy_s"] == pytest.approx(one["core_s"])
    wide = on(2, 4, deadline_s=one["core_s"] * 0.8)["farm"]
    assert wide["wall_s"] < farm["wall_s"]
    answer = wide["deadline"]
    assert answer["possible"] and answer["machines"] >= 1
    assert answer["wall_s"] <= one["core_s"] * 0.8
    never = on(1, 4, deadline_s=1e-3)["farm"]["deadline"]
    assert not never["possible"] and never["earliest_s"] > 0
    assert never["explanation"].startswith("impossible: ")


def test_a_storyboard_with_an_error_is_refused(tmp_path: Path, board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["lines"][0]["character"] = "Zed"
    story = write(tmp_path, board)
    with pytest.raises(StoryError, match="unknown character 'Zed'"):
        estimate_story(story, settings=Settings(home=tmp_path / "home"), prices=Prices())


def test_gpu_tasks_on_machines_without_gpus_are_one_line() -> None:
    from wanhe.estimate.workers import GraphTask
    from wanhe.runs.estimate_story import StoryEstimate

    made = StoryEstimate("s.yaml", ["en"], 1.0, 12, [], Prices(),
                         graph=[GraphTask(2.0), GraphTask(3.0, (0,), gpus=1)],
                         farm=StoryFarm(1, 2))
    with pytest.raises(ValueError, match=r"^--gpus: this storyboard's AI shots run on the GPU"):
        made.to_dict()
    made.farm = StoryFarm(2, 2, gpus=1)
    made.deadline_s = 4.0
    farm = made.to_dict()["farm"]
    assert farm["wall_s"] == 5.0 and not farm["deadline"]["possible"]
    assert farm["deadline"]["earliest_s"] == 5.0
