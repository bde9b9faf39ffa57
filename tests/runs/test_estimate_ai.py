"""`wanhe estimate SPEC`'s engine on a real tiny Stable Diffusion pipeline (random weights,
built from configs: nothing downloaded): the probe measures the cold load apart from the
warm per-step cost, a second estimate reuses the cached probe, an unknown model is refused,
and after the model has really run the estimate comes from its metered history."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from wanhe.ai import catalog
from wanhe.ai.models import inspect_model
from wanhe.ai.spec import GenSpec
from wanhe.config import Settings
from wanhe.jobtypes.base import InputError
from wanhe.runs.estimate import Prices
from wanhe.runs.estimate_ai import estimate_gen
from wanhe.store.store import Store

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _settings(tmp_path: Path, model: Path) -> Settings:
    settings = Settings(home=tmp_path / "home")
    store = Store(settings.db_url)
    try:
        catalog.add_model(store, "sd", inspect_model(model))
    finally:
        store.dispose()
    return settings


def _spec(candidates: int, steps: int = 4, model: str = "sd") -> GenSpec:
    return GenSpec.model_validate({"threads": 1, "score": False, "shots": [
        {"name": "a", "model": model, "prompt": "a fox", "size": "32x32",
         "candidates": candidates, "steps": steps}]})


def test_the_probe_splits_cold_from_warm_and_is_cached(tmp_path: Path, tiny_sd: Path) -> None:
    settings = _settings(tmp_path, tiny_sd)
    first = estimate_gen(_spec(3), settings=settings, prices=Prices(core_hour=0.5))
    shot = first.shots[0]
    probe = shot.probe
    assert probe is not None and shot.cost.source == "probe" and not shot.cached
    assert probe.device == "cpu" and probe.threads == 1 and probe.steps_probed == (1, 3)
    assert probe.load_s > 0 and probe.per_step_s > 0 and probe.cold_s >= probe.load_s
    assert shot.cost.seconds == pytest.approx(probe.cold_s + 3 * probe.candidate_s(4))
    assert shot.model_memory == inspect_model(tiny_sd).gpu_memory < shot.task_memory
    data = first.to_dict()
    assert (data["device"], data["unit"], data["candidates"]) == ("cpu", "CPU-seconds", 3)
    # the worker's start (its imports, timed apart) is paid once beside the shot
    assert data["worker_start_s"] > 0 and not first.start_cached
    assert data["core_hours"] == pytest.approx((first.start_s + shot.cost.seconds) / 3600)
    assert data["gpu_hours"] == 0 and data["cost"] == pytest.approx(data["core_hours"] * 0.5)
    assert data["probe_s"] == pytest.approx(probe.probe_s + first.start_s)
    # asked again with more candidates and steps: the same probe, nothing run now
    again = estimate_gen(_spec(6, steps=10), settings=settings, prices=Prices())
    assert again.shots[0].cached and again.shots[0].probe == probe
    assert again.to_dict()["probe_s"] == 0 and again.start_cached
    assert again.seconds == pytest.approx(first.start_s + probe.cold_s
                                          + 6 * probe.candidate_s(10))


def test_an_unknown_model_is_refused_before_any_probe(tmp_path: Path, tiny_sd: Path) -> None:
    settings = _settings(tmp_path, tiny_sd)
    with pytest.raises(InputError, match="unknown model 'nope' — register it"):
        estimate_gen(_spec(1, model="nope"), settings=settings, prices=Prices())
    assert not (settings.home / "probes").exists()


def test_a_model_that_ran_before_is_estimated_from_its_history(
    tmp_path: Path, tiny_sd: Path
) -> None:
    from wanhe.runs.gen import run_local

    settings = _settings(tmp_path, tiny_sd)
    outcome = run_local(_spec(3), settings=settings, output=tmp_path / "out")
    assert outcome.job.state.value == "done", outcome.job.message
    made = estimate_gen(_spec(5), settings=settings, prices=Prices())
    shot = made.shots[0]
    assert shot.cost.source == "history" and shot.probe is None
    assert shot.history is not None and (shot.history.runs, shot.history.candidates) == (1, 3)
    assert shot.cost.history_runs == 1
    assert shot.cost.seconds == pytest.approx(shot.history.seconds / 3 * 5)
    # another size has no history: probed
    other = GenSpec.model_validate({**_spec(1).model_dump(), "shots": [
        {**_spec(1).shots[0].model_dump(), "size": "16x16"}]})
    assert estimate_gen(other, settings=settings, prices=Prices()).shots[0].cost.source == \
        "probe"
