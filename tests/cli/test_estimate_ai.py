"""`wanhe estimate` on a generation spec or a storyboard, as a user runs it: the kind is told
from the file, bad input is one clear line (exit 2) before anything is probed, and a real
estimate of a tiny Stable Diffusion model (random weights: nothing downloaded) prints the
device, the model's memory and the cold and warm costs, then asked again, probes nothing."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.test_estimate import assert_one_line_error, in_process
from tests.story.conftest import BASE, write

SPEC = {"seed": 1, "threads": 1, "shots": [
    {"name": "fox", "model": "sd", "prompt": "a fox", "size": "32x32", "candidates": 3,
     "steps": 4}]}


def _file(folder: Path, data: Any, name: str = "spec.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(data))
    return path


def _shot(**changes: Any) -> dict[str, Any]:
    return {**SPEC, "shots": [{**SPEC["shots"][0], **changes}]}


@pytest.mark.parametrize(("data", "args", "needles"), [
    (_shot(model="nope"), [], ["shots.0.model: unknown model 'nope'", "wanhe models add"]),
    (_shot(candidates=0), [], ["candidates 0 must be between 1 and 1000", "spec.yaml"]),
    (_shot(size="30x30"), [], ["not a multiple of 8"]),
    ({"title": "x"}, [], ["neither a storyboard (no film) nor a generation spec"]),
    (SPEC, ["--frames", "1-4"], ["--frames: for a .blend scene", "generation spec"]),
    ({**SPEC, "device": "cpu"}, ["--gpus", "2"], ["--gpus 2: this spec runs on the CPU",
                                                  "--machines N"]),
    (SPEC, ["--gpus", "0"], ["--gpus 0: a GPU farm needs at least 1 GPU"]),
    (SPEC, ["--deadline", "2020-01-01T00:00"], ["is in the past"]),
])
def test_bad_input_is_one_line_before_any_probe(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, data: Any, args: list[str],
    needles: list[str],
) -> None:
    spec = _file(tmp_path, data)
    result = in_process("estimate", str(spec), *args, home=tmp_path / "home",
                        monkeypatch=monkeypatch)
    assert_one_line_error(result, *needles)
    assert not (tmp_path / "home" / "probes").exists()


def test_files_that_are_no_job_are_one_line(tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "notes.txt").write_text("hello")
    assert_one_line_error(in_process("estimate", str(tmp_path / "notes.txt"),
                                     home=tmp_path / "home", monkeypatch=monkeypatch),
                          "takes a .blend scene, or a generation spec or a storyboard")
    (tmp_path / "bad.yaml").write_text("shots: [\n")
    assert_one_line_error(in_process("estimate", str(tmp_path / "bad.yaml"),
                                     home=tmp_path / "home", monkeypatch=monkeypatch),
                          "bad.yaml is not valid YAML")
    assert_one_line_error(in_process("estimate", str(tmp_path / "none.json"),
                                     home=tmp_path / "home", monkeypatch=monkeypatch),
                          "cannot read the spec")


def test_a_storyboard_with_errors_is_one_line(tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    import copy

    board = copy.deepcopy(BASE)
    board["scenes"][0]["shots"][0]["lines"][0]["character"] = "Zed"
    story = write(tmp_path / "film", board)
    assert_one_line_error(in_process("estimate", str(story), home=tmp_path / "home",
                                     monkeypatch=monkeypatch),
                          "story.yaml:", "unknown character 'Zed'")
    board = copy.deepcopy(BASE)
    board["scenes"][0]["shots"][0]["image"]["path"] = "gone.png"
    story = write(tmp_path / "film", board)
    assert_one_line_error(in_process("estimate", str(story), home=tmp_path / "home",
                                     monkeypatch=monkeypatch), "'gone.png' does not exist")


def test_a_gen_spec_probed_then_from_the_cache(tmp_path: Path, tiny_sd: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    code, text = in_process("models", "add", "sd", str(tiny_sd), "--json", home=home,
                            monkeypatch=monkeypatch)
    assert code == 0, text
    spec = _file(tmp_path, SPEC)
    code, text = in_process("estimate", str(spec), "--price-core-hour", "2", "--json",
                            home=home, monkeypatch=monkeypatch)
    assert code == 0, text
    data = json.loads(text[text.index("{"):])
    shot = data["shots"][0]
    assert (data["kind"], data["device"], data["unit"]) == ("gen", "cpu", "CPU-seconds")
    assert shot["source"] == "probe" and not shot["probe"]["cached"]
    assert shot["probe"]["load_s"] > 0 and shot["cold_s"] >= shot["probe"]["load_s"]
    assert shot["seconds"] == pytest.approx(shot["cold_s"] + 3 * shot["per_candidate_s"])
    assert shot["model_memory_bytes"] > 0
    assert data["cost"] == pytest.approx(2 * data["core_hours"])
    assert data["worker_start_s"] > 0  # a worker's imports, timed apart, once
    assert data["seconds"] == pytest.approx(data["worker_start_s"] + shot["seconds"])
    assert data["farm"] is None  # no farm asked about
    code, text = in_process("estimate", str(spec), home=home, monkeypatch=monkeypatch)
    assert code == 0, text
    assert "cached, nothing run now" in text and "probing" not in text
    assert "CPU-seconds" in text and "MiB registered" in text and "worker start" in text
    # on a farm of 3 one-core machines (a task's 1 thread each): each candidate on its own
    # worker, each worker paying its start and the load; a deadline, and one too near
    code, text = in_process("estimate", str(spec), "--machines", "3", "--cores", "1",
                            "--deadline", "2099-01-01T00:00", "--json", home=home,
                            monkeypatch=monkeypatch)
    assert code == 0, text
    farm = json.loads(text)["farm"]
    one = data["seconds"]
    assert (farm["unit"], farm["units"], farm["workers"], farm["loads"]) == ("machine", 3, 3, 3)
    assert farm["wall_s"] == pytest.approx(data["worker_start_s"] + shot["cold_s"]
                                           + shot["per_candidate_s"])
    assert farm["seconds"] == pytest.approx(3 * farm["wall_s"]) and farm["wall_s"] < one
    assert farm["deadline"]["possible"] and farm["deadline"]["machines"] == 1
    assert "1 machine(s) finish in" in farm["deadline"]["explanation"]
    code, text = in_process("estimate", str(spec), "--machines", "2", home=home,
                            monkeypatch=monkeypatch)
    assert code == 0, text
    assert "wall time" in text and "2 machine(s) ×" in text and "model load(s)" in text


def test_a_storyboard_is_a_table_of_parts_then_all_cached(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import copy

    story = write(tmp_path / "film", copy.deepcopy(BASE))
    code, text = in_process("estimate", str(story), "--price-core-hour", "3", home=tmp_path,
                            monkeypatch=monkeypatch)
    assert code == 0, text
    assert "storyboard" in text and "probing the espeak voice" in text
    for row in ("voices", "assembly", "total", "core-hours", "cost"):
        assert row in text, text
    code, text = in_process("estimate", str(story), "--json", home=tmp_path,
                            monkeypatch=monkeypatch)
    assert code == 0, text
    data = json.loads(text)  # --json: the JSON alone
    assert data["kind"] == "story" and [p["part"] for p in data["parts"]] == ["voices",
                                                                             "assembly"]
    assert all("(cached)" in p["source"] for p in data["parts"])
    assert data["farm"] is None
    code, text = in_process("estimate", str(story), "--machines", "2", "--cores", "2",
                            "--deadline", "2099-01-01T00:00", home=tmp_path,
                            monkeypatch=monkeypatch)
    assert code == 0, text
    assert "wall time" in text and "2 machine(s) × 2 cores" in text, text
    assert "1 machine(s) finish in" in text, text
    code, text = in_process("estimate", str(story), "--cores", "1", "--json", home=tmp_path,
                            monkeypatch=monkeypatch)
    farm = json.loads(text)["farm"]
    assert (farm["machines"], farm["cores"], farm["gpus"]) == (1, 1, 0)
    assert farm["wall_s"] == pytest.approx(json.loads(text)["core_s"])


def test_a_model_whose_files_do_not_load_is_one_line(
    tmp_path: Path, tiny_sd: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import shutil

    model = tmp_path / "sd"
    shutil.copytree(tiny_sd, model)
    code, text = in_process("models", "add", "sd", str(model), "--json",
                            home=tmp_path / "home", monkeypatch=monkeypatch)
    assert code == 0, text
    for weights in (model / "unet").glob("*.safetensors"):
        weights.write_bytes(weights.read_bytes()[:100])  # truncated after it was registered
    # (--json: no "probing …" line before the error)
    result = in_process("estimate", str(_file(tmp_path, SPEC)), "--json",
                        home=tmp_path / "home", monkeypatch=monkeypatch)
    assert_one_line_error(result, "model 'sd'", "does not load", "copy them again")
