"""The estimate's model probe as a worker runs it (`gen_probe`), on the tiny random pipeline
(CPU): it loads its own copy of the model, times the cold load apart from the warm steps,
writes nothing, and drops the model; a cancelled probe stops at its next step; a payload that
is not a probe's fails in one line."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from tests.engine.executors.test_diffusion import model_record, payload
from wanhe.engine.executors.base import TaskContext, WorkerInfo
from wanhe.engine.executors.gen_probe import GenProbeExecutor
from wanhe.lifecycle import TaskCancelled, TaskFailed


def test_a_probe_times_the_load_and_the_steps_and_writes_nothing(
        tiny_sd: Path, tmp_path: Path) -> None:
    gen = payload(model_record("a", tiny_sd), tmp_path, [3])
    done = GenProbeExecutor(WorkerInfo()).run(
        "gen_probe", {"gen": gen, "steps": [1, 3], "threads": 1, "start": False},
        TaskContext())
    probe = done.output["probe"]
    assert done.output["device"] == "cpu" and done.output["start_s"] is None
    assert probe["load_s"] > 0 and probe["per_step_s"] > 0 and probe["steps_probed"] == (1, 3)
    assert probe["probe_s"] >= probe["load_s"] and done.cpu_s > 0
    assert list(tmp_path.iterdir()) == []  # no candidate written


def test_a_cancelled_probe_stops_and_a_wrong_payload_is_one_line(
        tiny_sd: Path, tmp_path: Path) -> None:
    gen = payload(model_record("a", tiny_sd), tmp_path, [3])
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(TaskCancelled):
        GenProbeExecutor(WorkerInfo()).run(
            "gen_probe", {"gen": gen, "steps": [1, 3], "threads": 1},
            TaskContext(cancelled=cancelled))
    with pytest.raises(TaskFailed, match="needs gen, steps and threads"):
        GenProbeExecutor(WorkerInfo()).run("gen_probe", {"gen": gen}, TaskContext())
