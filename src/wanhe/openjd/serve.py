"""What `wanhe serve` sets up for OpenJD: its workers' attributes and path mapping rules
(handed to the workers through their environment), who sessions run as, and the facts about
its workers that host requirements are checked against at submit."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from wanhe.openjd.hostreq import ATTRS_ENV, FarmFacts, encode_attrs, parse_attr_args
from wanhe.sandbox import accounts as users

QUEUE_ENVS = "WANHE_QUEUE_ENVS"
"""The farm's queue environments (JSON list of environment templates), for job intake."""


def farm_environments() -> list[dict[str, Any]]:
    """The environment templates every OpenJD job of this farm enters first
    (`wanhe serve --queue-env`)."""
    text = os.environ.get(QUEUE_ENVS)
    found = json.loads(text) if text else []
    return [doc for doc in found if isinstance(doc, dict)]


def configure_workers(attr_args: list[str], path_mapping: Path | None,
                      queue_envs: list[Path] | None = None) -> list[str]:
    """Put the attributes and rules where this process's workers (and an embedded Ray's,
    which inherit its environment) find them; the lines `wanhe serve` prints at start."""
    from wanhe.sandbox.box import describe

    # No process-wide umask: what must be private is made so where it is made
    # (`wanhe.private`: the database, the storage and work folders, logs, Ray's session
    # folder, tokens), and a job's folder is opened to its project's group on purpose
    # (`wanhe.sandbox.accounts.prepare_job`).
    lines = [users.describe_mode(), describe()]
    if attr_args:
        attrs = parse_attr_args(attr_args)
        os.environ[ATTRS_ENV] = encode_attrs(attrs)
        lines.append("OpenJD worker attributes: " + ", ".join(
            f"{k}={','.join(v)}" for k, v in sorted(attrs.items())))
    if queue_envs:
        from wanhe.openjd.template import TemplateError, decode_environment, read_document

        docs = []
        try:
            for path in queue_envs:
                doc = read_document(path.expanduser(), "environment template", "--queue-env")
                decode_environment(doc, f"--queue-env {path}")
                docs.append(doc)
        except TemplateError as exc:
            raise ValueError(exc.message) from None
        os.environ[QUEUE_ENVS] = json.dumps(docs)
        lines.append("OpenJD queue environments (entered first in every session): " + ", ".join(
            str(d["environment"].get("name")) for d in docs))
    if path_mapping is not None:
        path = path_mapping.expanduser().absolute()
        try:
            doc = json.loads(path.read_text())
            rules = doc["path_mapping_rules"] if isinstance(doc, dict) else None
            if not isinstance(rules, list):
                raise ValueError("it has no path_mapping_rules list")
            from openjd.sessions import PathMappingRule

            for rule in rules:
                PathMappingRule.from_dict(rule)
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"--path-mapping {path_mapping}: not a pathmapping-1.0 document "
                             f"({exc}) — write {{\"version\": \"pathmapping-1.0\", "
                             "\"path_mapping_rules\": [{\"source_path_format\": \"POSIX\", "
                             "\"source_path\": …, \"destination_path\": …}]}") from None
        os.environ["WANHE_PATH_MAPPING"] = str(path)
        lines.append(f"OpenJD path mapping: {len(rules)} rule(s) from {path}")
    return lines


def farm_facts(service: Any) -> FarmFacts:
    """The service's workers as host requirements see them."""
    dispatcher = getattr(service, "dispatcher", None)
    max_cpus: float | None = None
    gpus: float | None = None
    if dispatcher is not None and dispatcher.pool.settled and dispatcher.pool.slots:
        shapes = dispatcher.pool.shapes()
        max_cpus = max((s.cpus for s in shapes if not s.light and s.gpus == 0), default=0.0)
        gpus = sum(s.gpus for s in shapes)
    try:
        memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError):
        memory = None
    try:
        scratch = shutil.disk_usage(service.work.root).free
    except OSError:
        scratch = None
    return FarmFacts(max_cpus=max_cpus, gpus=gpus, memory=memory, scratch=scratch,
                     elastic=bool(service.settings.ray_address))
