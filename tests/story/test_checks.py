"""Checks that need the storyboard's files and this machine's tools, before any task runs:
voice files, espeak-ng voices, images, rig objects and shape keys, the reel's length, AI
shots. Real espeak-ng, real Blender (bpy in a subprocess) for the rig scene."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import hide_commands
from tests.story.conftest import write
from wanhe.story.checks import check_storyboard
from wanhe.story.load import StoryError, load_storyboard

ROOT = Path(__file__).resolve().parents[2]


def _check(folder: Path, data: dict[str, Any], **how: Any) -> dict[str, Any]:
    path = write(folder, data)
    return check_storyboard(load_storyboard(path), folder, **how)


def _fails(folder: Path, data: dict[str, Any], match: str, **how: Any) -> str:
    with pytest.raises(StoryError, match=match) as info:
        _check(folder, data, **how)
    return str(info.value)


def test_a_good_storyboard_passes_with_digests(tmp_path: Path, board: dict[str, Any]) -> None:
    facts = _check(tmp_path, board)
    assert set(facts["files"]) == {"board.png"}


def test_missing_and_non_piper_voice_files(tmp_path: Path, board: dict[str, Any]) -> None:
    board["characters"][0]["voice"] = {"engine": "piper", "model": "voices/nope.onnx"}
    _fails(tmp_path, board, r"character 'Joe' \(en\): voice file .*nope\.onnx does not exist")
    (tmp_path / "voices").mkdir()
    (tmp_path / "voices" / "fake.onnx").write_bytes(b"not a model")
    board["characters"][0]["voice"]["model"] = "voices/fake.onnx"
    _fails(tmp_path, board, r"is not a Piper model")


def test_the_bundled_piper_voice_is_accepted(tmp_path: Path, board: dict[str, Any]) -> None:
    board["characters"][0]["voice"] = {"engine": "piper", "model": "bundled"}
    assert "bundled" in _check(tmp_path, board)["models"]


def test_espeak_voice_not_installed(tmp_path: Path, board: dict[str, Any]) -> None:
    board["characters"][1]["voices"] = {"cmn": {"engine": "espeak", "voice": "klingon"}}
    board["scenes"][0]["shots"][0]["lines"].append(
        {"character": "Mei", "text": "Yes.", "translations": {"cmn": "是。"}})
    _fails(tmp_path, board, r"espeak-ng voice 'klingon' is not installed")


def _piper_only(board: dict[str, Any], folder: Path) -> dict[str, Any]:
    """Both characters speak English with the bundled Piper voice and Mandarin with a Piper
    voice file of their own (the bundled one's bytes: a check reads the file, not the tongue)."""
    import shutil

    from wanhe.voice.tts import bundled_model

    model = bundled_model()
    (folder / "voices").mkdir(parents=True)
    shutil.copyfile(model, folder / "voices" / "cmn.onnx")
    shutil.copyfile(model.with_name(model.name + ".json"), folder / "voices" / "cmn.onnx.json")
    for character in board["characters"]:
        character["voice"] = {"engine": "piper", "model": "bundled"}
        character["voices"] = {"cmn": {"engine": "piper", "model": "voices/cmn.onnx"}}
    board["scenes"][0]["shots"][0]["lines"].append(
        {"character": "Mei", "text": "Yes.", "translations": {"cmn": "是。"}})
    return board


def test_a_piper_only_storyboard_needs_no_espeak_ng(
    tmp_path: Path, board: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_commands(monkeypatch, tmp_path / "sys", "espeak-ng")
    facts = _check(tmp_path / "film", _piper_only(board, tmp_path / "film"))
    assert set(facts["models"]) == {"bundled", "voices/cmn.onnx"}


def test_espeak_ng_is_demanded_for_the_lines_it_speaks(
    tmp_path: Path, board: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_commands(monkeypatch, tmp_path / "sys", "espeak-ng")
    board = _piper_only(board, tmp_path / "film")
    del board["characters"][1]["voices"]  # Mei's Mandarin falls back to espeak-ng
    message = _fails(tmp_path / "film", board, r"^character 'Mei' \(cmn\): espeak-ng is not "
                     r"installed — apt-get install espeak-ng")
    assert "give voices.cmn a Piper voice" in message


def test_rubberband_is_demanded_only_for_pitch_and_dubs(
    tmp_path: Path, board: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    hide_commands(monkeypatch, tmp_path / "sys", "rubberband")
    board = _piper_only(board, tmp_path / "film")
    board["film"]["max_stretch"] = 0  # dubs are never sped up: no rubberband needed
    _check(tmp_path / "film", board)
    board["characters"][1]["voice"]["pitch"] = 3
    _fails(tmp_path / "film", board, r"^character 'Mei' \(en\): a pitch of \+3 semitones "
           r"needs rubberband, which is not installed — apt-get install rubberband-cli")
    board["characters"][1]["voice"]["pitch"] = 0
    board["film"]["max_stretch"] = 0.15
    _fails(tmp_path / "film", board, r"^character 'Joe' \(cmn\): a dub sped up to fit "
           r"\(film\.max_stretch 0\.15; 0 turns that off\) needs rubberband")


def test_missing_image(tmp_path: Path, board: dict[str, Any]) -> None:
    board["scenes"][0]["shots"][0]["image"]["path"] = "nope.png"
    _fails(tmp_path, board, r"shot 's1' image: 'nope.png' does not exist")


def test_reel_over_the_limit(tmp_path: Path, board: dict[str, Any]) -> None:
    board["film"]["max_reel_s"] = 60
    board["scenes"][0]["shots"][0]["duration"] = 61
    _fails(tmp_path, board, r"over film\.max_reel_s \(60 s\)")


def test_ai_shots_are_refused_without_the_gen_job_type(
    tmp_path: Path, board: dict[str, Any]
) -> None:
    shot = board["scenes"][0]["shots"][0]
    shot.pop("image")
    shot["prompt"] = {"prompt": "a lantern at night", "model": "sd", "candidates": 4}
    _fails(tmp_path, board, r"shot 's1': AI shots need the gen job type",
           gen_available=False)  # a farm without it
    _fails(tmp_path, board, r"unknown model 'sd'")  # with it: the catalogue decides


@pytest.fixture(scope="module")
def rig(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("bpy")
    out = tmp_path_factory.mktemp("rig") / "rig.blend"
    subprocess.run([sys.executable, str(ROOT / "examples" / "make_scenes.py"), "story-rig",
                    str(out)], check=True, capture_output=True, timeout=120)
    return out


def test_rig_object_and_shape_key_must_be_in_the_scene(
    tmp_path: Path, board: dict[str, Any], rig: Path
) -> None:
    (tmp_path / "rig.blend").write_bytes(rig.read_bytes())
    shot = board["scenes"][0]["shots"][0]
    shot.pop("image")
    shot["blender"] = {"file": "rig.blend", "frames": "1-12"}
    board["characters"][0]["rig"] = {"object": "Mouth", "open": "MouthOpen",
                                     "wide": "MouthWide"}
    facts = _check(tmp_path, board)
    assert facts["scenes"]["rig.blend"]["camera"] == "Camera"
    board["characters"][0]["rig"]["open"] = "Jaw"
    _fails(tmp_path, board, r"shape key 'Jaw' is not on 'Mouth' in rig\.blend")
    board["characters"][0]["rig"] = {"object": "Head", "open": "MouthOpen"}
    _fails(tmp_path, board, r"rig object 'Head' of 'Joe' is not in rig\.blend")
    shot["lipsync"] = False  # off screen: no rig needed
    _check(tmp_path, board)
    shot["blender"]["camera"] = "Cam9"
    _fails(tmp_path, board, r"camera 'Cam9' is not in rig\.blend \(cameras: Camera\)")


def test_a_piper_voice_file_by_path_is_named_by_its_bytes(tmp_path: Path,
                                                          board: dict[str, Any]) -> None:
    import shutil

    from wanhe.story.plan import voice_key
    from wanhe.voice.tts import bundled_model

    (tmp_path / "voices").mkdir()
    for suffix in (".onnx", ".onnx.json"):
        shutil.copyfile(bundled_model().with_suffix(suffix),
                        tmp_path / "voices" / f"joe{suffix}")
    board["characters"][0]["voice"] = {"engine": "piper", "model": "voices/joe.onnx"}
    facts = _check(tmp_path, board)
    story = load_storyboard(tmp_path / "story.yaml")
    by_path = voice_key(story, facts, "Joe", "Hi.", "en")
    board["characters"][0]["voice"]["model"] = "bundled"
    bundled = load_storyboard(write(tmp_path, board))
    same = voice_key(bundled, _check(tmp_path, board), "Joe", "Hi.", "en")
    assert by_path == same  # the same voice bytes: the same cached synthesis


def test_check_warns_for_a_line_espeak_would_not_speak_in_its_language(
        tmp_path: Path, board: dict[str, Any]) -> None:
    """Mandarin in characters passes (it is spoken as pinyin); a "Mandarin" line in English
    would be read with English phonemes: a warning names the line, nothing is refused."""
    assert _check(tmp_path, board)["warnings"] == []
    board["scenes"][0]["shots"][0]["lines"][0]["translations"]["cmn"] = "Where is the boat?"
    warnings = _check(tmp_path, board)["warnings"]
    assert len(warnings) == 1 and warnings[0].startswith("line s1.1 (cmn): espeak-ng")
    assert "(en)" in warnings[0] or "not in its set" in warnings[0]
