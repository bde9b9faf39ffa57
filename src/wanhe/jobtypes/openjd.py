"""The OpenJD job type: an Open Job Description 2023-09 job template (with its parameter values)
becomes a task graph — one `openjd` task per task of each step, and one `noop` barrier per
step that other steps depend on, which the tasks of those steps wait for.

    step A: A/Frame=1 … A/Frame=N ─► A/(step done) ─► B/… (steps that depend on A)

Decoding, validation, parameter checks and task parameter spaces are openjd-model's
(`wanhe.openjd.template`); host requirements become task resources and are checked against
the farm's workers (`wanhe.openjd.hostreq`). Each task's payload names the job file (the
template and the resolved parameter values, written once next to the job's work) from which
the worker re-creates the job in its session.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from wanhe.jobtypes.base import (
    CompiledJob,
    InputError,
    Inspected,
    IntakeContext,
    JobFolder,
    JobType,
    TaskView,
)
from wanhe.jobtypes.registry import register_job_type
from wanhe.model import Resources, TaskKind, TaskSpec
from wanhe.openjd.payloads import ActionTask
from wanhe.storage import UnsafePath, safe_relpath

KIND = "openjd"
TASK_KIND = "openjd"
_KEY_MAX = 200


class OpenJDOptions(BaseModel):
    """A submission of an OpenJD template: the template is the main file (or inline)."""

    model_config = ConfigDict(extra="forbid")

    template: dict[str, Any] | None = Field(
        default=None, description="the job template inline (else: the main file)")
    parameters: dict[str, str | int | float] = Field(
        default_factory=dict, description="job parameter values, by name")
    template_dir: str | None = Field(
        default=None, description="where the template was on the submitter's machine "
        "(relative PATH values resolve against it; it maps to the job's input folder)")
    inputs: dict[str, str] = Field(
        default_factory=dict, description="submitter path -> relative path of the uploaded "
        "file or folder among the job's files (path mapping to the job's input folder)")
    outputs: list[str] = Field(
        default_factory=list, max_length=100,
        description="submitter output folders; the Nth maps to the job's output/out<N>")
    inouts: list[str] = Field(
        default_factory=list, max_length=100,
        description="those of `outputs` that are INOUT: uploaded too (`inputs` or under "
        "template_dir), copied writable into their output folder before the job runs")
    max_attempts: int = Field(default=2, ge=1, le=100)


def path_rules(options: OpenJDOptions, folder: JobFolder) -> list[dict[str, str]]:
    """Path mapping from the submitter's paths to the job's folders on the workers."""
    rules: list[dict[str, str]] = []
    if options.template_dir:
        rules.append({"source_path_format": "POSIX", "source_path": options.template_dir,
                      "destination_path": str(folder.input)})
    for source, name in sorted(options.inputs.items()):
        if source in options.outputs:  # INOUT: its writable copy among the outputs
            continue
        rules.append({"source_path_format": "POSIX", "source_path": source,
                      "destination_path": str(folder.input / name)})
    for i, source in enumerate(options.outputs):
        rules.append({"source_path_format": "POSIX", "source_path": source,
                      "destination_path": str(folder.output / f"out{i}")})
    return rules


def output_folders(options: OpenJDOptions, folder: JobFolder) -> list[dict[str, str | None]]:
    """The job's output folders (`output/out<N>`) with, for an INOUT one (an output that was
    also uploaded), the uploaded copy it starts from (`wanhe.openjd.dataflow`)."""
    found: list[dict[str, str | None]] = []
    for i, source in enumerate(options.outputs):
        seed: Path | None = None
        if source in options.inputs:
            seed = folder.input / options.inputs[source]
        elif options.template_dir and _mapped(source, [options.template_dir]):
            rel = os.path.relpath(os.path.normpath(source), os.path.normpath(
                options.template_dir))
            seed = folder.input / rel if rel != "." else folder.input
        found.append({"dir": str(folder.output / f"out{i}"),
                      "seed": str(seed) if seed is not None and source in options.inouts
                      else None})
    return found


def compile_plan(plan: Any, folder: JobFolder, *, rules: list[dict[str, str]],
                 sessions: Path | None = None,
                 outputs: list[dict[str, str | None]] | None = None,
                 ) -> tuple[list[TaskSpec], str]:
    """The task graph of a `wanhe.openjd.template.Plan` (pure), and the job's key."""
    from wanhe.openjd import hostreq
    from wanhe.openjd.template import label

    job_file = plan.job_file()
    digest = hashlib.sha256(json.dumps(job_file, sort_keys=True).encode()).hexdigest()
    root = folder.input.parent
    # one session per job: the same template submitted twice makes two jobs, two folders
    job_key = hashlib.sha256(f"{digest}:{root}".encode()).hexdigest()[:16]
    base: dict[str, Any] = {
        "job": job_key, "job_file": str(job_file_path(folder, digest)), "job_root": str(root),
        "sessions": str(sessions or root.parent.parent / "sessions"), "path_mapping": rules,
        "outputs": outputs or []}
    graph: list[TaskSpec] = []
    barrier: dict[str, str] = {}
    waited_on = {name for step in plan.steps for name in step.depends_on}
    for step in plan.steps:
        need = hostreq.resources(step.host)
        deps = [barrier[d] for d in step.depends_on]
        keys: list[str] = []
        adaptive = getattr(step, "adaptive", None)
        host = step.host.to_json()
        ledger = str(chunk_ledger_path(folder, digest, job_key, step.name))
        for i, params in enumerate(step.tasks):
            text = label(params)
            key = f"{step.name}/{text}" if text else f"{step.name}/task"
            if adaptive is not None:  # a slot: its chunks are chosen when it runs
                key = f"{step.name}/chunk {i + 1:0{len(str(len(step.tasks)))}d}"
            elif len(key) > _KEY_MAX or (len(step.tasks) > 1 and not text):
                key = f"{step.name}/{i:06d}"
            task = ActionTask(
                **base, step=step.name, params=params, index=i, host=host, adaptive=adaptive,
                ledger=None if adaptive is None else ledger)
            graph.append(TaskSpec(key, TASK_KIND, task.stored(), deps=list(deps),
                                  resources=need))
            keys.append(key)
        if step.name not in waited_on:  # no step waits for it: no barrier to pass
            continue
        done = f"{step.name}/(step done)"
        graph.append(TaskSpec(done, TaskKind.NOOP.value, {"step": step.name}, deps=keys,
                              resources=Resources(cpus=0.0)))
        barrier[step.name] = done
    return graph, job_key


def job_file_path(folder: JobFolder, digest: str) -> Path:
    """Where the job file lives: content-addressed beside the work area's jobs (not in the
    job's folder, which the service moves into place after compiling), read by the workers
    only (the sessions get the template from them)."""
    return folder.input.parent.parent.parent / "openjd-jobs" / f"{digest}.json"


def chunk_ledger_path(folder: JobFolder, digest: str, job_key: str, step: str) -> Path:
    """Where an adaptive step's chunk ledger lives (`wanhe.openjd.chunks`): beside the job
    files, which only the service may reach (a session cannot plant a link there)."""
    name = hashlib.sha256(f"{job_key}:{step}".encode()).hexdigest()[:24]
    return job_file_path(folder, digest).parent / "chunks" / f"{name}.json"


def write_job_file(plan: Any, folder: JobFolder) -> Path:
    """The job file the workers read (written once, atomically; the same content always has
    the same name)."""
    text = json.dumps(plan.job_file(), sort_keys=True)
    path = job_file_path(folder, hashlib.sha256(text.encode()).hexdigest())
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(text)
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return path


def _mapped(value: str, sources: list[str]) -> bool:
    """Whether a submitter path lies under one the path mapping sends to the job's folders."""
    path = os.path.normpath(value)
    return any(path == s or path.startswith(s.rstrip("/") + "/")
               for s in (os.path.normpath(x) for x in sources))


def check_own_paths(plan: Any, options: OpenJDOptions, field: str) -> None:
    """On the farm a job names only its own files: every PATH parameter must map (through the
    job's path mapping: its template folder, its inputs, its outputs) into the job's folder,
    and every embedded file must be a plain file name. InputError naming the first that
    does not."""
    sources = [*options.inputs, *options.outputs,
               *([options.template_dir] if options.template_dir else [])]
    for name, value in sorted(plan.parameters.items()):
        if value.get("type") == "PATH" and not _mapped(str(value["value"]), sources):
            raise InputError("options.parameters", (
                f"parameter {name!r} path {str(value['value'])[:200]!r} is outside this job's "
                "files — send it with the job (wanhe submit uploads the PATH parameters that "
                "exist on your machine) or give a path inside the job's bundle"))
    for where, filename in embedded_file_names(plan.template):
        if filename in ("", ".", "..") or "/" in filename or "\\" in filename \
                or "\0" in filename:
            raise InputError(field, f"{where} embedded file name {filename[:100]!r} is not a "
                             "plain file name — name it like script.sh")


def embedded_file_names(template: dict[str, Any]) -> list[tuple[str, str]]:
    """(where, filename) of every embedded file of a raw template: in its job environments,
    its steps' scripts and its steps' environments."""
    found: list[tuple[str, str]] = []

    def files(where: str, script: Any) -> None:
        if isinstance(script, dict):
            for item in script.get("embeddedFiles") or []:
                if isinstance(item, dict) and "filename" in item:
                    found.append((where, str(item["filename"])))

    for env in template.get("jobEnvironments") or []:
        if isinstance(env, dict):
            files(f"environment {env.get('name')!r}", env.get("script"))
    for step in template.get("steps") or []:
        if not isinstance(step, dict):
            continue
        files(f"step {step.get('name')!r}", step.get("script"))
        for env in step.get("stepEnvironments") or []:
            if isinstance(env, dict):
                files(f"step {step.get('name')!r} environment {env.get('name')!r}",
                      env.get("script"))
    return found


def queue_environments_of_farm() -> list[dict[str, Any]]:
    """The farm's queue environments (`wanhe serve --queue-env`), entered before every
    OpenJD job's own; they are part of the job file, so a job keeps the ones it started with."""
    from wanhe.openjd.serve import farm_environments

    return farm_environments()


def farm_facts(ctx: IntakeContext) -> Any:
    from wanhe.openjd.hostreq import FarmFacts

    source = ctx.inspectors.get("openjd.farm")
    return source(Path(".")) if source is not None else FarmFacts()


@register_job_type
class OpenJDJob(JobType):
    kind = KIND
    title = "OpenJD job"
    options_model = OpenJDOptions
    main_file = "optional"
    main_suffixes = (".yaml", ".yml", ".json")
    panels = ("steps",)

    def check(self, options: BaseModel) -> None:
        assert isinstance(options, OpenJDOptions)
        for source in [*options.inputs, *options.outputs,
                       *([options.template_dir] if options.template_dir else [])]:
            if not source.startswith("/"):
                raise InputError("options.inputs", f"{source!r} is not an absolute path")
        for source, name in options.inputs.items():
            try:  # where it maps to: a path among the job's own files
                safe_relpath(name)
            except UnsafePath as exc:
                raise InputError("options.inputs", f"input {source!r} maps to {name!r}, which "
                                 f"is outside this job's files ({exc}) — name a path among "
                                 "the job's uploaded files") from None
        for source in options.inouts:
            if source not in options.outputs:
                raise InputError("options.inouts", f"INOUT folder {source!r} is not among "
                                 "options.outputs — list it in both")

    def inspect(self, ctx: IntakeContext, main: Path | None, options: BaseModel) -> Inspected:
        from wanhe.openjd.hostreq import unmet
        from wanhe.openjd.template import TemplateError, plan, read_document

        assert isinstance(options, OpenJDOptions)
        try:
            if options.template is not None:
                template = options.template
            elif main is not None:
                template = read_document(main, "job template", "main")
            else:
                raise TemplateError("main", "an OpenJD job needs a template: send it as the "
                                    "main file or as options.template")
            base = Path(options.template_dir or (main.parent if main else "/"))
            made = plan(template, {k: str(v) for k, v in options.parameters.items()},
                        template_dir=base,
                        environments=[*queue_environments_of_farm(), *(
                            ctx.queue_environments() if ctx.queue_environments else [])])
        except TemplateError as exc:
            field = exc.field if exc.field != "template" or options.template is not None \
                else "main"
            if field == "parameters":
                field = "options.parameters"
            elif field.startswith("template"):
                field = "options." + field if options.template is not None else "main"
            raise InputError(field, exc.message) from None
        if ctx.inputs is not None and not ctx.local_paths:
            check_own_paths(made, options, "main" if options.template is None
                            else "options.template")
        farm = farm_facts(ctx)
        for step in made.steps:
            why = unmet(step.host, farm)
            if why is not None:
                raise InputError("main" if options.template is None else "options.template",
                                 f"step {step.name!r} can never run on this farm: its host "
                                 f"requirement {why}")
        return Inspected(made)

    def compile(self, options: BaseModel, inspected: Inspected, main: Path | None,
                folder: JobFolder) -> CompiledJob:
        assert isinstance(options, OpenJDOptions)
        made = inspected.facts
        tasks, key = compile_plan(made, folder, rules=path_rules(options, folder),
                                  outputs=output_folders(options, folder))
        write_job_file(made, folder)  # the one file a job type writes: read by the workers
        spec = {"name": made.job_name, "job": key, "steps": [
            {"name": s.name, "depends_on": s.depends_on, "tasks": len(s.tasks),
             "host": s.host.to_json()} for s in made.steps],
            "parameters": made.parameters, "max_attempts": options.max_attempts,
            "output": str(folder.output),
            # where `wanhe download` puts output/out<N>: the submitter's folders
            "output_folders": list(options.outputs)}
        return CompiledJob(spec, key, tasks)

    def task_label(self, task: TaskView) -> str:
        step, _, rest = task.key.partition("/")
        if task.kind == TaskKind.NOOP.value:
            return f"step {step!r} (all its tasks done)"
        return f"step {step!r}" if rest == "task" else f"step {step!r} task {rest}"

    def deliverables(self, spec: dict[str, Any]) -> list[str]:
        return []
