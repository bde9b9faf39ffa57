"""Talking to a Kitsu (Zou) server through gazu, its Python client: log in, find a
production, a shot's task, and publish a preview to it as a new revision with a comment and a
status change.

Every call takes its own `KitsuClient` (gazu's module-level default is shared by the whole
process; two projects' publications must not log each other out). gazu's errors become
`KitsuError`, one line naming the problem and the fix, with `retry` saying whether trying again
later may help (the server down or erroring) or not (no such shot or task type).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import gazu
import requests
from gazu import exception as gazu_errors
from gazu.client import KitsuClient

log = logging.getLogger(__name__)
_T = TypeVar("_T")
SHOT_PATTERN = re.compile(r"^(?P<sequence>[^/\s][^/]{0,99})/(?P<shot>[^/\s][^/]{0,99})$")
HTTP_TIMEOUT_S = 60.0


class KitsuError(RuntimeError):
    """A Kitsu call that did not work: `retry` when trying again later may."""

    def __init__(self, message: str, *, retry: bool) -> None:
        super().__init__(message)
        self.retry = retry


@dataclass(frozen=True, slots=True)
class Published:
    comment_id: str
    preview_id: str
    revision: int
    task_id: str  # the task the revision went to (the link to it: `task_page`)


def split_shot(shot: str) -> tuple[str, str]:
    """`SQ01/SH010` → ("SQ01", "SH010"); ValueError naming the form otherwise."""
    found = SHOT_PATTERN.match(shot.strip())
    if found is None:
        raise ValueError(f"shot {shot[:120]!r} is not SEQUENCE/SHOT (e.g. SQ01/SH010)")
    return found["sequence"].strip(), found["shot"].strip()


def api_url(url: str) -> str:
    """Kitsu's API address as gazu takes it: the URL given, without a trailing slash
    (`https://kitsu.studio/api` behind Kitsu's usual nginx, the bare server otherwise)."""
    return url.strip().rstrip("/")


def web_app(url: str) -> str:
    """Kitsu's web app for an API address: the link keeps the API's (…/api), the app is
    above it."""
    return api_url(url).removesuffix("/api")


def production_page(url: str, production_id: str) -> str:
    """The production's shot list in Kitsu's web app."""
    return f"{web_app(url)}/productions/{quote(production_id, safe='')}/shots"


def task_page(url: str, production_id: str, task_id: str, preview_id: str | None = None, *,
              sequence: bool = False) -> str:
    """A task's page in Kitsu's web app, opened on one revision's preview when `preview_id`
    is given (Kitsu's routes `/productions/P/{shots|sequences}/tasks/T[/previews/V]`)."""
    kind = "sequences" if sequence else "shots"
    page = (f"{web_app(url)}/productions/{quote(production_id, safe='')}/{kind}/tasks/"
            f"{quote(task_id, safe='')}")
    return page + (f"/previews/{quote(preview_id, safe='')}" if preview_id else "")


@contextmanager
def _translated(url: str) -> Iterator[None]:
    """gazu's and requests' errors as one-line KitsuErrors."""
    try:
        yield
    except KitsuError:
        raise
    except (requests.ConnectionError, requests.Timeout) as exc:
        raise KitsuError(f"Kitsu at {url} cannot be reached ({type(exc).__name__}) — check "
                         "the URL and that the server runs", retry=True) from None
    except (gazu_errors.AuthFailedException, gazu_errors.NotAuthenticatedException):
        raise KitsuError(f"Kitsu at {url} refused the credentials — check the email and "
                         "password (or the token) and link again: wanhe kitsu link",
                         retry=False) from None
    except gazu_errors.NotAllowedException as exc:
        raise KitsuError(f"Kitsu at {url} does not allow that to this user ({exc}) — give it "
                         "a role that may publish (supervisor or manager)", retry=False) from None
    except gazu_errors.ServerErrorException as exc:
        raise KitsuError(f"Kitsu at {url} failed ({exc}); will retry", retry=True) from None
    except gazu_errors.RouteNotFoundException as exc:
        raise KitsuError(f"Kitsu at {url} has no {exc} — is this a Kitsu API URL (ending in "
                         "/api)?", retry=False) from None
    except (gazu_errors.ParameterException, gazu_errors.ValidationException) as exc:
        raise KitsuError(f"Kitsu at {url} refused the request: {exc}", retry=False) from None
    except requests.RequestException as exc:
        raise KitsuError(f"Kitsu at {url}: {type(exc).__name__}: {exc}", retry=True) from None
    except (gazu_errors.HostException, ValueError, KeyError, TypeError) as exc:
        # gazu on a server that is not Kitsu (an HTML page, an odd JSON): say so in one line
        log.warning("unexpected answer from %s", url, exc_info=True)
        raise KitsuError(f"{url} did not answer as a Kitsu API does ({type(exc).__name__}: "
                         f"{str(exc)[:200]}) — is this Kitsu's API URL (often ending in /api)?",
                         retry=True) from None


def _call(url: str, work: Callable[[], _T]) -> _T:
    with _translated(url):
        return work()


def connect(url: str, credentials: dict[str, str]) -> KitsuClient:
    """A logged-in client: `credentials` is {"email", "password"} or {"token"}."""
    api = api_url(url)
    client = gazu.client.create_client(api)
    client.session.request = _with_timeout(client.session.request)  # type: ignore[method-assign]
    with _translated(api):
        if credentials.get("token"):
            gazu.set_token(credentials["token"], client=client)  # type: ignore[no-untyped-call]
            gazu.client.get("auth/authenticated", client=client)  # is the token good?
        else:
            gazu.log_in(  # type: ignore[no-untyped-call]
                credentials.get("email", ""), credentials.get("password", ""), client=client)
    return client


def _with_timeout(request: Callable[..., Any]) -> Callable[..., Any]:
    """requests waits forever by default: a hung Kitsu must not hang the publisher."""
    def timed(*args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("timeout", HTTP_TIMEOUT_S)
        return request(*args, **kwargs)
    return timed


def find_production(client: KitsuClient, name: str) -> dict[str, Any]:
    """The production called `name`; KitsuError listing the ones this user sees otherwise."""
    url = client.host
    found = _call(url, lambda: gazu.project.get_project_by_name(name, client=client))
    if found:
        return dict(found)
    names = _call(url, lambda: [p["name"] for p in gazu.project.all_projects(client=client)])
    shown = ", ".join(repr(n) for n in names[:10]) or "none"
    raise KitsuError(f"Kitsu at {url} has no production {name!r} this user can see "
                     f"(it sees: {shown}) — check --production", retry=False)


def shot_task(client: KitsuClient, production_id: str, shot: str,
              task_type: str) -> dict[str, Any]:
    """The `task_type` task of `shot` (SEQUENCE/SHOT) in the production."""
    url = client.host
    sequence_name, shot_name = split_shot(shot)
    sequence = _call(url, lambda: gazu.shot.get_sequence_by_name(
        production_id, sequence_name, client=client))
    if not sequence:
        raise KitsuError(f"the production has no sequence {sequence_name!r} — create it in "
                         "Kitsu or fix --shot", retry=False)
    found = _call(url, lambda: gazu.shot.get_shot_by_name(sequence, shot_name, client=client))
    if not found:
        raise KitsuError(f"sequence {sequence_name!r} has no shot {shot_name!r} — create it in "
                         "Kitsu or fix --shot", retry=False)
    kind = _task_type(client, task_type, "Shot")
    task = _call(url, lambda: gazu.task.get_task_by_entity(found, kind, client=client))
    if not task:
        raise KitsuError(f"shot {shot} has no {task_type!r} task — add it in Kitsu",
                         retry=False)
    return dict(task)


def create_shot_task(client: KitsuClient, production_id: str, sequence_name: str,
                     shot_name: str, task_type: str, *, frame_in: int | None = None,
                     frame_out: int | None = None,
                     nb_frames: int | None = None) -> dict[str, Any]:
    """The `task_type` task of SEQUENCE/SHOT, the shot (with its frames) and the task made
    first where Kitsu lacks them; a shot that exists is left as it is. Both calls find what
    exists by name, so a retry creates nothing twice."""
    url = client.host
    sequence = _sequence(client, production_id, sequence_name,
                         "create it in Kitsu (wanhe creates shots, not sequences)")
    kind = _task_type(client, task_type, "Shot")
    shot = _call(url, lambda: gazu.shot.new_shot(
        production_id, sequence, shot_name, nb_frames=nb_frames, frame_in=frame_in,
        frame_out=frame_out, client=client))
    return dict(_call(url, lambda: gazu.task.new_task(shot, kind, client=client)))


def _sequence(client: KitsuClient, production_id: str, name: str, fix: str) -> Any:
    """The production's sequence `name`; refused (not retried) with `fix` when it lacks it."""
    sequence = _call(client.host, lambda: gazu.shot.get_sequence_by_name(
        production_id, name, client=client))
    if not sequence:
        raise KitsuError(f"the production has no sequence {name!r} — {fix}", retry=False)
    return sequence


def _task_type(client: KitsuClient, name: str, for_entity: str) -> dict[str, Any]:
    """The task type `name` for shots or sequences (Kitsu keeps one of each per name)."""
    kind = _call(client.host, lambda: gazu.task.get_task_type_by_name(
        name, for_entity=for_entity, client=client))
    if not kind:
        raise KitsuError(f"Kitsu has no {for_entity.lower()} task type {name!r} — fix --task",
                         retry=False)
    return dict(kind)


def sequence_task(client: KitsuClient, production_id: str, sequence_name: str,
                  task_type: str) -> dict[str, Any]:
    """The `task_type` task of the sequence itself (where a story reel goes)."""
    url = client.host
    sequence = _sequence(client, production_id, sequence_name,
                         "create it in Kitsu or fix --sequence")
    kind = _task_type(client, task_type, "Sequence")
    task = _call(url, lambda: gazu.task.get_task_by_entity(sequence, kind, client=client))
    if not task:
        raise KitsuError(f"sequence {sequence_name} has no {task_type!r} task — add it in "
                         "Kitsu", retry=False)
    return dict(task)


def publish_preview(client: KitsuClient, task: dict[str, Any], *, marker: str, text: str,
                    media: Path, status: str = "wfa") -> Published:
    """`media` as a new revision of `task`, under a comment `text` (which must contain
    `marker`) that sets the task's status (a short name: wfa, wip, done...).

    Lands once however often it is called: a comment carrying `marker` that an earlier try
    made is reused, and when it has its preview already nothing more is sent."""
    url = client.host
    status_row = _call(url, lambda: gazu.task.get_task_status_by_short_name(status,
                                                                            client=client))
    if not status_row:
        raise KitsuError(f"Kitsu has no task status {status!r}", retry=False)
    comments = _call(url, lambda: gazu.task.all_comments_for_task(task, client=client))
    comment = next((c for c in comments if marker in (c.get("text") or "")), None)
    if comment is None:
        comment = _call(url, lambda: gazu.task.add_comment(task, status_row, text,
                                                           client=client))
    elif comment.get("previews"):
        preview = comment["previews"][0]
        preview_id = preview["id"] if isinstance(preview, dict) else str(preview)
        return Published(str(comment["id"]), preview_id, _revision(client, preview_id),
                         str(task["id"]))
    preview = _call(url, lambda: gazu.task.add_preview(
        task, comment, preview_file_path=str(media), no_job=True, client=client))
    return Published(str(comment["id"]), str(preview["id"]), int(preview.get("revision") or 0),
                     str(task["id"]))


def _revision(client: KitsuClient, preview_id: str) -> int:
    found = _call(client.host, lambda: gazu.files.get_preview_file(preview_id, client=client))
    return int((found or {}).get("revision") or 0)


def sequence_shots(client: KitsuClient, production: dict[str, Any],
                   sequence_name: str) -> list[dict[str, Any]]:
    """The sequence's shots in order: name, description and frame count."""
    url = client.host
    sequence = _call(url, lambda: gazu.shot.get_sequence_by_name(
        production["id"], sequence_name, client=client))
    if not sequence:
        names = _call(url, lambda: [s["name"] for s in gazu.shot.all_sequences_for_project(
            production["id"], client=client)])
        raise KitsuError(f"production {production['name']!r} has no sequence "
                         f"{sequence_name!r} (it has: {', '.join(names[:20]) or 'none'})",
                         retry=False)
    shots = _call(url, lambda: gazu.shot.all_shots_for_sequence(sequence, client=client))
    return [{"name": s["name"], "description": s.get("description") or "",
             "nb_frames": s.get("nb_frames") or 0}
            for s in sorted(shots, key=lambda s: str(s["name"]))]


def production_fps(production: dict[str, Any]) -> float:
    """The production's frame rate (Kitsu keeps it as text), 24 when it has none."""
    try:
        fps = float(production.get("fps") or 24)
    except ValueError:
        return 24.0
    return fps if 0 < fps <= 120 else 24.0
