"""Generation specs: bad input named by field, seeds from the job seed and the index."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from wanhe.ai.spec import GenSpec, load_spec, one_shot_spec, parse_size


def spec(**shot: object) -> GenSpec:
    return GenSpec.model_validate({"seed": 100, "shots": [{"model": "m", "prompt": "p",
                                                          **shot}]})


@pytest.mark.parametrize(("shot", "needle"), [
    ({"size": "60x64"}, "not a multiple of 8"),
    ({"size": "big"}, "not WIDTHxHEIGHT"),
    ({"candidates": 0}, "between 1 and 1000"),
    ({"candidates": 100_000}, "between 1 and 1000"),
    ({"seeds": [1, 2]}, "one seed per candidate"),
    ({"steps": 0}, "greater than or equal to 1"),
])
def test_bad_shots_are_refused(shot: dict[str, object], needle: str) -> None:
    with pytest.raises(ValidationError, match=needle):
        spec(**shot)


def test_no_shots_is_refused() -> None:
    with pytest.raises(ValidationError, match="0 prompts"):
        GenSpec.model_validate({"shots": []})


def test_seeds_come_from_the_job_seed_and_the_index() -> None:
    two = GenSpec.model_validate({"seed": 7, "shots": [{"model": "m", "prompt": "a"},
                                                       {"model": "m", "prompt": "b",
                                                        "seed": 3}]})
    assert [two.shots[0].seed_of(7, 0, i) for i in range(3)] == [7, 8, 9]
    assert [two.shots[1].seed_of(7, 1, i) for i in range(2)] == [3, 4]
    assert spec(seeds=[5, 9, 1, 2]).shots[0].seed_of(100, 0, 1) == 9
    assert spec(first_index=4).shots[0].seed_of(100, 0, 0) == 104


def test_spec_files_and_the_one_shot_helper(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("seed: 3\nshots:\n  - {model: m, prompt: fox, size: 64x64}\n")
    assert GenSpec.model_validate(load_spec(path)).shots[0].width == 64
    (tmp_path / "bad.yaml").write_text("shots: [")
    with pytest.raises(ValueError, match="not valid YAML"):
        load_spec(tmp_path / "bad.yaml")
    one = one_shot_spec("m", "a fox", candidates=2, size="64x32")
    assert one.shots[0].candidates == 2 and parse_size("64x32") == (64, 32)
