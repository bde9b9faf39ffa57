"""`wanhe kitsu link` and `wanhe kitsu status`: a project's link to its Kitsu production.

The Kitsu credentials are read from the environment (WANHE_KITSU_EMAIL and
WANHE_KITSU_PASSWORD, or WANHE_KITSU_TOKEN) or asked for at the terminal (the password
hidden), never taken as command-line arguments: those land in shell histories and `ps`.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from wanhe.cli.common import JsonOpt, ServerOpt, TokenOpt, client, emit, err, fail

if TYPE_CHECKING:
    from rich.table import Table

kitsu_app = typer.Typer(help="Publish finished jobs to a Kitsu production (docs/kitsu.md).",
                        no_args_is_help=True)


def _credentials() -> dict[str, str]:
    token = os.environ.get("WANHE_KITSU_TOKEN")
    if token:
        return {"token": token}
    email = os.environ.get("WANHE_KITSU_EMAIL")
    password = os.environ.get("WANHE_KITSU_PASSWORD")
    if email and password:
        return {"email": email, "password": password}
    if not os.isatty(0):
        fail("no Kitsu credentials: set WANHE_KITSU_EMAIL and WANHE_KITSU_PASSWORD (or "
             "WANHE_KITSU_TOKEN), or run at a terminal to be asked")
    email = email or typer.prompt("Kitsu email")
    password = password or typer.prompt("Kitsu password", hide_input=True)
    return {"email": email, "password": password}


def _link_table(data: dict[str, Any]) -> Table:
    from rich.table import Table

    table = Table(title=f"{data['project']} → Kitsu", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("production", data["production"])
    table.add_row("url", data["url"])
    table.add_row("publishes as", data["login"])
    table.add_row("linked", f"{time.strftime('%Y-%m-%d %H:%M', time.localtime(data['linked_at']))}"
                  f" by {data['linked_by']}")
    counts = data.get("publications") or {}
    if counts:
        table.add_row("publications", ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    return table


@kitsu_app.command("link")
def link(
    project: Annotated[str, typer.Argument(help="the wanhe project")],
    url: Annotated[str, typer.Option(help="Kitsu's API address, e.g. https://kitsu.studio/api")],
    production: Annotated[str, typer.Option(help="the Kitsu production's name")],
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Link PROJECT to a Kitsu production: jobs submitted with --shot/--task publish there.
    The credentials are checked now and kept on the farm, encrypted."""
    body = {"url": url, "production": production, **_credentials()}
    with client(server, token) as c:
        data = c.json("PUT", f"/api/projects/{project}/kitsu", json=body)
    if as_json:
        emit(data, True)
        return
    err.print(f"project {data['project']} linked to Kitsu production {data['production']!r} "
              f"at {data['url']} (publishing as {data['login']})", highlight=False)


@kitsu_app.command("status")
def status(
    project: Annotated[str | None, typer.Argument(
        help="the wanhe project; default the token's")] = None,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """PROJECT's Kitsu link (never its credentials) and its publications by state."""
    with client(server, token) as c:
        name = project or c.json("GET", "/api/me").get("project")
        if not name:
            fail("an admin token belongs to no project: name the project")
        data = c.json("GET", f"/api/projects/{name}/kitsu")
    emit(data, as_json, _link_table)


def from_kitsu(
    production: Annotated[str, typer.Argument(help="the Kitsu production (the project's link)")],
    sequence: Annotated[str, typer.Argument(help="the sequence, e.g. SQ01")],
    output: Annotated[Path | None, typer.Option(
        "--output", "-o", help="the storyboard to write; default SEQUENCE.yaml")] = None,
    project: Annotated[str | None, typer.Option(
        help="the wanhe project linked to the production; default the token's")] = None,
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Write a storyboard skeleton from a Kitsu sequence: a shot per Kitsu shot (its frame
    count as duration, its description as the line to fill), boards to draw at boards/ID.png."""
    import yaml

    from wanhe.story.skeleton import skeleton

    target = output or Path(f"{sequence}.yaml")
    if target.exists():
        fail(f"{target} exists — give another --output (nothing was overwritten)")
    with client(server, token) as c:
        name = project or c.json("GET", "/api/me").get("project")
        if not name:
            fail("an admin token belongs to no project: give --project")
        link = c.json("GET", f"/api/projects/{name}/kitsu")
        if link["production"] != production:
            fail(f"project {name} is linked to {link['production']!r}, not {production!r} — "
                 "give --project, or link it: wanhe kitsu link")
        data = c.json("GET", f"/api/projects/{name}/kitsu/sequences/{sequence}")
    if not data["shots"]:
        fail(f"sequence {sequence} has no shots in Kitsu yet — add them there first")
    board = skeleton(production, sequence, float(data["fps"]), data["shots"])
    text = yaml.safe_dump(board, sort_keys=False, allow_unicode=True)
    partial = target.with_name(f".{target.name}.partial")
    partial.write_text(text, encoding="utf-8")
    partial.replace(target)  # whole or not at all
    err.print(f"{target}: {len(data['shots'])} shot(s) of {sequence} — draw boards/<id>.png, "
              "write the lines, then wanhe story check", highlight=False)


def register(app: typer.Typer) -> None:
    from wanhe.cli.story import story_app

    app.add_typer(kitsu_app, name="kitsu")
    story_app.command("from-kitsu")(from_kitsu)
