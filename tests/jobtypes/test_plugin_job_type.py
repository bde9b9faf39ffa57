"""The job-type interface is real: a job type defined in this test module (not in src/)
registers itself and runs end to end through a real `wanhe serve` and its REST API, with no
change to any engine, API or dashboard file — and GPU slots on an embedded Ray started with
one logical GPU go to the tasks that ask for a GPU, never to the others.

`wanhe serve` imports this module as a plugin (WANHE_PLUGINS), as a studio's own job type
would be installed. Ray's "GPU" here is a logical resource (this machine has none): what is
tested is the placement, CUDA_VISIBLE_DEVICES and the metering, not CUDA itself.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel, ConfigDict, Field

from wanhe.jobtypes.base import (
    CompiledJob,
    InputError,
    Inspected,
    JobFolder,
    JobType,
    TaskView,
)
from wanhe.jobtypes.registry import register_job_type
from wanhe.model import Resources, TaskKind, TaskSpec

KIND = "echo_words"
REPO = Path(__file__).resolve().parents[2]
_WRITE = ("import os, pathlib, sys; pathlib.Path(sys.argv[1]).write_text("
          "sys.argv[2] + ' ' + os.environ.get('CUDA_VISIBLE_DEVICES', '<unset>'))")
_GATHER = ("import pathlib, sys; out = pathlib.Path(sys.argv[1]); "
           "out.write_text('\\n'.join(pathlib.Path(p).read_text() for p in sys.argv[2:]))")


class EchoOptions(BaseModel):
    model_config = ConfigDict(extra="forbid")

    words: list[str] = Field(min_length=1, max_length=50)
    gpu_words: list[str] = Field(default_factory=list, max_length=50)


@register_job_type
class EchoWordsJob(JobType):
    """Each word is a command task writing `<word> <CUDA_VISIBLE_DEVICES>` to a file; a last
    task gathers them into words.txt. Words in `gpu_words` ask for one GPU."""

    kind = KIND
    title = "echo words"
    options_model = EchoOptions
    main_file = "none"

    def check(self, options: BaseModel) -> None:
        assert isinstance(options, EchoOptions)
        for word in [*options.words, *options.gpu_words]:
            if not word.isalpha():
                raise InputError("options.words", f"{word!r} is not a word — letters only")

    def compile(self, options: BaseModel, inspected: Inspected, main: Path | None,
                folder: JobFolder) -> CompiledJob:
        assert isinstance(options, EchoOptions)
        tasks: list[TaskSpec] = []
        parts: list[str] = []
        for i, word in enumerate([*options.words, *options.gpu_words]):
            part = str(folder.work / f"{i:03d}.txt")
            gpu = i >= len(options.words)
            tasks.append(TaskSpec(
                f"word/{i:03d}", TaskKind.COMMAND,
                {"argv": [sys.executable, "-c", _WRITE, part, word], "cwd": str(folder.work)},
                resources=Resources(cpus=1, gpus=1 if gpu else 0),
            ))
            parts.append(part)
        gathered = str(folder.output / "words.txt")
        tasks.append(TaskSpec(
            "gather", TaskKind.COMMAND,
            {"argv": [sys.executable, "-c", _GATHER, gathered, *parts],
             "cwd": str(folder.work), "outputs": [gathered]},
            deps=[t.key for t in tasks], resources=Resources(cpus=0),
        ))
        spec = {"words": options.words, "gpu_words": options.gpu_words,
                "output": gathered, "max_attempts": 2}
        digest = hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()
        return CompiledJob(spec, digest, tasks)

    def task_label(self, task: TaskView) -> str:
        return "gathering the words" if task.key == "gather" else f"word {task.key[5:]}"

    def deliverables(self, spec: dict[str, Any]) -> list[str]:
        return [str(spec["output"])]


@pytest.fixture(scope="module")
def service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    from tests.api._service import ServiceProc

    home = tmp_path_factory.mktemp("plugin-serve")
    svc = ServiceProc(
        home, f"sqlite:///{home / 'wanhe.db'}", 0, workers=2, num_cpus=2,
        extra_args=["--num-gpus", "1"],
        extra_env={"WANHE_PLUGINS": "tests.jobtypes.test_plugin_job_type",
                   "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])},
    )
    svc.start()
    try:
        yield svc
    finally:
        svc.kill()


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_job_type_from_a_plugin_runs_end_to_end_with_gpu_slots(service: Any) -> None:
    from tests.api._service import make_project, wait_for

    token = make_project(service.db_url, "plugins")
    with service.client(token) as http:
        kinds = {t["kind"]: t for t in http.get("/api/job-types").json()}
        assert {KIND, "blender_render"} <= set(kinds)
        assert "words" in kinds[KIND]["options_schema"]["properties"]

        bad = http.post("/api/jobs", json={"kind": KIND, "options": {"words": ["no way!"]}})
        assert bad.status_code == 422
        assert bad.json()["detail"][0]["loc"] == ["body", "options", "words"]
        assert "letters only" in bad.json()["detail"][0]["msg"]
        unknown = http.post("/api/jobs", json={"kind": "nope", "options": {}})
        assert unknown.status_code == 422 and "unknown job kind 'nope'" in unknown.text

        made = http.post("/api/jobs", json={
            "kind": KIND, "name": "hello", "options": {"words": ["ten", "thousand", "cores"],
                                                       "gpu_words": ["render"]}})
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]
        assert made.json()["kind"] == KIND
        job = wait_for(lambda: (j := http.get(f"/api/jobs/{job_id}").json())["state"]
                       in ("done", "failed") and j, 180, "the plugin job to finish")
        assert job["state"] == "done", job
        words = http.get(f"/api/jobs/{job_id}/files/words.txt")
        assert words.status_code == 200
        # CPU tasks never see a GPU; the GPU task got the embedded Ray's one GPU slot
        assert words.text.splitlines() == ["ten ", "thousand ", "cores ", "render 0"]
        assert job["gpu_hours"] > 0 and job["gpu_usage"]["ok_gpu_seconds"] > 0
        assert all(key.endswith("_core_seconds") for key in job["usage"])  # the dashboard's

        tasks = {t["key"]: t for t in http.get(f"/api/jobs/{job_id}/tasks").json()}
        assert tasks["gather"]["label"] == "gathering the words"
        assert tasks["word/003"]["label"] == "word 003"
        report = http.get("/api/report").json()
        gpu_kinds = [k for k in report["kinds"] if k["kind"] == "command"]
        assert gpu_kinds and gpu_kinds[0]["gpu_hours"] > 0
        workers = http.get("/api/workers").json()["workers"]
        assert sum(1 for w in workers if w["gpus"] == 1) == 1
        attempts = wait_for(lambda: http.get(f"/api/jobs/{job_id}/tasks").json(), 5, "tasks")
        assert len(attempts) == 5
