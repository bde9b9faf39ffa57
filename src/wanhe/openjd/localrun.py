"""An OpenJD template or job bundle as `wanhe run` and `wanhe submit` read it: the template,
its bundle's parameter values and asset references, `-p` values over them, and its plan.
(`wanhe.runs.openjd` runs it on this machine.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wanhe.openjd.template import (
    ASSET_NAMES,
    PARAMETER_NAMES,
    TEMPLATE_NAMES,
    Plan,
    TemplateError,
    bundle_parameter_values,
    find_in_bundle,
    plan,
    read_document,
)


@dataclass(slots=True)
class Source:
    """A template (and its bundle's files, when it came in one)."""

    template_path: Path
    template: dict[str, Any]
    values: dict[str, str]
    bundle: Path | None = None
    assets: dict[str, Any] = field(default_factory=dict)
    environments: list[dict[str, Any]] = field(default_factory=list)
    """Queue environment templates (`--env FILE`), entered before the job's environments."""


def load_source(target: Path | None, template: Path | None, params: dict[str, str],
                envs: list[Path] | None = None) -> Source:
    """`wanhe run BUNDLE_DIR` or `--template FILE`, with `-p` values over the bundle's, and
    the queue environments of `--env FILE`."""
    if (target is None) == (template is None):
        raise TemplateError("template", "give a job bundle folder or --template FILE "
                            "(one of them)")
    bundle: Path | None = None
    if template is None:
        assert target is not None
        bundle = target.expanduser().absolute()
        if not bundle.is_dir():
            raise TemplateError("template", f"{target} is not a job bundle folder — give the "
                                "folder holding template.yaml, or --template FILE")
        found = find_in_bundle(bundle, TEMPLATE_NAMES)
        if found is None:
            raise TemplateError("template", f"the bundle {bundle} has no template.yaml or "
                                "template.json")
        template = found
    path = template.expanduser().absolute()
    if not path.is_file():
        raise TemplateError("template", f"no job template at {template}")
    doc = read_document(path, "job template", "template")
    values: dict[str, str] = {}
    assets: dict[str, Any] = {}
    if bundle is not None:
        found_values = find_in_bundle(bundle, PARAMETER_NAMES)
        if found_values is not None:  # Deadline's own (deadline:priority …) are not the job's
            values.update({k: v for k, v in bundle_parameter_values(found_values).items()
                           if ":" not in k})
        found_assets = find_in_bundle(bundle, ASSET_NAMES)
        if found_assets is not None:
            assets = read_document(found_assets, "asset references file", "assets") or {}
    values.update(params)
    if not isinstance(doc, dict):
        raise TemplateError("template", f"{path} is not a job template (a mapping)")
    environments = []
    for env in envs or []:
        found_env = env.expanduser().absolute()
        if not found_env.is_file():
            raise TemplateError("environments", f"no environment template at {env}")
        environments.append(read_document(found_env, "environment template", "environments"))
    return Source(path, doc, values, bundle, assets, environments)


def make_plan(source: Source, cwd: Path | None = None) -> Plan:
    """The job of `source` (`ask_plan`, waited for at once)."""
    return ask_plan(source, cwd)()


def ask_plan(source: Source, cwd: Path | None = None) -> Callable[[], Plan]:
    """Start planning the job of `source` and return what gives the plan: planned by the
    spawner `wanhe run` started ahead, which has openjd imported
    (`wanhe.openjd.hostpool.plan_ahead`), else here when it is asked for. The caller may work
    meanwhile (open its database)."""
    from wanhe.openjd import hostpool

    arguments: dict[str, Any] = {
        "template": source.template, "values": source.values,
        "template_dir": source.template_path.parent, "cwd": cwd or Path.cwd(),
        "environments": source.environments}
    planned = hostpool.plan_ahead(arguments)

    def answer() -> Plan:
        made = planned()
        return made if made is not None else plan(**arguments)

    return answer
