"""A submission's uploaded files as the API reads them: checked out of storage into a staging
folder of the work area, and inspected there by their job type as the farm sees them. Shared
by a job's submit (`wanhe.api.intake`) and the estimates of a scene and of a storyboard
(`wanhe.api.routes_estimate`, `wanhe.api.estimate_story`), so that each refuses a bad file
with the same 422.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from wanhe.api.auth import Principal
from wanhe.api.errors import unprocessable
from wanhe.api.intake_context import intake_context
from wanhe.api.service import Service
from wanhe.jobtypes.base import InputError, Inspected, JobType
from wanhe.storage import StorageError, UnsafePath


@contextmanager
def staged_files(service: Service, files: dict[str, str]) -> Iterator[Path]:
    """A new staging folder holding `files` (path -> sha256) in its `input/`, for the `with`
    block; a file that cannot be checked out (an unsafe path, a blob never uploaded) is 422 at
    `files`. The folder is removed on leaving: once a job adopted it (`WorkArea.adopt` moved
    it to the job's folder) there is nothing left to remove."""
    staging = service.work.new_staging()
    try:
        try:
            service.work.materialise_inputs(staging, files, service.storage)
        except (UnsafePath, StorageError) as exc:
            raise unprocessable("files", str(exc)) from None
        yield staging
    finally:
        service.work.discard(staging)


def inspect_staged(
    service: Service,
    who: Principal,
    kind: JobType,
    staging: Path,
    main: str | None,
    options: BaseModel,
) -> Inspected:
    """What `kind` learns from the staged files (`main` among them) with `options`, read as
    the submitting project on the farm; a user mistake, or a file named outside the upload, is
    422 with the server's paths left out."""
    context = replace(
        intake_context(service, who),
        inputs=staging / "input",
        project=who.project,
        project_id=who.project_id,
        queue_environments=_queue_environments(service, who),
    )
    try:
        return kind.inspect(context, None if main is None else staging / "input" / main, options)
    except InputError as exc:
        raise unprocessable(exc.field, strip_paths(exc.message, service)) from None
    except UnsafePath as exc:  # a file named outside the job's own
        raise unprocessable("options", strip_paths(str(exc), service)) from None


def strip_paths(text: str, service: Service) -> str:
    """Server paths in messages become paths relative to the upload."""
    root = str(service.work.root)
    return re.sub(re.escape(root) + r"/(staging|jobs)/[^/]+/input/", "", text)


def _queue_environments(service: Service, who: Principal) -> Callable[[], list[dict[str, Any]]]:
    """The submitting project's OpenJD queue environments, read when a template is planned."""
    project_id = who.project_id
    if project_id is None:  # an admin's job: the farm's queue environments only
        return list
    return lambda: [doc for _, doc in service.store.project_environments(project_id)]
