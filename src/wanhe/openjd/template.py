"""Open Job Description templates: decode, check parameters, expand steps into tasks.

Everything here uses `openjd-model` (decode, validation, parameter checks, job creation, task
parameter spaces); nothing runs a command. The result is a `Plan`: the job's steps, their
dependencies, host requirements and every task's parameter values, as plain data that the
`openjd` job type turns into a task graph and the OpenJD executor turns back into a
`openjd.model.Job` on the worker (`load_job`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any

SPEC_VERSION = "jobtemplate-2023-09"
SUPPORTED_EXTENSIONS: tuple[str, ...] = (
    "TASK_CHUNKING", "REDACTED_ENV_VARS", "FEATURE_BUNDLE_1", "EXPR", "WRAP_ACTIONS")
"""Extensions a template may declare: every one openjd-model implements (0.14, the newest line;
tests/openjd/test_template.py checks the installed one has no other). TASK_CHUNKING's
adaptive chunk sizes are wanhe's (`wanhe.openjd.chunks`); the others are openjd-model's and
openjd-sessions' own, run as `openjd run` runs them."""
MAX_TASKS = 1_000_000
"""A template that expands to more tasks than this is refused before anything is stored."""

TEMPLATE_NAMES = ("template.yaml", "template.yml", "template.json")
PARAMETER_NAMES = ("parameter_values.yaml", "parameter_values.yml", "parameter_values.json")
ASSET_NAMES = ("asset_references.yaml", "asset_references.yml", "asset_references.json")


class TemplateError(ValueError):
    """A template, its parameters or a bundle that cannot become a job; `field` says where."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field
        self.message = message


@dataclass(frozen=True, slots=True)
class HostRequirements:
    """A step's `hostRequirements`: amounts as (name, min, max) and attributes as
    (name, anyOf, allOf), with names as the template writes them."""

    amounts: tuple[tuple[str, float | None, float | None], ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"amounts": [list(a) for a in self.amounts],
                "attributes": [[n, list(a), list(b)] for n, a, b in self.attributes]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> HostRequirements:
        return cls(
            tuple((str(n), lo, hi) for n, lo, hi in data.get("amounts", [])),
            tuple((str(n), tuple(a), tuple(b)) for n, a, b in data.get("attributes", [])),
        )


@dataclass(slots=True)
class PlannedStep:
    name: str
    depends_on: list[str]
    host: HostRequirements
    tasks: list[dict[str, dict[str, Any]]]  # task parameter name -> {"type", "value"}
    adaptive: dict[str, Any] | None = None
    """Adaptive chunking (`wanhe.openjd.chunks.Adaptive`): the tasks are slots whose chunks
    are chosen when they run; None: each task's values are fixed."""


@dataclass(slots=True)
class Plan:
    job_name: str
    template: dict[str, Any]
    parameters: dict[str, dict[str, Any]]  # job parameter name -> {"type", "value"}
    extensions: list[str]
    steps: list[PlannedStep] = field(default_factory=list)
    environments: list[dict[str, Any]] = field(default_factory=list)
    """Queue environments (environment-2023-09 templates), entered before the job's own."""

    @property
    def task_count(self) -> int:
        return sum(len(s.tasks) for s in self.steps)

    def job_file(self) -> dict[str, Any]:
        """What a worker needs to re-create the job: the template and the resolved values."""
        made: dict[str, Any] = {"template": self.template, "parameters": self.parameters,
                                "extensions": self.extensions}
        if self.environments:
            made["environments"] = self.environments
        return made


# ------------------------------------------------------------------------------ documents


def read_document(path: Path, what: str, field_name: str) -> Any:
    """A YAML or JSON document (by suffix; YAML otherwise, which also reads JSON)."""
    import yaml

    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TemplateError(field_name, f"cannot read the {what} {path}: "
                            f"{exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise TemplateError(field_name, f"the {what} {path} is not text (not UTF-8) — give "
                            "a YAML or JSON file") from None
    try:
        if path.suffix.lower() == ".json":
            return json.loads(text)
        return yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise TemplateError(field_name, f"the {what} {path} is not valid "
                            f"{'JSON' if path.suffix.lower() == '.json' else 'YAML'}: "
                            f"{_syntax_error(exc)}") from None


def _syntax_error(exc: Exception) -> str:
    """A YAML or JSON syntax error in one line, with where it is (line and column)."""
    if isinstance(exc, json.JSONDecodeError):
        return f"{exc.msg} at line {exc.lineno}, column {exc.colno}"
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    context = getattr(exc, "context", None)
    text = f"{context}: {problem}" if context else str(problem)
    if mark is not None:
        text += f" at line {mark.line + 1}, column {mark.column + 1}"
    return text


def find_in_bundle(folder: Path, names: tuple[str, ...]) -> Path | None:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    return None


def parse_param_args(args: list[str]) -> dict[str, str]:
    """`-p Name=Value` arguments as a dict; a malformed one names itself."""
    values: dict[str, str] = {}
    for arg in args:
        name, sep, value = arg.partition("=")
        if not sep or not name.strip():
            raise TemplateError("parameters", f"-p {arg!r} is not NAME=VALUE — write e.g. "
                                "-p Frames=1-100")
        values[name.strip()] = value
    return values


def bundle_parameter_values(path: Path) -> dict[str, str]:
    """A bundle's parameter_values file: `{"parameterValues": [{"name", "value"}]}` (as
    Deadline writes it) or a plain mapping of name to value."""
    doc = read_document(path, "parameter values file", "parameters")
    if isinstance(doc, dict) and isinstance(doc.get("parameterValues"), list):
        out: dict[str, str] = {}
        for item in doc["parameterValues"]:
            if not isinstance(item, dict) or "name" not in item or "value" not in item:
                raise TemplateError("parameters", f"{path}: each parameterValues entry needs "
                                    "a name and a value")
            out[str(item["name"])] = str(item["value"])
        return out
    if isinstance(doc, dict):
        return {str(k): str(v) for k, v in doc.items()}
    if doc is None:
        return {}
    raise TemplateError("parameters", f"{path} must hold a mapping or parameterValues list")


# ------------------------------------------------------------------------------ the model


def decode(template: Any) -> Any:
    """The decoded `JobTemplate`; a bad one raises TemplateError with openjd-model's message
    (which names the path of the bad field), an unknown version or extension by name."""
    from openjd.model import DecodeValidationError, decode_job_template

    if not isinstance(template, dict):
        raise TemplateError("template", "a job template must be a mapping (YAML or JSON "
                            "object) with specificationVersion, name and steps")
    version = template.get("specificationVersion")
    if version != SPEC_VERSION:
        raise TemplateError("template.specificationVersion",
                            f"specification version {version!r} is not supported — wanhe "
                            f"runs {SPEC_VERSION} job templates")
    declared = template.get("extensions") or []
    if isinstance(declared, list):
        unknown = [str(e) for e in declared if e not in SUPPORTED_EXTENSIONS]
        if unknown:
            raise TemplateError("template.extensions",
                                f"extension(s) {', '.join(unknown)} not supported by wanhe "
                                f"(supported: {', '.join(SUPPORTED_EXTENSIONS)})")
    _check_no_cycle(template)
    _check_timeouts(template)
    try:
        return decode_job_template(template=template,
                                   supported_extensions=list(SUPPORTED_EXTENSIONS))
    except DecodeValidationError as exc:
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise TemplateError("template", f"invalid job template: {text}") from None
    except (IndexError, KeyError, TypeError, AttributeError) as exc:
        # openjd-model failing while it words its own error: say what we can, in one line
        raise TemplateError("template", f"invalid job template (openjd-model could not "
                            f"describe the fault: {type(exc).__name__}) — check the steps' "
                            "names, dependencies and parameters") from None


ENV_SPEC_VERSION = "environment-2023-09"


def decode_environment(template: Any, where: str = "environment template") -> Any:
    """A decoded `EnvironmentTemplate` (a queue environment, `openjd run --env`); a bad one
    raises TemplateError naming `where` and openjd-model's message."""
    from openjd.model import DecodeValidationError, decode_environment_template

    if not isinstance(template, dict) or template.get("specificationVersion") != \
            ENV_SPEC_VERSION:
        version = template.get("specificationVersion") if isinstance(template, dict) else None
        raise TemplateError("environments", f"{where}: specification version {version!r} is "
                            f"not an environment template — write specificationVersion: "
                            f"{ENV_SPEC_VERSION} and an environment")
    try:
        return decode_environment_template(template=template,
                                           supported_extensions=list(SUPPORTED_EXTENSIONS))
    except DecodeValidationError as exc:
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise TemplateError("environments", f"{where}: invalid environment template: "
                            f"{text}") from None


MAX_ACTION_TIMEOUT_S = 365 * 24 * 3600  # a year: past it the sessions' clock overflows


def _check_timeouts(template: dict[str, Any]) -> None:
    """TemplateError for an action timeout no clock can count (10**20 s passes openjd-model
    and fails every attempt at run time)."""

    def actions(where: str, script: Any) -> None:
        if not isinstance(script, dict) or not isinstance(script.get("actions"), dict):
            return
        for name, action in script["actions"].items():
            value = action.get("timeout") if isinstance(action, dict) else None
            if isinstance(value, int) and value > MAX_ACTION_TIMEOUT_S:
                raise TemplateError("template", f"{where} action {name} has timeout {value} s, "
                                    f"more than a year ({MAX_ACTION_TIMEOUT_S} s) — give a "
                                    "timeout in seconds up to that, or none")

    for env in template.get("jobEnvironments") or []:
        if isinstance(env, dict):
            actions(f"environment {env.get('name')!r}", env.get("script"))
    for step in template.get("steps") or []:
        if isinstance(step, dict):
            actions(f"step {step.get('name')!r}", step.get("script"))
            for env in step.get("stepEnvironments") or []:
                if isinstance(env, dict):
                    actions(f"step {step.get('name')!r} environment {env.get('name')!r}",
                            env.get("script"))


def _check_no_cycle(template: dict[str, Any]) -> None:
    """TemplateError naming the steps when they depend on each other in a cycle (openjd-model
    fails with an IndexError while it words this one)."""
    steps = template.get("steps")
    if not isinstance(steps, list):
        return
    needs: dict[str, list[str]] = {}
    for step in steps:
        if isinstance(step, dict) and isinstance(step.get("name"), str):
            deps = step.get("dependencies") or []
            needs[step["name"]] = [str(d.get("dependsOn")) for d in deps
                                   if isinstance(d, dict)] if isinstance(deps, list) else []
    state: dict[str, int] = {}  # 1: on the current path, 2: done

    def visit(name: str, path: list[str]) -> None:
        if state.get(name) == 2 or name not in needs:
            return
        if state.get(name) == 1:
            cycle = [*path[path.index(name):], name]
            raise TemplateError("template", "steps depend on each other in a cycle: "
                                f"{' -> '.join(repr(n) for n in cycle)} — remove one of "
                                "these dependencies")
        state[name] = 1
        for dep in needs[name]:
            visit(dep, [*path, name])
        state[name] = 2

    for name in needs:
        visit(name, [])


_SCALAR_TYPES = ("STRING", "INT", "FLOAT", "PATH", "CHUNK[INT]")
"""Parameter types whose values openjd-model carries as strings; EXPR's BOOL, RANGE_EXPR and
LIST[…] values are carried as they are (JSON: lists, booleans)."""


def typed_values(values: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {name: {"type": v.type.value,
                   "value": str(v.value) if v.type.value in _SCALAR_TYPES else v.value}
            for name, v in values.items()}


def parameter_values(raw: dict[str, dict[str, Any]]) -> dict[str, Any]:
    from openjd.model import ParameterValue, ParameterValueType

    return {name: ParameterValue(type=ParameterValueType(v["type"]),
                                 value=str(v["value"]) if v["type"] in _SCALAR_TYPES
                                 else v["value"])
            for name, v in raw.items()}


def _describe_params(decoded: Any) -> str:
    parts = []
    for p in decoded.parameterDefinitions or []:
        text = f"{p.name} ({p.type.value}"
        allowed = getattr(p, "allowedValues", None)
        if allowed:
            text += f", one of {', '.join(str(a) for a in allowed)}"
        lo, hi = getattr(p, "minValue", None), getattr(p, "maxValue", None)
        if lo is not None or hi is not None:
            text += f", {'' if lo is None else lo}..{'' if hi is None else hi}"
        if getattr(p, "default", None) is None:
            text += ", required"
        parts.append(text + ")")
    return "; ".join(parts) or "none"


def plan(
    template: dict[str, Any], values: dict[str, str], *, template_dir: Path,
    cwd: Path | None = None, max_tasks: int = MAX_TASKS,
    environments: list[dict[str, Any]] | None = None,
) -> Plan:
    """Check the parameters against their definitions, create the job and expand every step's
    task parameter space. Refuses more than `max_tasks` tasks before expanding any."""
    from openjd.model import (
        DecodeValidationError,
        StepParameterSpaceIterator,
        create_job,
        preprocess_job_parameters,
    )

    decoded = decode(template)
    queue = [decode_environment(doc, f"environment template {i + 1}")
             for i, doc in enumerate(environments or [])]
    known = {p.name for p in decoded.parameterDefinitions or []} | {
        p.name for env in queue for p in env.parameterDefinitions or []}
    unknown = sorted(set(values) - known)
    if unknown:
        raise TemplateError("parameters", f"the template has no parameter {unknown[0]!r} "
                            f"(its parameters: {_describe_params(decoded)})")
    try:
        resolved = preprocess_job_parameters(
            job_template=decoded, job_parameter_values=dict(values),
            job_template_dir=template_dir, current_working_dir=cwd or template_dir,
            environment_templates=queue or None,
        )
    except (ValueError, RuntimeError) as exc:
        raise TemplateError("parameters", f"{exc} (parameters: {_describe_params(decoded)})") \
            from None
    try:
        job = create_job(job_template=decoded, job_parameter_values=resolved)
    except (DecodeValidationError, ValueError) as exc:
        text = " ".join(line.strip() for line in str(exc).splitlines() if line.strip())
        raise TemplateError("template", f"cannot make a job of the template: {text}") from None
    steps: list[PlannedStep] = []
    spaces: list[Any] = []
    total = 0
    adaptive: dict[str, Any] = {}
    for step in job.steps:
        space = None if step.parameterSpace is None else \
            StepParameterSpaceIterator(space=step.parameterSpace)
        if space is not None and space.chunks_adaptive:
            # Slots, one per default-sized chunk; each value is counted against the limit,
            # since the ledger holds them all (wanhe.openjd.chunks).
            adaptive[step.name] = _adaptive(step, space)
            space = StepParameterSpaceIterator(space=step.parameterSpace,
                                               chunks_task_count_override=adaptive[
                                                   step.name]["default"])
            count = len(StepParameterSpaceIterator(space=step.parameterSpace,
                                                   chunks_task_count_override=1))
            adaptive[step.name]["slots"] = len(space)
        else:
            count = 1 if space is None else len(space)
        total += count
        if total > max_tasks:
            raise TemplateError("template", f"the job expands to more than {max_tasks:,} tasks "
                                f"(step {step.name!r} alone has {count:,}) — split it into "
                                "several jobs or use larger chunks")
        spaces.append(space)
    for step, space in zip(job.steps, spaces, strict=True):
        chunking = adaptive.get(step.name)
        if chunking is not None:
            tasks: list[dict[str, dict[str, Any]]] = [{} for _ in range(chunking["slots"])]
        else:
            tasks = [{}] if space is None else [typed_values(dict(t)) for t in space]
        steps.append(PlannedStep(
            name=step.name,
            depends_on=[d.dependsOn for d in step.dependencies or []],
            host=host_requirements(step.hostRequirements),
            tasks=tasks, adaptive=chunking,
        ))
    extensions = [str(getattr(e, "value", e)) for e in (decoded.extensions or [])]
    return Plan(job_name=str(job.name), template=template, parameters=typed_values(resolved),
                extensions=extensions, steps=steps, environments=list(environments or []))


def _adaptive(step: Any, space: Any) -> dict[str, Any]:
    """The chunking of a step whose chunk parameter has targetRuntimeSeconds."""
    name = str(space.chunks_parameter_name)
    definition = step.parameterSpace.taskParameterDefinitions[name]
    chunks = definition.chunks
    return {"param": name, "default": int(chunks.defaultTaskCount),
            "target_s": float(chunks.targetRuntimeSeconds),
            "contiguous": str(getattr(chunks.rangeConstraint, "value",
                                      chunks.rangeConstraint)) == "CONTIGUOUS", "slots": 0}


def host_requirements(model: Any) -> HostRequirements:
    if model is None:
        return HostRequirements()

    def num(value: Decimal | None) -> float | None:
        return None if value is None else float(value)

    amounts = tuple((a.name, num(a.min), num(a.max)) for a in model.amounts or [])
    attributes = tuple((a.name, tuple(a.anyOf or ()), tuple(a.allOf or ()))
                       for a in model.attributes or [])
    return HostRequirements(amounts, attributes)


def load_job(job_file: dict[str, Any]) -> tuple[Any, dict[str, Any], dict[str, Any], Any]:
    """On a worker: (Job, job parameter values, step symbol tables, revision extensions)."""
    from openjd.model import (
        RevisionExtensions,
        SpecificationRevision,
        create_job_with_symbol_tables,
    )

    decoded = decode(job_file["template"])
    values = parameter_values(job_file["parameters"])
    created = create_job_with_symbol_tables(job_template=decoded, job_parameter_values=values)
    revision = RevisionExtensions(spec_rev=SpecificationRevision.v2023_09,
                                  supported_extensions=list(job_file.get("extensions") or []))
    return created.job, values, created.step_symbol_tables, revision


def queue_environments(job_file: dict[str, Any]) -> list[Any]:
    """On a worker: the job's queue environments (decoded), in the order they are entered."""
    return [decode_environment(doc).environment for doc in job_file.get("environments") or []]


def label(params: dict[str, dict[str, Any]]) -> str:
    """A task's parameters for people: "Frame=3 Camera=left"."""
    return " ".join(f"{k}={v['value']}" for k, v in params.items())


def path_params(template: dict[str, Any]) -> list[dict[str, Any]]:
    """The PATH parameter definitions of a (raw) template."""
    return [p for p in template.get("parameterDefinitions") or []
            if isinstance(p, dict) and p.get("type") == "PATH"]


def abspath(value: str, base: Path) -> str:
    return os.path.normpath(value if os.path.isabs(value) else str(base / value))
