"""The API's answers to a request it cannot take, shared by its routes and intake.

A leaf among the api modules (it imports none of them), so any of them may import it.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from fastapi import HTTPException

from wanhe.jobtypes.base import InputError

if TYPE_CHECKING:
    from pydantic import BaseModel

    from wanhe.jobtypes.base import JobType
    from wanhe.store.store import Store


def unprocessable(field: str, message: str) -> HTTPException:
    """422 shaped as FastAPI's own validation errors: `field` ("options.frames") is the body's
    path, so clients show the message where the field is."""
    return HTTPException(
        422, [{"loc": ["body", *field.split(".")], "msg": message, "type": "value_error"}]
    )


def checked_options(kind: JobType, main: str | None, options: dict[str, Any]) -> BaseModel:
    """A submission's main file and options as its job type checks them before any file is
    fetched (a submit, an estimate): the parsed options, or 422 at the field it names."""
    try:
        kind.check_main(main)
        parsed = kind.parse_options(options)
        kind.check(parsed)
    except InputError as exc:
        raise unprocessable(exc.field, exc.message) from None
    return parsed


def require_uploaded(store: Store, project_id: int, main: str | None,
                     files: dict[str, str]) -> str:
    """An estimate's files: `main` among them (returned), and every one uploaded by this
    project (another project's upload of the same bytes does not count: it is theirs)."""
    if main is None or main not in files:
        raise unprocessable("main", f"main file {main!r} is not among the files sent")
    hashes: Iterable[str] = files.values()
    missing = store.blobs_missing(project_id, hashes)
    if missing:
        raise unprocessable("files", f"{len(missing)} file(s) were never uploaded by this "
                                     f"project (e.g. {missing[0]}) — PUT them to "
                                     "/api/blobs/{sha256} first")
    return main
