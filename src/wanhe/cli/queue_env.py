"""`wanhe project env add|list|remove`: a project's OpenJD queue environments.

Deadline Cloud attaches environment templates (Conda, Rez, a venv) to a queue; wanhe attaches
them to a project: every OpenJD job the project submits later enters the farm's queue
environments (`wanhe serve --queue-env`), then the project's in the order they were added, then
the job's own. With `--db` the commands write the database directly (a farm's admin on its
machine); otherwise they go through the API with a token that manages the project.
"""

from pathlib import Path
from typing import Annotated, Any

import typer

from wanhe.cli.common import (
    DbOpt,
    JsonOpt,
    ServerOpt,
    TokenOpt,
    client,
    emit,
    err,
    fail,
    open_store_or_fail,
)

env_app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    help="A project's OpenJD queue environments (entered before its jobs' own).",
    no_args_is_help=True)


def _read_environment(path: Path) -> tuple[str, dict[str, Any]]:
    """The environment template at `path` and its name, or one line saying what is wrong."""
    from wanhe.openjd.template import TemplateError, decode_environment, read_document

    try:
        document = read_document(path.expanduser(), "environment template", "FILE")
        decoded = decode_environment(document, str(path))
    except TemplateError as exc:
        fail(exc.message)
    return str(decoded.environment.name), document


def _local(db: str | None, server: str | None, token: str | None) -> bool:
    return db is not None or not (server or token)


@env_app.command("add")
def env_add(
    project: Annotated[str, typer.Argument(help="the project whose jobs enter it")],
    file: Annotated[Path, typer.Argument(help="an environment template (YAML or JSON, "
                                               "specificationVersion environment-2023-09)")],
    replace: Annotated[bool, typer.Option(
        "--replace", help="take the place of the project's environment of the same name")]
    = False,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Add a queue environment to a project: its later OpenJD jobs enter it after the farm's
    and before their own (jobs already submitted keep the ones they started with)."""
    name, document = _read_environment(file)
    if _local(db, server, token):
        with open_store_or_fail(db) as s:
            row = s.project_by_name(project)
            if row is None:
                fail(f"no project named {project!r} — wanhe project list shows them")
            s.add_project_environment(row.id, name, document, replace=replace)
    else:
        with client(server, token) as c:
            c.json("POST", f"/api/projects/{project}/environments",
                   json={"template": document, "replace": replace})
    err.print(f"project {project}: queue environment {name!r} "
              f"{'replaced' if replace else 'added'}", highlight=False)


def _environments(project: str, db: str | None, server: str | None,
                  token: str | None) -> list[dict[str, Any]]:
    if _local(db, server, token):
        with open_store_or_fail(db) as s:
            row = s.project_by_name(project)
            if row is None:
                fail(f"no project named {project!r} — wanhe project list shows them")
            return [{"name": n, "template": d} for n, d in s.project_environments(row.id)]
    with client(server, token) as c:
        found: list[dict[str, Any]] = c.json("GET", f"/api/projects/{project}/environments")
    return found


@env_app.command("list")
def env_list(
    project: str, db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """A project's queue environments, in the order its jobs enter them."""
    rows = _environments(project, db, server, token)

    def table(rows: list[dict[str, Any]]) -> Any:
        from rich.table import Table

        shown = Table("#", "environment", "enter / exit", title=f"project {project}")
        for i, row in enumerate(rows, 1):
            script = (row["template"].get("environment") or {}).get("script") or {}
            actions = sorted((script.get("actions") or {}).keys())
            shown.add_row(str(i), row["name"], ", ".join(actions) or "variables only")
        return shown

    emit(rows, as_json, table)


@env_app.command("remove")
def env_remove(
    project: str,
    name: Annotated[str, typer.Argument(help="the environment's name (wanhe project env "
                                             "list)")],
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Remove one of a project's queue environments (jobs already submitted keep theirs)."""
    if _local(db, server, token):
        with open_store_or_fail(db) as s:
            row = s.project_by_name(project)
            if row is None:
                fail(f"no project named {project!r} — wanhe project list shows them")
            if not s.remove_project_environment(row.id, name):
                fail(f"project {project} has no queue environment named {name!r} "
                     f"(wanhe project env list {project})")
    else:
        with client(server, token) as c:
            c.json("DELETE", f"/api/projects/{project}/environments/{name}")
    err.print(f"project {project}: queue environment {name!r} removed", highlight=False)
