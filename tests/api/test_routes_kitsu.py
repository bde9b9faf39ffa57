"""Linking a project to Kitsu through the API, the refusals that need no Kitsu server: an
address nothing answers at, a token that may not link, no credentials, and `--shot` on a
project that is not linked. (Linking and publishing for real: tests/publish/test_kitsu.py.)"""

from __future__ import annotations

import socket

from tests.api.conftest import Farm


def _closed_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
    return port


def _body(**extra: str) -> dict[str, str]:
    return {"url": f"http://127.0.0.1:{_closed_port()}/api", "production": "Lion Boy",
            "email": "bot@studio", "password": "not-shown-anywhere", **extra}


def test_an_unreachable_kitsu_is_one_line_and_nothing_is_linked(farm: Farm) -> None:
    token = farm.project("lionboy")  # a project's first token manages it
    r = farm.client.put("/api/projects/lionboy/kitsu", json=_body(), headers=farm.auth(token))
    assert r.status_code == 422, r.text
    message = r.json()["detail"][0]["msg"]
    assert "cannot be reached" in message and "\n" not in message
    assert "not-shown-anywhere" not in r.text
    status = farm.client.get("/api/projects/lionboy/kitsu", headers=farm.auth(token))
    assert status.status_code == 404 and "wanhe kitsu link" in status.json()["detail"]


def test_only_managing_tokens_link_and_credentials_are_required(farm: Farm) -> None:
    manage = farm.project("lionboy")
    submit = farm.client.post("/api/tokens", json={"name": "ci"}, headers=farm.auth(manage))
    assert submit.status_code == 201, submit.text
    r = farm.client.put("/api/projects/lionboy/kitsu", json=_body(),
                        headers=farm.auth(submit.json()["token"]))
    assert r.status_code == 403
    r = farm.client.put("/api/projects/lionboy/kitsu", headers=farm.auth(manage),
                        json={"url": "http://127.0.0.1:1/api", "production": "Lion Boy"})
    assert r.status_code == 422 and "email and password, or a token" in r.text
    other = farm.project("other")
    r = farm.client.put("/api/projects/lionboy/kitsu", json=_body(), headers=farm.auth(other))
    assert r.status_code == 404  # another project's link is not yours to see or change


def test_a_shot_on_an_unlinked_project_is_refused_at_submit(farm: Farm) -> None:
    token = farm.project("lionboy")
    files = farm.upload(token, {"scene.blend": b"BLENDER-v500" + b"\0" * 200 + b"ENDB"})
    body = {"main": "scene.blend", "files": files, "options": {"frames": "1"},
            "kitsu": {"shot": "SQ01/SH010", "task": "Lighting"}}
    r = farm.client.post("/api/jobs", json=body, headers=farm.auth(token))
    assert r.status_code == 422 and "wanhe kitsu link" in r.text
    body["kitsu"] = {"shot": "SH010", "task": "Lighting"}
    r = farm.client.post("/api/jobs", json=body, headers=farm.auth(token))
    assert r.status_code == 422 and "shot" in r.text
    body["kitsu"] = {"sequence": "SQ01", "task": "Lighting"}  # a render goes to a shot
    r = farm.client.post("/api/jobs", json=body, headers=farm.auth(token))
    assert r.status_code == 422 and "a story reel publishes to a sequence" in r.text
    body["kitsu"] = {"shot": "SQ01/SH010", "sequence": "SQ01", "task": "Lighting"}
    r = farm.client.post("/api/jobs", json=body, headers=farm.auth(token))
    assert r.status_code == 422 and "one of them" in r.text
    assert farm.client.get("/api/jobs", headers=farm.auth(token)).json() == []
