"""`wanhe models` and `wanhe gen` run locally (the local database, a worker of this process)
on tiny random pipelines: images, image-to-video, text-to-video, regeneration, picks; and the
issue's bad input, each one clear line with exit 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from wanhe.cli import app


@pytest.fixture
def wanhe(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path]):
    monkeypatch.setenv("WANHE_HOME", str(tmp_path / "home"))
    monkeypatch.chdir(tmp_path)
    db = f"sqlite:///{tmp_path / 'db.sqlite'}"
    runner = CliRunner()

    def run(*args: str, code: int = 0) -> str:
        result = runner.invoke(app, [*args, "--db", db])
        assert result.exit_code == code, result.output
        return result.output

    for name, kind in (("tiny-sd", "sd"), ("tiny-svd", "svd"), ("tiny-wan", "wan")):
        run("models", "add", name, str(tiny_models[kind]), "--json")
    return run


def test_images_are_made_scored_picked_and_made_again(wanhe, tmp_path: Path) -> None:
    listed = json.loads(wanhe("models", "list", "--json"))
    assert {m["name"] for m in listed} == {"tiny-sd", "tiny-svd", "tiny-wan"}
    results = json.loads(wanhe("gen", "image", "-m", "tiny-sd", "-p", "a red fox", "-n", "3",
                               "--seed", "7", "--steps", "2", "--size", "32x32", "-o", "img",
                               "--json"))
    cands = results["shots"][0]["candidates"]
    assert [c["seed"] for c in cands] == [7, 8, 9] and results["device"] == "cpu"
    assert sorted(c["score"]["rank"] for c in cands) == [1, 2, 3]
    again = json.loads(wanhe("gen", "again", cands[1]["output"], "--json"))
    assert again["bit_identical"] is True
    wanhe("gen", "pick", str(results["job"]), "0", "2")
    picks = json.loads(wanhe("gen", "picks", str(results["job"]), "--json", "--copy-to",
                             "chosen"))
    assert picks["shots"][0]["chosen"] == {"index": 2, "output": cands[2]["output"],
                                           "why": "picked"}
    assert len(list((tmp_path / "chosen").glob("*.png"))) == 1
    report = json.loads(wanhe("gen", "report", "--json"))
    assert report[0]["model"] == "tiny-sd" and report[0]["candidates"] == 3
    assert report[0]["core_hours"] > 0 and report[0]["gpu_hours"] == 0


def test_videos_from_an_image_and_from_text(wanhe, tmp_path: Path) -> None:
    still = tmp_path / "still.png"
    Image.fromarray((np.random.default_rng(0).random((32, 32, 3)) * 255).astype("uint8")) \
        .save(still)
    svd = json.loads(wanhe("gen", "video", "-m", "tiny-svd", "--image", str(still),
                           "--frames", "3", "--steps", "2", "--size", "32x32", "-o", "svd",
                           "--json"))
    wan = json.loads(wanhe("gen", "video", "-m", "tiny-wan", "-p", "a cat", "--frames", "5",
                           "--steps", "2", "--size", "16x16", "-o", "wan", "--json"))
    for made in (svd, wan):
        out = Path(made["shots"][0]["candidates"][0]["output"])
        assert out.suffix == ".mp4" and out.stat().st_size > 0
    from wanhe.ai.pipelines import read_pixels

    assert read_pixels(Path(svd["shots"][0]["candidates"][0]["output"])).shape == (3, 32, 32, 3)
    again = json.loads(wanhe("gen", "again", wan["shots"][0]["candidates"][0]["output"],
                             "--json"))
    assert again["bit_identical"] is True


def test_a_spec_file_of_shots(wanhe, tmp_path: Path) -> None:
    spec = tmp_path / "board.yaml"
    spec.write_text("seed: 100\nshots:\n"
                    "  - {name: a, model: tiny-sd, prompt: fox, size: 32x32, candidates: 2,"
                    " steps: 2}\n"
                    "  - {name: b, model: tiny-sd, prompt: owl, size: 32x32, candidates: 1,"
                    " steps: 2, seed: 5}\n")
    results = json.loads(wanhe("gen", "run", str(spec), "--json"))
    assert [[c["seed"] for c in s["candidates"]] for s in results["shots"]] == [[100, 101], [5]]
    assert all(s["scored"] for s in results["shots"])


@pytest.mark.parametrize(("args", "needle"), [
    (["gen", "image", "-m", "nope", "-p", "x"], "unknown model 'nope'"),
    (["gen", "image", "-m", "tiny-sd", "-p", "x", "--size", "30x32"], "not a multiple of 8"),
    (["gen", "image", "-m", "tiny-sd", "-p", "x", "-n", "0"], "candidates 0 must be between"),
    (["gen", "image", "-m", "tiny-sd", "-p", "x", "-n", "100000"], "between 1 and 1000"),
    (["gen", "video", "-m", "tiny-svd"], "give the first frame"),
    # the tiny models' schedulers have 1000 training steps, each offset by one
    (["gen", "image", "-m", "tiny-sd", "-p", "x", "--steps", "1000"],
     "steps 1000 is more than model 'tiny-sd' takes (its scheduler's limit) — ask for at "
     "most 999"),
    (["gen", "image", "-m", "tiny-sd", "-p", ""], "needs a prompt"),
    (["models", "add", "bad", "."], "is not a diffusers model folder"),
    (["gen", "again", "nothing.png"], "does not exist"),
])
def test_bad_input_is_one_clear_line(wanhe, args: list[str], needle: str) -> None:
    output = wanhe(*args, code=2)
    assert needle in output and "Traceback" not in output


def test_zero_shots_and_too_much_memory(wanhe, tmp_path: Path,
                                        tiny_models: dict[str, Path]) -> None:
    (tmp_path / "empty.yaml").write_text("shots: []\n")
    assert "0 prompts" in wanhe("gen", "run", str(tmp_path / "empty.yaml"), code=2)
    wanhe("models", "add", "huge", str(tiny_models["sd"]), "--gpu-memory", "10TB")
    output = wanhe("gen", "image", "-m", "huge", "-p", "x", code=2)
    assert "needs 10.0 TiB of memory; this farm has no GPU and its largest worker has" in output


def test_prompt_adherence_with_a_registered_clip_model(wanhe, tmp_path: Path) -> None:
    from wanhe.ai import tiny

    clip = tiny.build_clip(tmp_path / "clip")
    listed = json.loads(wanhe("models", "add", "tiny-clip", str(clip), "--json"))
    assert listed["task"] == "prompt-scoring" and listed["pipeline_class"] == "CLIPModel"
    spec = tmp_path / "s.json"
    spec.write_text(json.dumps({"clip_model": "tiny-clip", "shots": [
        {"model": "tiny-sd", "prompt": "a fox", "size": "32x32", "candidates": 2,
         "steps": 1}]}))
    results = json.loads(wanhe("gen", "run", str(spec), "--json"))
    scores = [c["score"] for c in results["shots"][0]["candidates"]]
    assert all(0.0 <= s["prompt_adherence"] <= 1.0 for s in scores)
    spec.write_text(json.dumps({"clip_model": "tiny-sd", "shots": [
        {"model": "tiny-sd", "prompt": "a fox"}]}))
    assert "not a registered CLIP-type model" in wanhe("gen", "run", str(spec), code=2)


def test_an_init_image_is_hashed_into_the_recipe_and_again_says_when_it_changed(
        wanhe, tmp_path: Path) -> None:
    import hashlib

    from wanhe.ai.recipe import read_recipe

    init = tmp_path / "init.png"
    Image.fromarray((np.random.default_rng(1).random((32, 32, 3)) * 255).astype("uint8")) \
        .save(init)
    made = json.loads(wanhe("gen", "image", "-m", "tiny-sd", "-p", "a fox", "--image",
                            str(init), "--steps", "2", "--size", "32x32", "-o", "i2i",
                            "--json"))
    out = Path(made["shots"][0]["candidates"][0]["output"])
    assert read_recipe(out)["image_sha256"] == hashlib.sha256(init.read_bytes()).hexdigest()
    # an output name without .png: the same bytes are still "bit-identical", not 255/255
    again = json.loads(wanhe("gen", "again", str(out), "-o", str(tmp_path / "again_copy"),
                             "--json"))
    assert again["bit_identical"] is True and again["max_difference"] == 0
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(init)  # the init image changes
    changed = json.loads(wanhe("gen", "again", str(out), "-o", str(tmp_path / "again2.png"),
                               "--json"))
    assert not changed["bit_identical"]
    assert changed["note"].startswith("the init image init.png changed since (sha256 ")
    init.unlink()
    gone = " ".join(wanhe("gen", "again", str(out), code=2).split())
    assert "the init image" in gone and "is not there" in gone
