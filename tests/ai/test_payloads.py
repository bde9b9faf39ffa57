"""A gen task's payload is typed: built when a spec is compiled, read back by the diffusion
executor; the farm's and tests' hooks are stored only when set, so the farm can still name
the job's folder in it."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.jobtypes.test_generate import MODELS
from wanhe.ai.compile import GEN_TASK, compile_gen_job, resolve
from wanhe.ai.payloads import GenTask
from wanhe.ai.spec import GenSpec
from wanhe.jobtypes.base import JobFolder, confine_tasks
from wanhe.model import TaskSpec
from wanhe.payloads import PayloadError


def _tasks() -> list[TaskSpec]:
    spec = GenSpec.model_validate({"shots": [{"model": "sd", "prompt": "a lantern",
                                              "candidates": 3}], "batch": 2, "seed": 7})
    return compile_gen_job(resolve(spec, {"sd": MODELS["sd"]}, gpus=1), "/out")


def test_every_compiled_gen_payload_reads_back_as_what_was_built() -> None:
    gens = [t for t in _tasks() if t.kind == GEN_TASK]
    assert [len(t.payload["candidates"]) for t in gens] == [2, 1]
    for task in gens:
        typed = GenTask.read(task.payload)
        assert typed.stored() == task.payload
        assert (typed.model.name, typed.device, typed.job_seed) == ("sd", "gpu", 7)
        assert "job_root" not in task.payload and "test_oom_over_batch" not in task.payload


def test_the_farm_still_names_the_jobs_folder_in_a_compiled_payload() -> None:
    tasks = _tasks()
    confine_tasks(tasks, JobFolder(Path("/jobs/9/input"), Path("/jobs/9/output"),
                                   Path("/jobs/9/work")))
    gen = next(t for t in tasks if t.kind == GEN_TASK)
    assert GenTask.read(gen.payload).job_root == "/jobs/9"


def test_a_bad_gen_payload_is_one_line_naming_its_field() -> None:
    payload = next(t for t in _tasks() if t.kind == GEN_TASK).payload
    with pytest.raises(PayloadError, match=r"gen task's payload is not valid: candidates"):
        GenTask.read({**payload, "candidates": []})
    with pytest.raises(PayloadError, match=r"gen task's payload is not valid: model.sha256"):
        GenTask.read({**payload, "model": {**payload["model"], "sha256": None}})


def test_the_score_payload_reads_back_and_a_bad_one_fails_its_task() -> None:
    from wanhe.ai.compile import SCORE_TASK
    from wanhe.ai.payloads import ScoreTask
    from wanhe.engine.executors.base import TaskContext, WorkerInfo
    from wanhe.engine.executors.gen_score import GenScoreExecutor
    from wanhe.lifecycle import TaskFailed

    score = next(t for t in _tasks() if t.kind == SCORE_TASK)
    typed = ScoreTask.read(score.payload)
    assert typed.stored() == score.payload
    assert [c.index for c in typed.candidates] == [0, 1, 2] and typed.clip is None
    assert typed.output.endswith("/scores.json") and typed.prompt == "a lantern"
    with pytest.raises(PayloadError, match=r"gen_score task's payload is not valid: output"):
        ScoreTask.read({k: v for k, v in score.payload.items() if k != "output"})
    with pytest.raises(TaskFailed, match=r"gen_score task's payload is not valid: "
                                         r"candidates\.0\.seed"):
        GenScoreExecutor(WorkerInfo()).run("gen_score", {
            **score.payload, "candidates": [{"index": 0, "seed": -1, "output": "/c.png"}]},
            TaskContext())
