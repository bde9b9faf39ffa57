"""On the farm a job names only its own files: beta, with its own token, names alpha's frame
and scene (absolute, by `..` out of its folder, or a file of the service's) as a storyboard
image, a storyboard Blender file, a generation init image and an OpenJD PATH parameter.
Each is refused at submit with one line naming the shot or field and the fix (HTTP 422), and
nothing of alpha's is opened: the file is refused by rule before anything reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.api.conftest import Farm
from tests.api.test_gen_routes import fake_model
from tests.story.conftest import BASE, write

OUTSIDE = "is outside this job's files"


def _alpha(farm: Farm) -> tuple[int, Path]:
    """Alpha's job, with a finished frame in its output folder."""
    alpha = farm.project("alpha")
    job = int(farm.submit(alpha)["id"])  # type: ignore[call-overload]
    out = farm.settings.storage_root / "jobs" / str(job) / "output"
    out.mkdir(parents=True, exist_ok=True)
    from PIL import Image

    Image.new("RGB", (64, 48), (200, 10, 10)).save(out / "frame_0001.png")
    return job, out / "frame_0001.png"


def _names(job: int, frame: Path) -> list[str]:
    """Alpha's frame as beta might name it: absolute, `..` from beta's checkout, `..` from
    beta's job folder once adopted, and a file of the service's own."""
    return [str(frame), f"../../../jobs/{job}/output/frame_0001.png",
            f"../../{job}/output/frame_0001.png", "/root/.ray/auth_token", "/etc/hostname"]


def _story(farm: Farm, token: str, tmp_path: Path, board: dict[str, Any]) -> Any:
    path = write(tmp_path, board)
    files = {"story.yaml": path.read_bytes(), "board.png": (tmp_path / "board.png").read_bytes()}
    hashes = farm.upload(token, files)
    return farm.client.post("/api/jobs", json={"kind": "story", "main": "story.yaml",
                                               "files": hashes, "options": {}},
                            headers=farm.auth(token))


def _refused(r: Any, field: str, *needles: str) -> str:
    assert r.status_code == 422, r.text
    detail = r.json()["detail"][0]
    assert detail["loc"] == ["body", *field.split(".")], detail
    msg: str = detail["msg"]
    assert "\n" not in msg and "cannot identify" not in msg and "Traceback" not in msg
    for needle in needles:
        assert needle in msg, msg
    return msg


def test_storyboard_images_and_scenes_outside_the_job_are_refused(
        farm: Farm, tmp_path: Path) -> None:
    job, frame = _alpha(farm)
    beta = farm.project("beta")
    for i, name in enumerate(_names(job, frame)):
        board = json.loads(json.dumps(BASE))
        board["scenes"][0]["shots"][0]["image"]["path"] = name
        msg = _refused(_story(farm, beta, tmp_path / f"img{i}", board), "main",
                       "shot 's1' image", OUTSIDE, "add it to the storyboard's folder")
        assert str(farm.settings.storage_root) not in msg or name.startswith("/")
    for i, name in enumerate([f"../../../jobs/{job}/input/shot/scene.blend",
                              str(frame.parent.parent / "input" / "shot" / "scene.blend")]):
        board = json.loads(json.dumps(BASE))
        shot = board["scenes"][0]["shots"][0]
        shot.pop("image")
        shot["blender"] = {"file": name, "frames": "1-2"}
        _refused(_story(farm, beta, tmp_path / f"blend{i}", board), "main",
                 "shot 's1' blender.file", OUTSIDE)
    assert farm.client.get("/api/jobs", headers=farm.auth(beta)).json() == []


def test_a_nul_in_a_storyboard_line_is_refused_at_submit(farm: Farm, tmp_path: Path) -> None:
    beta = farm.project("beta")
    board = json.loads(json.dumps(BASE))
    board["scenes"][0]["shots"][0]["lines"][0]["text"] = "Hi\x00 there."
    _refused(_story(farm, beta, tmp_path, board), "main", "control character '\\x00'")


def test_gen_init_images_outside_the_job_are_refused(farm: Farm, tmp_path: Path) -> None:
    job, frame = _alpha(farm)
    beta = farm.project("beta")
    r = farm.client.post("/api/models", json={"name": "sd", "path": str(fake_model(
        tmp_path / "sd"))}, headers=farm.auth(farm.admin))
    assert r.status_code == 201, r.text
    own = farm.upload(beta, {"still.png": frame.read_bytes()})  # the same bytes, its own upload
    for name in [f"../../../jobs/{job}/output/frame_0001.png",
                 f"../../{job}/output/frame_0001.png", "/etc/hostname"]:
        r = farm.client.post("/api/jobs", json={"kind": "gen", "files": own, "options": {
            "shots": [{"model": "sd", "prompt": "fox", "image": name, "strength": 0.5}]}},
            headers=farm.auth(beta))
        _refused(r, "options.shots.0.image", "shot", OUTSIDE)
    r = farm.client.post("/api/jobs", json={"kind": "gen", "files": own, "options": {
        "shots": [{"model": "sd", "prompt": "fox", "image": "still.png", "strength": 0.5}]}},
        headers=farm.auth(beta))
    assert r.status_code == 201, r.text  # its own upload is fine
    made = farm.client.get(f"/api/jobs/{r.json()['id']}", headers=farm.auth(beta)).json()
    assert made["state"] in ("queued", "running")


TEMPLATE: dict[str, Any] = {
    "specificationVersion": "jobtemplate-2023-09", "name": "steal",
    "parameterDefinitions": [{"name": "Src", "type": "PATH", "objectType": "FILE",
                              "dataFlow": "IN"}],
    "steps": [{"name": "copy", "script": {"actions": {"onRun": {
        "command": "cp", "args": ["{{Param.Src}}", "/tmp/x"]}}}}],
}


def _openjd(farm: Farm, token: str, template: dict[str, Any], **options: Any) -> Any:
    files = farm.upload(token, {"job.yaml": json.dumps(template).encode()})
    return farm.client.post("/api/jobs", json={
        "kind": "openjd", "main": "job.yaml", "files": files,
        "options": {"template_dir": "/home/beta/bundle", **options}}, headers=farm.auth(token))


def test_openjd_paths_outside_the_job_are_refused(farm: Farm) -> None:
    job, frame = _alpha(farm)
    beta = farm.project("beta")
    for value in (str(frame), "/root/.ray/auth_token",
                  f"../../../srv/wanhe/jobs/{job}/output/frame_0001.png"):
        r = _openjd(farm, beta, TEMPLATE, parameters={"Src": value})
        _refused(r, "options.parameters", "parameter 'Src' path", OUTSIDE)
    r = _openjd(farm, beta, TEMPLATE, parameters={"Src": "/home/beta/bundle/in.txt"})
    assert r.status_code == 201, r.text  # inside its own bundle: mapped to its own folder
    r = _openjd(farm, beta, TEMPLATE, parameters={"Src": "/data/x"},
                inputs={"/data/x": f"../../{job}/output"})
    _refused(r, "options.inputs", OUTSIDE)
    embedded = json.loads(json.dumps(TEMPLATE))
    del embedded["parameterDefinitions"]
    embedded["steps"][0]["script"] = {
        "embeddedFiles": [{"name": "f", "type": "TEXT", "filename": "..", "data": "x"}],
        "actions": {"onRun": {"command": "{{Task.File.f}}"}}}
    _refused(_openjd(farm, beta, embedded), "main", "embedded file name '..'")
