"""The service's commands: `wanhe serve`, `project`, `token`, `submit`, `jobs`, `job`, `logs`,
`cancel|pause|resume|retry`, `priority`, `workers`, `report`.

Every command but `serve` (and the `--db` forms of `project`/`token`) is a thin client of the
REST API. Errors are one line, never a traceback.
"""


import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

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
    out,
)
from wanhe.cli.queue_env import env_app
from wanhe.model import human_duration
from wanhe.sched.devices import DEVICE_HELP, Device

if TYPE_CHECKING:
    from rich.table import Table


def _time(value: float | None) -> str:
    if value is None:
        return ""
    import datetime as dt

    return dt.datetime.fromtimestamp(value).strftime("%Y-%m-%d %H:%M")


def _hours(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


# ---------------------------------------------------------------------------------- serve


def serve(
    host: Annotated[str, typer.Option(help="address to bind; keep 127.0.0.1 unless behind "
                                      "a proxy")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="port (0: one the OS picks, printed at start)")]
    = 8640,
    db: DbOpt = None,
    storage: Annotated[str | None, typer.Option(
        help="where blobs and finished outputs are kept: a local path or an fsspec URL "
             "(file:///srv/wanhe, s3://bucket/prefix, gs://…, ftp://…); default "
             "~/.wanhe/storage")] = None,
    work: Annotated[Path | None, typer.Option(
        help="local (or NFS) folder for checked-out inputs, tiles and logs; default: the "
             "storage folder, or ~/.wanhe/work when --storage is a URL")] = None,
    ray_address: Annotated[str | None, typer.Option(help="a Ray cluster (default: start one "
                                                    "here)")] = None,
    workers: Annotated[int | None, typer.Option(help="worker slots; default: one per core")]
    = None,
    max_upload_bytes: Annotated[int | None, typer.Option(help="largest file accepted")] = None,
    num_cpus: Annotated[int | None, typer.Option(help="logical CPUs of the embedded Ray; "
                                                 "default: this machine's cores")] = None,
    num_gpus: Annotated[int | None, typer.Option(help="GPUs of the embedded Ray, each a GPU "
                                                 "worker slot; default: as Ray detects them")]
    = None,
    worker_attr: Annotated[list[str] | None, typer.Option(
        "--worker-attr", help="an OpenJD worker attribute NAME=VALUE[,VALUE] its workers have "
        "(repeatable), e.g. license=houdini")] = None,
    path_mapping: Annotated[Path | None, typer.Option(
        help="OpenJD path mapping rules (a pathmapping-1.0 JSON file) for its workers")]
    = None,
    queue_env: Annotated[list[Path] | None, typer.Option(
        "--queue-env", help="an OpenJD environment template (environment-2023-09) every "
        "OpenJD job of this farm enters first, like a Deadline queue environment "
        "(repeatable)")] = None,
    max_cores: Annotated[float | None, typer.Option(
        help="with --ray-address: the most cores the farm asks the autoscaler for")] = None,
    max_gpus: Annotated[float | None, typer.Option(
        help="with --ray-address: the most GPUs the farm asks the autoscaler for")] = None,
) -> None:
    """Run the farm: REST API, dashboard and dispatcher in one process."""
    import logging

    from wanhe.api.app import create_app
    from wanhe.config import Settings
    from wanhe.storage import StorageUnavailable
    from wanhe.store.store import DatabaseUnavailable

    settings = Settings().overridden(
        host=host, port=port, db=db, storage=storage, work=work, ray_address=ray_address,
        max_upload_bytes=max_upload_bytes or None,
    )
    for flag, value in (("--max-cores", max_cores), ("--max-gpus", max_gpus)):
        if value is not None and not value >= (1 if flag == "--max-cores" else 0):
            fail(f"{flag} must be at least {1 if flag == '--max-cores' else 0}, got {value:g}")
    settings = settings.overridden(max_cores=max_cores, max_gpus=max_gpus)
    if host not in ("127.0.0.1", "localhost", "::1"):
        err.print(f"[yellow]warning:[/] binding {host}: the API is reachable from other "
                  "machines — put it behind TLS", highlight=False)
    if settings.storage_location.startswith("memory://"):
        err.print("[yellow]warning:[/] memory:// storage lives only as long as this process — "
                  "uploads and outputs are gone when it stops", highlight=False)
    from wanhe.openjd.serve import configure_workers

    try:
        for line in configure_workers(worker_attr or [], path_mapping, queue_env or []):
            err.print(line, highlight=False)
    except ValueError as exc:
        fail(str(exc))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: "
                        "%(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        app = create_app(settings, workers=workers, num_cpus=num_cpus, num_gpus=num_gpus)
    except (StorageUnavailable, DatabaseUnavailable) as exc:
        fail(str(exc))
    except Exception as exc:
        fail(f"cannot start: {type(exc).__name__}: {exc}")
    service = app.state.service
    # the port is taken before Ray starts (in the app's lifespan): Ray's processes bind ports
    # the OS picks, and one could take ours between a check and uvicorn's own bind
    listener = _bind_listener(host, port)
    port = listener.getsockname()[1]
    from wanhe.storage import redact

    err.print(f"wanhe serving on http://{host}:{port} (db {redact(settings.db_url)}, storage "
              f"{service.storage.describe()}, work {service.work.root})", highlight=False)
    _serve_until_stopped(app, listener)


def _bind_listener(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (port 0: one the OS picks), or a clear error."""
    try:
        family, kind, proto, _, address = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
    except socket.gaierror as exc:
        fail(f"cannot bind {host}: {exc.strerror} — pass --host with an address of this machine")
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
    except OSError as exc:
        listener.close()
        fail(f"cannot listen on {host}:{port}: {exc.strerror} — stop what uses it or pass "
             "--port with another port (0 picks a free one)")
    listener.listen(2048)
    return listener


def _serve_until_stopped(app: Any, listener: socket.socket) -> None:
    """Run uvicorn until SIGINT or SIGTERM, both the same graceful way (uvicorn stops taking
    requests, the lifespan hands back or finishes running attempts and closes the store),
    then stop the embedded Ray and end whatever is left of the service's process tree. A
    watchdog process ends that tree too when the service dies without this (kill -9)."""
    import signal

    import uvicorn

    from wanhe.api import reaper

    reaper.become_subreaper()
    watchdog = reaper.start_watchdog()
    # uvicorn catches both signals while it serves and, once stopped, raises the caught one
    # again under the handler found before it: for SIGTERM that was "die now" (no Ray
    # shutdown, orphaned agents); as SIGINT's, it now unwinds through the same path
    signal.signal(signal.SIGTERM, signal.default_int_handler)
    try:
        config = uvicorn.Config(app, log_level="warning", timeout_graceful_shutdown=5)
        uvicorn.Server(config).run(sockets=[listener])
    except KeyboardInterrupt:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)  # a second one must not cut this short
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        if "ray" in sys.modules:
            from wanhe.engine import cluster

            try:
                cluster.shutdown()
            except Exception as exc:
                err.print(f"[yellow]warning:[/] Ray did not shut down cleanly: {exc}",
                          highlight=False)
        reaper.reap_tree(skip=watchdog.pid if watchdog is not None else None)
    err.print("wanhe stopped", highlight=False)


# ---------------------------------------------------------------------------------- projects

project_app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    help="Projects: weights, budgets and their tokens.",
    no_args_is_help=True)
project_app.add_typer(env_app, name="env")


@project_app.command("create")
def project_create(
    name: str,
    budget_core_hours: Annotated[float | None, typer.Option(help="core-hours it may use")]
    = None,
    budget_gpu_hours: Annotated[float | None, typer.Option(help="GPU-hours it may use")]
    = None,
    weight: Annotated[float, typer.Option(help="fair-share weight")] = 1.0,
    db: DbOpt = None,
    server: Annotated[str | None, typer.Option("--server", help="go through this server "
                                               "(needs an admin --token)")] = None,
    token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a project and print its first API token."""
    from wanhe.store.rows import normalise_project_name

    if server:
        with client(server, token) as c:
            made = c.json("POST", "/api/projects", json={
                "name": name, "budget_core_hours": budget_core_hours,
                "budget_gpu_hours": budget_gpu_hours, "weight": weight})
        secret = made["token"]
    else:
        with open_store_or_fail(db) as s:
            project = s.create_project(name, weight=weight, budget_core_hours=budget_core_hours,
                                       budget_gpu_hours=budget_gpu_hours)
            # the project's first token manages it (mints and revokes its other tokens)
            secret = s.create_token(project.id, f"{name} (wanhe project create)",
                                    scope="manage")
    name = normalise_project_name(name)
    if as_json:
        emit({"project": name, "token": secret}, True)
    else:
        err.print(f"project {name} created; its token (shown once):", highlight=False)
        out.print(secret, highlight=False)


def _projects_table(rows: list[dict[str, Any]]) -> "Table":
    from rich.table import Table

    table = Table("project", "weight", "budget core-h", "used core-h", "budget GPU-h",
                  "used GPU-h")
    for r in rows:
        table.add_row(r["name"], f"{r['weight']:g}", _hours(r["budget_core_hours"]),
                      _hours(r["used_core_hours"]), _hours(r.get("budget_gpu_hours")),
                      _hours(r.get("used_gpu_hours", 0.0)))
    return table


@project_app.command("list")
def project_list(
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Projects with weight, budgets and metered core-hours and GPU-hours."""
    if server or token:
        with client(server, token) as c:
            rows = c.json("GET", "/api/projects")
    else:
        with open_store_or_fail(db) as s:
            used = s.used_core_seconds()
            used_gpu = s.used_gpu_seconds()
            rows = []
            for p in s.projects():
                core_h, gpu_h = used.get(p.id, 0.0) / 3600, used_gpu.get(p.id, 0.0) / 3600
                rows.append({
                    "name": p.name, "weight": p.weight,
                    "budget_core_hours": p.budget_core_hours, "used_core_hours": core_h,
                    "budget_gpu_hours": p.budget_gpu_hours, "used_gpu_hours": gpu_h,
                    "over_budget": (
                        (p.budget_core_hours is not None and core_h >= p.budget_core_hours)
                        or (p.budget_gpu_hours is not None and gpu_h >= p.budget_gpu_hours)
                    ),
                })
    emit(rows, as_json, _projects_table)


@project_app.command("set")
def project_set(
    name: str,
    budget_core_hours: Annotated[float | None, typer.Option(help="new budget")] = None,
    no_budget: Annotated[bool, typer.Option("--no-budget", help="remove the budget")] = False,
    weight: Annotated[float | None, typer.Option(help="new fair-share weight")] = None,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    budget_gpu_hours: Annotated[float | None, typer.Option(help="new GPU-hour budget")]
    = None,
    no_gpu_budget: Annotated[bool, typer.Option("--no-gpu-budget",
                                                help="remove the GPU-hour budget")] = False,
) -> None:
    """Change a project's weight or budgets (a running service picks it up within a second)."""
    if budget_core_hours is not None and no_budget:
        fail("give --budget-core-hours or --no-budget, not both")
    if budget_gpu_hours is not None and no_gpu_budget:
        fail("give --budget-gpu-hours or --no-gpu-budget, not both")
    if server or token:
        body: dict[str, Any] = {}
        if weight is not None:
            body["weight"] = weight
        if budget_core_hours is not None or no_budget:
            body["budget_core_hours"] = None if no_budget else budget_core_hours
        if budget_gpu_hours is not None or no_gpu_budget:
            body["budget_gpu_hours"] = None if no_gpu_budget else budget_gpu_hours
        with client(server, token) as c:
            c.json("PATCH", f"/api/projects/{name}", json=body)
    else:
        with open_store_or_fail(db) as s:
            project = s.project_by_name(name)
            if project is None:
                fail(f"no project named {name!r}")
            s.update_project(project.id, weight=weight, budget_core_hours=budget_core_hours,
                             clear_budget=no_budget, budget_gpu_hours=budget_gpu_hours,
                             clear_gpu_budget=no_gpu_budget)
    err.print(f"project {name} updated", highlight=False)


@project_app.command("budget")
def project_budget(
    name: str,
    core_hours: Annotated[float | None, typer.Argument(
        help="the new budget in core-hours (leave out to change only --gpu-hours)")] = None,
    gpu_hours: Annotated[float | None, typer.Option(
        "--gpu-hours", help="the new budget in GPU-hours")] = None,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Set a project's budget in core-hours and/or (with --gpu-hours) GPU-hours."""
    if core_hours is None and gpu_hours is None:
        fail("give the budget in core-hours, --gpu-hours, or both")
    project_set(name, budget_core_hours=core_hours, no_budget=False, weight=None, db=db,
                server=server, token=token, budget_gpu_hours=gpu_hours, no_gpu_budget=False)


# ---------------------------------------------------------------------------------- tokens

token_app = typer.Typer(
    rich_markup_mode=None,  # click's plain help: rich's help renderer costs 0.15-0.3 s
    help="API tokens: create, list, revoke.", no_args_is_help=True)


_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """`30d`, `12h`, `90m`, `3600s`, `2w` or plain seconds -> seconds (ValueError if not)."""
    import math
    import re

    match = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)\s*([smhdw]?)\s*", text.lower())
    if match is None:
        raise ValueError(f"{text!r} is not a duration: give e.g. 30d, 12h, 90m or 3600s")
    seconds = float(match.group(1)) * _UNITS[match.group(2) or "s"]
    if not math.isfinite(seconds) or seconds <= 0 or seconds > 10 * 366 * 86400:
        raise ValueError(f"{text!r} must be more than 0 and at most ten years")
    return seconds


@token_app.command("create")
def token_create(
    project: Annotated[str | None, typer.Option(help="the project it acts for")] = None,
    admin: Annotated[bool, typer.Option("--admin", help="an admin token (all projects)")]
    = False,
    name: Annotated[str, typer.Option(help="a label (who or what uses it)")] = "",
    scope: Annotated[str, typer.Option(
        help="submit: read and submit; manage: also create and revoke the project's tokens")]
    = "submit",
    expires: Annotated[str | None, typer.Option(
        help="it stops working after this long: 30d, 12h, 90m, 3600s (default: never)")]
    = None,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Create a token (printed once). `--admin --db URL` makes the first admin token.

    Through the server it needs a managing token (the project's first one) or an admin one."""
    import time

    if not admin and not project and not (server or token):
        fail("name --project P, or --admin for an admin token")
    if scope not in ("submit", "manage"):
        fail(f"--scope {scope!r}: give submit or manage")
    try:
        life = None if expires is None else parse_duration(expires)
    except ValueError as exc:
        fail(f"--expires {exc}")
    if server or token:
        with client(server, token) as c:
            made = c.json("POST", "/api/tokens",
                          json={"project": project, "admin": admin, "name": name,
                                "scope": scope, "expires_in_s": life})
        secret, expires_at = made["token"], made.get("expires_at")
    else:
        with open_store_or_fail(db) as s:
            project_id = None
            if not admin:
                found = s.project_by_name(project or "")
                if found is None:
                    fail(f"no project named {project!r} — create it with wanhe project create")
                project_id = found.id
            expires_at = None if life is None else time.time() + life
            secret = s.create_token(project_id, name or ("admin" if admin else project or ""),
                                    scope=scope, expires_at=expires_at)
    if as_json:
        emit({"project": None if admin else project, "admin": admin, "token": secret,
              "scope": "admin" if admin else scope, "expires_at": expires_at}, True)
    else:
        if expires_at is not None:
            err.print(f"expires {_time(expires_at)}", highlight=False)
        out.print(secret, highlight=False)


def _tokens_table(rows: list[dict[str, Any]]) -> "Table":
    from rich.table import Table

    table = Table("id", "project", "name", "scope", "created", "expires", "last used",
                  "revoked")
    for r in rows:
        expires = _time(r.get("expires_at")) + (" (expired)" if r.get("expired") else "")
        table.add_row(str(r["id"]), r["project"] or "(admin)", r["name"],
                      r.get("scope", ""), _time(r["created_at"]), expires,
                      _time(r.get("last_used_at")) or "never", "yes" if r["revoked"] else "")
    return table


@token_app.command("list")
def token_list(
    project: Annotated[str | None, typer.Option(help="only this project's")] = None,
    db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Tokens (never their secrets)."""
    if server or token:
        with client(server, token) as c:
            rows = c.json("GET", "/api/tokens")
    else:
        with open_store_or_fail(db) as s:
            rows = s.tokens()
    if project:
        rows = [r for r in rows if r["project"] == project]
    emit(rows, as_json, _tokens_table)


@token_app.command("revoke")
def token_revoke(
    token_id: int, db: DbOpt = None, server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Revoke a token by id: it stops working at once."""
    if server or token:
        with client(server, token) as c:
            c.json("DELETE", f"/api/tokens/{token_id}")
    else:
        with open_store_or_fail(db) as s:
            if not s.revoke_token(token_id):
                fail(f"no active token {token_id}")
    err.print(f"token {token_id} revoked", highlight=False)


# ---------------------------------------------------------------------------------- submit


def submit(
    scene: Annotated[Path | None, typer.Argument(
        help="the .blend to render on the farm, a storyboard .yaml (a story reel job), or an "
             "OpenJD job bundle folder")] = None,
    frames: Annotated[str | None, typer.Option("--frames", "-f", help="e.g. 1-240")] = None,
    tiles: Annotated[str, typer.Option(help="tiles per frame, COLUMNSxROWS")] = "1x1",
    overscan: Annotated[int | None, typer.Option(
        help="pixels each tile renders past its edges; default: the least that is exact")] = None,
    split: Annotated[int | None, typer.Option(
        help="spread each frame over N workers (tiles, sample chunks or both)")] = None,
    samples: Annotated[int | None, typer.Option(help="override the scene's samples")] = None,
    sample_chunks: Annotated[int, typer.Option(help="split samples over this many tasks")] = 1,
    resolution_percentage: Annotated[int | None, typer.Option(help="override resolution %")]
    = None,
    camera: Annotated[str | None, typer.Option(help="render through this camera")] = None,
    denoise: Annotated[bool, typer.Option("--denoise/--no-denoise")] = True,
    threads_per_task: Annotated[int, typer.Option(help="Cycles threads per task")] = 1,
    qc: Annotated[bool, typer.Option("--qc/--no-qc")] = False,
    video: Annotated[bool, typer.Option("--video/--no-video")] = False,
    device: Annotated[Device, typer.Option(help=DEVICE_HELP)] = Device.ANY,
    task_timeout: Annotated[float | None, typer.Option(help="seconds per task at most")] = None,
    silence_timeout: Annotated[float | None, typer.Option(help="kill tasks silent this long")]
    = None,
    max_attempts: Annotated[int, typer.Option(help="tries per task")] = 3,
    priority: Annotated[int, typer.Option(help="0-100, higher first")] = 50,
    name: Annotated[str | None, typer.Option(help="job name; default the file name")] = None,
    export_openjd: Annotated[Path | None, typer.Option(
        help="write the job as an OpenJD job bundle in this new folder instead of submitting "
             "(docs/openjd.md)")] = None,
    depends_on: Annotated[list[int] | None, typer.Option("--after", help="wait for job ID")]
    = None,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
    template: Annotated[Path | None, typer.Option(
        "--template", help="an OpenJD job template to run instead of a scene")] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", "-p", help="OpenJD job parameter NAME=VALUE (repeatable)")] = None,
    estimate: Annotated[bool, typer.Option(
        "--estimate", help="probe the scene here first (wanhe estimate): print its core-hours "
        "and warn when they exceed the project's remaining budget")] = False,
    strict_budget: Annotated[bool, typer.Option(
        "--strict-budget", help="with the estimate: refuse (exit 2) a job over the budget "
        "left")] = False,
    kind: Annotated[str | None, typer.Option(
        "--kind", help="queue a job of this kind (GET /api/job-types lists them) from "
        "--options FILE; SCENE is then its main file, if it takes one")] = None,
    options_file: Annotated[Path | None, typer.Option(
        "--options", help="with --kind: the job's options (YAML or JSON), checked against "
        "the kind's schema; the files they name (relative to it) are uploaded")] = None,
    farm_estimate: Annotated[bool, typer.Option(
        "--farm-estimate", help="let the farm probe the scene at submit (POST /api/estimate) "
        "and keep that estimate with the job")] = False,
    shot: Annotated[str | None, typer.Option(
        "--shot", help="publish to this Kitsu shot when done, SEQUENCE/SHOT (docs/kitsu.md)")]
    = None,
    kitsu_task: Annotated[str | None, typer.Option(
        "--task", help="with --shot (or --sequence): the Kitsu task type, e.g. Lighting")]
    = None,
    sequence: Annotated[str | None, typer.Option(
        "--sequence", help="a storyboard: publish each shot's clip to SEQUENCE/<shot id> and "
        "the reel to the sequence in Kitsu (docs/kitsu.md)")] = None,
    reel_task: Annotated[str | None, typer.Option(
        "--reel-task", help="with --sequence: the sequence's task type the reel goes to, "
        "e.g. Reel; default --task")] = None,
    create_shots: Annotated[bool, typer.Option(
        "--create-shots", help="with --sequence: create the shots the sequence lacks in "
        "Kitsu (frame in/out from the reel); without it they are left out and named")] = False,
) -> None:
    """Pack SCENE and its files, upload what the farm lacks, queue the job; print its id.
    A storyboard (.yaml) is queued as a story reel job; with --template FILE (or a bundle
    folder), an OpenJD job; with --kind K --options FILE, a job of any kind."""
    from wanhe.blender.errors import SceneError
    from wanhe.blender.inspect import check_blend_file
    from wanhe.transfer.errors import PackError
    from wanhe.transfer.pack import collect, hash_all, upload

    if not 0 <= priority <= 100:
        fail("--priority must be between 0 and 100")
    story_file = scene is not None and scene.suffix.lower() in (".yaml", ".yml")
    if shot is not None and sequence is not None:
        fail("give --shot (a .blend render) or --sequence (a storyboard), not both")
    if (shot is None and sequence is None) != (kitsu_task is None):
        fail("--task goes with --shot or --sequence: --shot SQ01/SH010 --task Lighting")
    if shot is not None and (story_file or (scene is None and template is None)
                             or kind is not None):
        fail("--shot publishes a .blend render or an OpenJD job to Kitsu; a storyboard takes "
             "--sequence SQ01 (docs/kitsu.md)")
    if (reel_task is not None or create_shots) and sequence is None:
        fail("--reel-task and --create-shots go with --sequence (a storyboard's reel)")
    if sequence is not None and (template is not None or not story_file):
        fail("--sequence publishes a storyboard's reel and clips; a .blend render takes "
             "--shot SQ01/SH010 (docs/kitsu.md)")
    if kind is not None or options_file is not None:
        from wanhe.cli.kinds import submit_kind

        if kind is None or options_file is None:
            fail("--kind and --options go together: wanhe submit --kind K --options FILE")
        submit_kind(kind, options_file, scene, name=name, priority=priority,
                    depends_on=depends_on or [], server=server, token=token, as_json=as_json)
        return
    if template is not None or (scene is not None and scene.is_dir()):
        from wanhe.cli.openjd import submit_template

        submit_template(scene, template, param or [], priority=priority, name=name,
                        depends_on=depends_on or [], server=server, token=token,
                        as_json=as_json,
                        kitsu={"shot": shot, "task": kitsu_task or ""} if shot else None)
        return
    if scene is None:
        fail("give the .blend to render, an OpenJD bundle folder, or --template FILE")
    if scene.suffix.lower() in (".yaml", ".yml"):
        _submit_story(scene, name, priority, depends_on or [], server, token, as_json,
                      kitsu={"sequence": sequence, "task": kitsu_task,
                             **({"reel_task": reel_task} if reel_task else {}),
                             **({"create_shots": True} if create_shots else {})}
                      if sequence else None)
        return
    try:
        bundle = collect(scene, check_blend_file)
    except (SceneError, PackError) as exc:
        fail(str(exc))
    from wanhe.jobtypes.blender_render import missing_messages

    for message in missing_messages(bundle.missing_local, bundle.missing_caches):
        err.print(f"[yellow]warning:[/] {message}", highlight=False)
    for ref in bundle.absolute_refs:
        err.print(f"[yellow]warning:[/] the scene names {ref!r} by absolute path; the farm "
                  "resolves only relative (//) paths — File › External Data › Make Paths "
                  "Relative", highlight=False)
    try:
        hash_all(bundle)
    except PackError as exc:
        fail(str(exc))
    options = {
        "frames": frames, "tiles": tiles, "overscan": overscan, "samples": samples,
        "split": split,
        "sample_chunks": sample_chunks, "resolution_percentage": resolution_percentage,
        "camera": camera, "denoise": denoise, "threads": threads_per_task, "qc": qc,
        "video": video, "task_timeout_s": task_timeout, "silence_timeout_s": silence_timeout,
        "max_attempts": max_attempts, "device": device.value,
    }
    if export_openjd is not None:
        _export_submission(scene, export_openjd, options)
        return
    kept: dict[str, Any] = {}  # the estimate the job keeps (`wanhe job` shows it)
    if estimate or strict_budget:
        from wanhe.cli.estimate import check_before_submit
        from wanhe.runs.estimate import kept_estimate

        found = check_before_submit(scene, options, server, token, strict=strict_budget)
        kept = {"estimate": kept_estimate(found, "wanhe submit --estimate")}
    elif farm_estimate:
        kept = {"estimate_on_farm": True}
    with client(server, token) as c:
        sent, size = upload(c, bundle)
        job = c.json("POST", "/api/jobs", json={
            "name": name, "main": bundle.main, "files": bundle.hashes, "options": options,
            "priority": priority, "depends_on": depends_on or [], **kept,
            **({"kitsu": {"shot": shot, "task": kitsu_task}} if shot else {}),
        })
    for warning in server_warnings(job.get("warnings", [])):
        err.print(f"[yellow]warning:[/] {warning}", highlight=False)
    if as_json:
        emit({"id": job["id"], "state": job["state"], "files": len(bundle.files),
              "uploaded_files": sent, "uploaded_bytes": size}, True)
        return
    err.print(f"{len(bundle.files)} file(s), {sent} uploaded ({size:,} bytes); job "
              f"{job['id']} {job['state']}: {len(job['frames'])} frame(s)", highlight=False)
    out.print(job["id"])


def _export_submission(scene: Path, dest: Path, options: dict[str, Any]) -> None:
    """`wanhe submit … --export-openjd DIR`: the farm job as a bundle whose frames go to
    DIR/output/frame_#### (as the farm names them), nothing uploaded."""
    from pydantic import ValidationError

    from wanhe.blender.errors import SceneError
    from wanhe.config import Settings
    from wanhe.openjd_export import describe, export_render
    from wanhe.render.spec import RenderOptions

    out = dest.expanduser().absolute() / "output"
    try:
        render_options = RenderOptions(**options, output=str(out / "frame_####"))
        result = export_render(scene, render_options, dest, blender=Settings().blender,
                               threads=render_options.threads, output_dir=str(out))
    except (ValidationError, ValueError, SceneError, FileNotFoundError) as exc:
        fail(str(exc))
    for line in describe(result):
        err.print(line, highlight=False, soft_wrap=True)


def _submit_story(storyboard: Path, name: str | None, priority: int, depends_on: list[int],
                  server: str | None, token: str | None, as_json: bool,
                  kitsu: dict[str, Any] | None = None) -> None:
    from wanhe.cli.story_submit import submit_story
    from wanhe.story.load import StoryError

    try:
        with client(server, token) as c:
            job, files, sent, size = submit_story(c, storyboard, name=name, priority=priority,
                                                  depends_on=depends_on, kitsu=kitsu)
    except StoryError as exc:
        fail(str(exc))
    if as_json:
        emit({"id": job["id"], "state": job["state"], "files": files, "uploaded_files": sent,
              "uploaded_bytes": size}, True)
        return
    err.print(f"{files} file(s), {sent} uploaded ({size:,} bytes); story job {job['id']} "
              f"{job['state']}", highlight=False)
    out.print(job["id"])


def server_warnings(warnings: list[str]) -> list[str]:
    """The farm's warnings minus its missing-file ones: submit printed those already, with
    the paths as they are on this machine (the farm's are relative to the upload)."""
    return [w for w in warnings if not w.startswith(("missing external file", "missing point"))]


# ---------------------------------------------------------------------------------- jobs


def _jobs_table(rows: list[dict[str, Any]]) -> "Table":
    from rich.table import Table

    table = Table("id", "kind", "name", "project", "state", "prio", "progress", "core-h",
                  "message")
    for r in rows:
        table.add_row(str(r["id"]), r.get("kind", ""), r["name"], r["project"], r["state"],
                      str(r["priority"]),
                      f"{100 * r['progress']:.0f}%", f"{r['core_hours']:.3f}",
                      r["message"][:60])
    return table


def jobs(
    state: Annotated[str | None, typer.Option(help="queued/running/paused/done/failed/"
                                              "cancelled")] = None,
    project: Annotated[str | None, typer.Option(help="only this project (admin)")] = None,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """List jobs, newest first."""
    params = {k: v for k, v in {"state": state, "project": project}.items() if v}
    with client(server, token) as c:
        rows = c.json("GET", "/api/jobs", params=params)
    emit(rows, as_json, _jobs_table)


def _job_table(job: dict[str, Any]) -> "Table":
    from rich.table import Table

    table = Table(title=f"job {job['id']}: {job['state']}", show_header=False)
    table.add_column(style="bold")
    table.add_column()
    table.add_row("name", job["name"])
    table.add_row("kind", job.get("kind", ""))
    if job.get("summary"):
        table.add_row("makes", job["summary"])
    table.add_row("project", job["project"])
    table.add_row("priority", str(job["priority"]))
    table.add_row("progress", f"{100 * job['progress']:.0f}% "
                  + ", ".join(f"{k} {v}" for k, v in sorted(job["tasks"].items())))
    table.add_row("core-hours", f"{job['core_hours']:.4f}")
    if job.get("unbilled_core_seconds"):
        table.add_row("not billed", f"{job['unbilled_core_seconds'] / 3600:.4f} core-h of "
                      "outage after lost attempts' last sign of life")
    if job.get("eta_s") is not None:
        table.add_row("eta", f"{job['eta_s']:.0f} s")
    if job.get("estimate"):
        table.add_row("estimate", estimate_line(job["estimate"]))
    if job["message"]:
        table.add_row("message", job["message"])
    done = sum(1 for f in job["frames"] if f["state"] == "done")
    if job["frames"] or "frames" in job.get("panels", ["frames"]):
        table.add_row("frames", f"{done}/{len(job['frames'])} done")
    for failure in job["failures"][-5:]:
        table.add_row("failure", f"{failure['task']} #{failure['attempt']} "
                      f"{failure['outcome']}: {failure['message'][:80]}")
    for f in job.get("deliverables", []):
        table.add_row("deliverable", f"{f['path']} ({f['bytes']:,} bytes)")
    for f in job["outputs"][:10]:
        table.add_row("output", f"{f['path']} ({f['bytes']:,} bytes)")
    if job.get("kitsu"):
        from rich.text import Text

        table.add_row("kitsu", _kitsu_line(job["kitsu"]))
        if job["kitsu"].get("revision_url"):  # folded, not cut short, on a narrow terminal
            table.add_row("kitsu link", Text(job["kitsu"]["revision_url"], overflow="fold"))
    return table


def estimate_line(seen: dict[str, Any]) -> str:
    """A job's kept estimate against its actual cost (`JobDetail.estimate`), in one line:
    the range, the frames done, the ETA from the cost so far."""
    low, high = seen.get("core_hours_range") or (None, None)
    text = str(seen.get("text") or "")
    if low is not None and high is not None:
        text += f" (range {low:.4g}–{high:.4g})"
    text += f"; {seen.get('frames_done', 0)} frame(s) done"
    if seen.get("eta_s") is not None:
        text += f"; ETA from the cost so far {human_duration(float(seen['eta_s']))}"
    if seen.get("made_by"):
        text += f" — estimated by {seen['made_by']}"
    return text


def _kitsu_line(pub: dict[str, Any]) -> str:
    """Where the job publishes in Kitsu, and what came of it (or why not)."""
    where = f"{pub['shot']} {pub['task']}"
    if pub["state"] in ("published", "partial") and "/" not in pub["shot"]:  # a reel
        return f"{pub['message']} (the reel as revision {pub['revision']})"
    if pub["state"] == "published":
        return f"published {pub['file']} to {where} as revision {pub['revision']}"
    return f"{pub['state']} ({where}): {pub['message']}"


def job(
    job_id: int, server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """One job: state, progress, frames, failures, outputs."""
    with client(server, token) as c:
        data = c.json("GET", f"/api/jobs/{job_id}")
    emit(data, as_json, _job_table)


def logs(
    job_id: int,
    task: Annotated[str | None, typer.Option(help="a task key, e.g. 1/render/t000")] = None,
    follow: Annotated[bool, typer.Option("--follow", "-F", help="keep printing")] = False,
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Print a job's (or one task's) log."""
    params: dict[str, Any] = {"follow": int(follow)}
    if task:
        params["task"] = task
    with client(server, token) as c:
        if not follow:
            sys.stdout.write(c.request("GET", f"/api/jobs/{job_id}/logs", params=params).text)
            return
        try:
            with c.http.stream("GET", f"/api/jobs/{job_id}/logs", params=params,
                               timeout=None) as response:
                if response.status_code >= 400:
                    response.read()
                    from wanhe.api.client import describe_error

                    fail(describe_error(response))
                for text in response.iter_text():
                    sys.stdout.write(text)
                    sys.stdout.flush()
        except KeyboardInterrupt:
            return
        except Exception as exc:
            if isinstance(exc, typer.Exit):
                raise
            fail(f"the log stream broke: {exc}")


def _control(verb: str) -> Callable[..., None]:
    def command(
        job_id: int, server: ServerOpt = None, token: TokenOpt = None,
        as_json: JsonOpt = False,
    ) -> None:
        with client(server, token) as c:
            data = c.json("POST", f"/api/jobs/{job_id}/{verb}")
        if as_json:
            emit(data, True)
        else:
            out.print(f"job {data['id']} {data['state']}", highlight=False)

    command.__doc__ = {
        "cancel": "Cancel a job: running tasks stop, nothing new starts.",
        "pause": "Pause a job: running tasks finish, nothing new starts.",
        "resume": "Resume a paused job.",
        "retry": "Run a failed or cancelled job's unfinished tasks again.",
    }[verb]
    return command


def priority(
    job_id: int, value: Annotated[int, typer.Argument(help="0-100")],
    server: ServerOpt = None, token: TokenOpt = None,
) -> None:
    """Change a job's priority (0-100, higher first)."""
    with client(server, token) as c:
        data = c.json("PATCH", f"/api/jobs/{job_id}", json={"priority": value})
    out.print(f"job {data['id']} priority {value}", highlight=False)


def _workers_table(data: dict[str, Any]) -> "Table":
    from rich.table import Table

    table = Table("worker", "node", "cpus", "job", "task", "progress")
    for w in data["workers"]:
        table.add_row(w["name"], w["node"], f"{w['cpus']:g}", str(w.get("job_id") or ""),
                      w.get("task") or "idle", f"{100 * w.get('progress', 0):.0f}%")
    nodes = data["nodes"]
    alive = [n for n in nodes if n.get("alive")]
    table.caption = (f"{len(alive)} node(s) alive, "
                     f"{sum(n.get('cpus', 0) for n in alive):g} CPUs")
    return table


def workers(server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False) -> None:
    """Ray nodes and worker slots, with what each runs."""
    with client(server, token) as c:
        data = c.json("GET", "/api/workers")
    emit(data, as_json, _workers_table)


def _report_table(data: dict[str, Any]) -> "Table":
    from rich.table import Table

    table = Table("project", "job", "kind", "ok core-h", "failed", "cancelled", "lost",
                  "total core-h", "GPU-h", "outage, not billed", title="core-hours",
                  caption="lost attempts are billed up to their last sign of life (heartbeat "
                          "or log line); the outage after it is shown apart, not billed")

    def cells(r: dict[str, Any]) -> list[str]:
        return [_hours(r.get("ok", 0)), _hours(r.get("failed", 0) + r.get("timeout", 0)),
                _hours(r.get("cancelled", 0)), _hours(r.get("lost", 0)), _hours(r["total"]),
                _hours(r.get("gpu_hours", 0.0)), _hours(r.get("lost_unbilled_hours", 0.0))]

    for r in data["projects"]:
        table.add_row(r["project"], "", "", *cells(r), style="bold")
    for r in data["jobs"]:
        table.add_row(r["project"], str(r["job_id"]), "", *cells(r))
    for r in data["kinds"]:
        table.add_row(r["project"], "", r["kind"], *cells(r))
    for r in data.get("models", []):  # AI generation, by model
        table.add_row(r["project"], "", f"gen {r['model']} ({r['device']})", "", "", "", "",
                      _hours(r["core_hours"]), _hours(r["gpu_hours"]))
    return table


def report(
    project: Annotated[str | None, typer.Option(help="one project")] = None,
    since: Annotated[str | None, typer.Option(help="ISO date, e.g. 2025-01-31")] = None,
    server: ServerOpt = None, token: TokenOpt = None, as_json: JsonOpt = False,
) -> None:
    """Core-hours (and GPU-hours) by project, job and task kind; failed, cancelled and lost
    apart."""
    params = {k: v for k, v in {"project": project, "since": since}.items() if v}
    with client(server, token) as c:
        data = c.json("GET", "/api/report", params=params)
    if as_json:
        data.pop("rows", None)
    emit(data, as_json, _report_table)


def register(app: typer.Typer) -> None:
    """Add the service's commands to the `wanhe` app."""
    app.command()(serve)
    app.add_typer(project_app, name="project")
    app.add_typer(token_app, name="token")
    app.command()(submit)
    app.command()(jobs)
    app.command()(job)
    app.command()(logs)
    for verb in ("cancel", "pause", "resume", "retry"):
        app.command(verb)(_control(verb))
    app.command()(priority)
    app.command()(workers)
    app.command()(report)


