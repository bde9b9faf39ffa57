"""The estimate's probe job types (`gen_probe`, `story_probe`) share one base
(`wanhe.jobtypes._probe`): the farm's own kinds, refused as a user's submission with a line
naming the estimate that makes them and never compiled from options, with no main file,
never retried."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanhe.jobtypes.base import InputError, Inspected, JobFolder
from wanhe.jobtypes.registry import job_type


@pytest.mark.parametrize(("kind", "made_by"), [("gen_probe", "gen"), ("story_probe", "story")])
def test_a_probe_kind_is_the_farms_own_and_not_retried(
    kind: str, made_by: str, tmp_path: Path
) -> None:
    probe = job_type(kind)
    options = probe.options_model.model_construct()
    with pytest.raises(InputError) as refused:
        probe.check(options)
    assert refused.value.field == "kind"
    assert refused.value.message == (
        f"{kind} jobs are the farm's own: POST /api/estimate with kind {made_by} makes them"
    )
    with pytest.raises(InputError, match="takes no main file"):
        probe.check_main("scene.blend")
    folder = JobFolder(tmp_path / "input", tmp_path / "output", tmp_path / "work")
    with pytest.raises(InputError, match=f"{kind} jobs are made by POST /api/estimate"):
        probe.compile(options, Inspected(), None, folder)
    assert probe.retry_rules({"max_attempts": 5}).max_attempts == 1
    assert probe.internal
