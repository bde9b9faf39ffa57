"""Helpers for the OpenJD tests: templates built by the tests themselves, compiled into tasks
the way the farm does, and run on a real FarmWorker (no Ray, no service)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from wanhe.jobtypes.base import JobFolder
from wanhe.jobtypes.openjd import compile_plan, write_job_file
from wanhe.model import TaskSpec
from wanhe.openjd.template import plan


def template(steps: list[dict[str, Any]], *, params: list[dict[str, Any]] | None = None,
             job_envs: list[dict[str, Any]] | None = None, name: str = "T") -> dict[str, Any]:
    doc: dict[str, Any] = {"specificationVersion": "jobtemplate-2023-09", "name": name,
                           "steps": steps}
    if params:
        doc["parameterDefinitions"] = params
    if job_envs:
        doc["jobEnvironments"] = job_envs
    return doc


def bash(script: str, **extra: Any) -> dict[str, Any]:
    return {"command": "bash", "args": ["-c", script], **extra}


def step(name: str, script: str, *, params: list[dict[str, Any]] | None = None,
         envs: list[dict[str, Any]] | None = None, **extra: Any) -> dict[str, Any]:
    action = extra.pop("action", {})
    doc: dict[str, Any] = {"name": name,
                           "script": {"actions": {"onRun": bash(script, **action)}}}
    if params:
        doc["parameterSpace"] = {"taskParameterDefinitions": params}
    if envs:
        doc["stepEnvironments"] = envs
    doc.update(extra)
    return doc


def env(name: str, enter: str, exit: str | None = None) -> dict[str, Any]:
    actions: dict[str, Any] = {"onEnter": bash(enter)}
    if exit is not None:
        actions["onExit"] = bash(exit)
    return {"name": name, "script": {"actions": actions}}


def compiled(doc: dict[str, Any], values: dict[str, str], root: Path,
             rules: list[dict[str, str]] | None = None) -> list[TaskSpec]:
    """The job's tasks, with its job file written, as `wanhe run` makes them."""
    made = plan(doc, values, template_dir=root)
    folder = JobFolder(root / "job" / "input", root / "job" / "output", root / "job" / "work")
    for f in (folder.input, folder.output, folder.work):
        f.mkdir(parents=True, exist_ok=True)
    tasks, _ = compile_plan(made, folder, rules=rules or [], sessions=root / "sessions")
    write_job_file(made, folder)
    return [t for t in tasks if t.kind == "openjd"]


def as_request(task: TaskSpec, root: Path, project: str = "local") -> dict[str, Any]:
    return {"kind": task.kind, "key": task.key, "payload": task.payload,
            "log_path": str(root / "logs" / f"{task.key.replace('/', '_')}.log"),
            "project": project}


def write_yaml(path: Path, doc: Any) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path
