"""Publishing to a real Kitsu: a Zou server this session starts (tests/publish/_zou.py), a real
`wanhe serve` rendering a tiny scene, and gazu reading back what landed.

Slow: Zou's first start (init-db, init-data, gunicorn) takes a minute or two on a loaded
machine, and each job renders real frames; the module shares one Zou, one farm and one
production between its tests.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import gazu
import pytest
from gazu.client import KitsuClient
from typer.testing import CliRunner

from tests.api._service import ServiceProc, running_farm, wait_for
from tests.conftest import build_scene
from tests.publish._zou import ADMIN_EMAIL, ADMIN_PASSWORD, ZouServer
from wanhe.cli import app as wanhe_app
from wanhe.publish import kitsu
from wanhe.publish.worker import marker
from wanhe.store.rows import SCOPE_MANAGE
from wanhe.store.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]  # the first run installs Zou

PRODUCTION = "Lion Boy"
SHOTS = ("SH010", "SH020", "SH030")


@pytest.fixture(scope="module")
def admin(zou: ZouServer) -> KitsuClient:
    client = gazu.client.create_client(zou.url)
    gazu.log_in(ADMIN_EMAIL, ADMIN_PASSWORD, client=client)  # type: ignore[no-untyped-call]
    return client


@pytest.fixture(scope="module")
def production(admin: KitsuClient) -> dict[str, Any]:
    """A production with sequence SQ01, its shots, and a Lighting task on each."""
    project = gazu.project.new_project(PRODUCTION, client=admin)
    lighting = gazu.task.new_task_type("Lighting", for_entity="Shot", client=admin)
    gazu.project.add_task_type(project, lighting, 1, client=admin)
    sequence = gazu.shot.new_sequence(project, "SQ01", client=admin)
    tasks = {}
    for name in SHOTS:
        shot = gazu.shot.new_shot(project, sequence, name, nb_frames=48, client=admin,
                                  description="Leo wakes up" if name == "SH010" else None)
        tasks[name] = gazu.task.new_task(shot, lighting, client=admin)
    return {"project": project, "tasks": tasks}


@pytest.fixture(scope="module")
def farm() -> Iterator[ServiceProc]:
    with running_farm("wanhe-kitsu-", workers=1, num_cpus=2) as svc:
        yield svc


@pytest.fixture(scope="module")
def token(farm: ServiceProc) -> str:
    store = Store(farm.db_url)
    try:
        project = store.create_project("lionboy")
        return store.create_token(project.id, "lead", scope=SCOPE_MANAGE)
    finally:
        store.dispose()


def _wanhe(farm: ServiceProc, token: str, *args: str, **env: str) -> Any:
    return CliRunner().invoke(wanhe_app, list(args), env={
        "WANHE_SERVER": farm.url, "WANHE_TOKEN": token, "WANHE_KITSU_TOKEN": "", **env})


def _link(farm: ServiceProc, token: str, zou: ZouServer, password: str) -> Any:
    return _wanhe(farm, token, "kitsu", "link", "lionboy", "--url", zou.url,
                  "--production", PRODUCTION, WANHE_KITSU_EMAIL=ADMIN_EMAIL,
                  WANHE_KITSU_PASSWORD=password)


def test_wrong_credentials_are_one_line_at_link_time(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any]) -> None:
    result = _link(farm, token, zou, "not-the-password")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "refused the credentials" in lines[0], result.output
    assert "not-the-password" not in result.output
    gone = _wanhe(farm, token, "kitsu", "status", "lionboy")
    assert gone.exit_code == 2 and "not linked" in gone.output


def test_link_keeps_the_credentials_on_the_farm_encrypted(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any]) -> None:
    result = _link(farm, token, zou, ADMIN_PASSWORD)
    assert result.exit_code == 0, result.output
    status = _wanhe(farm, token, "kitsu", "status", "--json")  # the token's project
    assert status.exit_code == 0, status.output
    data = json.loads(status.stdout)
    assert data["production"] == PRODUCTION and data["login"] == ADMIN_EMAIL
    assert ADMIN_PASSWORD not in status.stdout
    # neither the database nor the service's log holds the password in clear
    db = Path(farm.db_url.split("///", 1)[1])
    assert ADMIN_PASSWORD.encode() not in db.read_bytes()
    assert ADMIN_PASSWORD not in farm.log.read_text(errors="replace")
    key = farm.home / "kitsu.key"
    assert key.is_file() and (key.stat().st_mode & 0o077) == 0


def _submit(farm: ServiceProc, token: str, scene: Path, shot: str) -> int:
    result = _wanhe(farm, token, "submit", str(scene), "--frames", "1-2", "--no-denoise",
                    "--shot", f"SQ01/{shot}", "--task", "Lighting", "--json")
    assert result.exit_code == 0, result.output
    job_id: int = json.loads(result.stdout)["id"]
    return job_id


def _publication(farm: ServiceProc, token: str, job_id: int) -> dict[str, Any]:
    with farm.client(token) as http:
        found: dict[str, Any] = http.get(f"/api/jobs/{job_id}").json()["kitsu"]
    return found


def _wait_published(farm: ServiceProc, token: str, job_id: int,
                    state: str = "published") -> dict[str, Any]:
    pub: dict[str, Any] = wait_for(
        lambda: (p := _publication(farm, token, job_id))["state"] in (
            "published", "partial", "failed") and p, 300, f"job {job_id} to publish")
    assert pub["state"] == state, pub
    return pub


def _ours(admin: KitsuClient, task: dict[str, Any], job_id: int) -> list[dict[str, Any]]:
    return [c for c in gazu.task.all_comments_for_task(task, client=admin)
            if marker(job_id) in (c.get("text") or "")]


def test_a_finished_render_lands_on_its_shot_task(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any],
        admin: KitsuClient, scene_dir: Path) -> None:
    scene = build_scene(scene_dir / "tiny.blend", "tiny")
    if _publication_link_missing(farm, token):
        assert _link(farm, token, zou, ADMIN_PASSWORD).exit_code == 0
    job_id = _submit(farm, token, scene, "SH010")
    pub = _wait_published(farm, token, job_id)
    assert pub["revision"] == 1 and pub["file"] == "frame_0002.png"
    # the dashboard's Kitsu cell links to the production's shots in Kitsu's web app
    app = zou.url.rstrip("/").removesuffix("/api")
    assert pub["production_url"] == f"{app}/productions/{production['project']['id']}/shots"
    task = gazu.task.get_task(production["tasks"]["SH010"]["id"], client=admin)
    assert gazu.task.get_task_status(task["task_status_id"], client=admin)["short_name"] == "wfa"
    comments = _ours(admin, task, job_id)
    assert len(comments) == 1
    text = comments[0]["text"]
    assert "frames 1-2 (2)" in text and "core-hours" in text and "GPU-hours" in text
    assert "submitted by lead" in text and f"/#/jobs/{job_id}" in text
    previews = gazu.task.all_previews_for_task(task, client=admin)
    assert [p["revision"] for p in previews] == [1]
    assert previews[0]["extension"] == "png"
    # ...and to the revision itself: the task's page in Kitsu, opened on its preview
    assert pub["task_id"] == task["id"] and pub["preview_id"] == previews[0]["id"]
    revision_url = (f"{app}/productions/{production['project']['id']}/shots/tasks/"
                    f"{task['id']}/previews/{previews[0]['id']}")
    assert pub["revision_url"] == revision_url
    shown = _wanhe(farm, token, "job", str(job_id))
    assert "published frame_0002.png to SQ01/SH010 Lighting as revision 1" in \
        " ".join(shown.output.split())
    assert revision_url in _unwrapped(shown.output)


def _unwrapped(table: str) -> str:
    """`wanhe job`'s table without its borders and line breaks: a long URL wraps."""
    return re.sub(r"[\s│]", "", table)


def _publication_link_missing(farm: ServiceProc, token: str) -> bool:
    with farm.client(token) as http:
        return http.get("/api/projects/lionboy/kitsu").status_code == 404


def test_kitsu_down_at_publish_time_is_retried_and_lands_once(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any],
        admin: KitsuClient, scene_dir: Path) -> None:
    scene = build_scene(scene_dir / "tiny.blend", "tiny")
    if _publication_link_missing(farm, token):
        assert _link(farm, token, zou, ADMIN_PASSWORD).exit_code == 0
    zou.stop_api()
    try:
        job_id = _submit(farm, token, scene, "SH020")
        failed_try = wait_for(
            lambda: (p := _publication(farm, token, job_id))["tries"] >= 1 and p, 300,
            "a publish try while Kitsu is down")
        assert failed_try["state"] == "waiting" and "cannot be reached" in failed_try["message"]
    finally:
        zou.start_api()
    pub = _wait_published(farm, token, job_id)
    assert pub["tries"] >= 2
    task = production["tasks"]["SH020"]
    assert len(_ours(admin, task, job_id)) == 1
    assert [p["revision"] for p in gazu.task.all_previews_for_task(task, client=admin)] == [1]


def test_a_try_cut_off_after_its_comment_reuses_it(
        zou: ZouServer, production: dict[str, Any], admin: KitsuClient, tmp_path: Path) -> None:
    """Zou killed between the comment and the preview upload: the next try finds the comment
    by its marker and adds only the preview, so the shot gets one comment and one revision."""
    from PIL import Image

    image = tmp_path / "frame.png"
    Image.new("RGB", (64, 36), (200, 120, 40)).save(image)
    task = production["tasks"]["SH030"]
    client = kitsu.connect(zou.url, {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    wfa = gazu.task.get_task_status_by_short_name("wfa", client=admin)
    gazu.task.add_comment(task, wfa, f"first try {marker(999)}", client=admin)  # then cut off
    for _ in range(2):  # the retry, and one more for good measure
        published = kitsu.publish_preview(client, task, marker=marker(999),
                                          text=f"again {marker(999)}", media=image)
        assert published.revision == 1
    assert len(_ours(admin, task, 999)) == 1
    assert [p["revision"] for p in gazu.task.all_previews_for_task(task, client=admin)] == [1]


def test_a_shot_kitsu_does_not_have_fails_with_the_reason(
        zou: ZouServer, production: dict[str, Any]) -> None:
    client = kitsu.connect(zou.url, {"email": ADMIN_EMAIL, "password": ADMIN_PASSWORD})
    with pytest.raises(kitsu.KitsuError, match="has no shot 'SH999'") as caught:
        kitsu.shot_task(client, production["project"]["id"], "SQ01/SH999", "Lighting")
    assert not caught.value.retry


def test_story_from_kitsu_writes_a_storyboard_of_the_sequence(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any],
        tmp_path: Path) -> None:
    import yaml

    from wanhe.story.schema import Storyboard

    if _publication_link_missing(farm, token):
        assert _link(farm, token, zou, ADMIN_PASSWORD).exit_code == 0
    target = tmp_path / "sq01.yaml"
    result = _wanhe(farm, token, "story", "from-kitsu", PRODUCTION, "SQ01", "-o", str(target))
    assert result.exit_code == 0, result.output
    board = Storyboard.model_validate(yaml.safe_load(target.read_text()))
    fps = board.film.fps
    assert [s.id for s in board.shots] == list(SHOTS)
    assert [s.duration for s in board.shots] == [round(48 / fps, 3)] * len(SHOTS)
    assert board.shots[0].lines[0].text == "Leo wakes up"
    assert board.shots[1].lines[0].text == "(write SH020's line)"
    wrong = _wanhe(farm, token, "story", "from-kitsu", "Tiger Girl", "SQ01", "-o",
                   str(tmp_path / "x.yaml"))
    assert wrong.exit_code == 2 and "linked to 'Lion Boy'" in wrong.output
    missing = _wanhe(farm, token, "story", "from-kitsu", PRODUCTION, "SQ99", "-o",
                     str(tmp_path / "y.yaml"))
    assert missing.exit_code == 2 and "no sequence 'SQ99'" in missing.output
    assert not (tmp_path / "x.yaml").exists() and not (tmp_path / "y.yaml").exists()


def test_a_story_reel_publishes_its_clips_to_their_shots_and_itself_to_the_sequence(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any],
        admin: KitsuClient, tmp_path: Path) -> None:
    import copy

    from tests.story.conftest import BASE, write

    board = copy.deepcopy(BASE)  # espeak voices, image shots: a reel in seconds
    board["scenes"][0]["shots"].append({"id": "s2", "duration": 1.0,
                                        "image": {"path": "board.png"}})
    board["scenes"][0]["shots"].append({"id": "s3", "duration": 1.0,
                                        "image": {"path": "board.png"}})
    story = write(tmp_path / "film", board)
    project = production["project"]
    animatic = gazu.task.new_task_type("Animatic", for_entity="Shot", client=admin)
    gazu.project.add_task_type(project, animatic, 2, client=admin)
    reel_type = gazu.task.new_task_type("Reel", for_entity="Sequence", client=admin)
    gazu.project.add_task_type(project, reel_type, 3, client=admin)
    sequence = gazu.shot.new_sequence(project, "SQ02", client=admin)
    tasks = {"SQ02": gazu.task.new_task(sequence, reel_type, client=admin)}
    for name in ("s1", "s2"):  # s3 is not in Kitsu: left out, and said so
        shot = gazu.shot.new_shot(project, sequence, name, nb_frames=12, client=admin)
        tasks[name] = gazu.task.new_task(shot, animatic, client=admin)
    if _publication_link_missing(farm, token):
        assert _link(farm, token, zou, ADMIN_PASSWORD).exit_code == 0
    result = _wanhe(farm, token, "submit", str(story), "--sequence", "SQ02", "--task",
                    "Animatic", "--reel-task", "Reel", "--json")
    assert result.exit_code == 0, result.output
    job_id = json.loads(result.stdout)["id"]
    pub = _wait_published(farm, token, job_id, "partial")  # s3 left out, and said so
    assert pub["file"] == "reel.mp4"
    assert ("2 clip(s) to their shots; not in Kitsu, left out: s3 (--create-shots creates "
            "them)") in pub["message"]
    assert gazu.shot.get_shot_by_name(sequence, "s3", client=admin) is None  # never created
    for name, task in tasks.items():
        previews = gazu.task.all_previews_for_task(task, client=admin)
        assert [(p["revision"], p["extension"]) for p in previews] == [(1, "mp4")], name
        assert len(_ours(admin, task, job_id)) == 1
    shown = _wanhe(farm, token, "job", str(job_id)).output
    assert "published reel.mp4 to SQ02, 2 clip(s) to their shots" in " ".join(shown.split())
    # the link goes to the reel's revision, on the sequence's own task
    app = zou.url.rstrip("/").removesuffix("/api")
    reel = gazu.task.all_previews_for_task(tasks["SQ02"], client=admin)[0]
    assert pub["revision_url"] == (f"{app}/productions/{project['id']}/sequences/tasks/"
                                   f"{tasks['SQ02']['id']}/previews/{reel['id']}")
    assert pub["revision_url"] in _unwrapped(shown)


def test_a_gen_pick_lands_on_the_shots_storyboard_task_with_its_recipe(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any],
        admin: KitsuClient, tiny_sd: Path) -> None:
    """A generation job sent with --shot publishes nothing when it finishes: it waits for a
    person's pick, and the picked candidate lands on the shot's Storyboard task (the default
    task type, which `zou init-data` makes) with the recipe that made it."""
    store = Store(farm.db_url)
    try:
        admin_token = store.create_token(None, "admin")
    finally:
        store.dispose()
    with farm.client(admin_token) as http:
        assert http.post("/api/models", json={"name": "sd", "path": str(tiny_sd)}
                         ).status_code == 201
    storyboard = _task_type(admin, "Storyboard", "Shot", production["project"], 4)
    shot = gazu.shot.get_shot(production["tasks"]["SH010"]["entity_id"], client=admin)
    task = gazu.task.new_task(shot, storyboard, client=admin)
    if _publication_link_missing(farm, token):
        assert _link(farm, token, zou, ADMIN_PASSWORD).exit_code == 0
    result = _wanhe(farm, token, "gen", "image", "-m", "sd", "-p", "a lion cub at dawn",
                    "--size", "32x32", "-n", "2", "--steps", "2", "--server", farm.url,
                    "--shot", "SQ01/SH010", "--json")
    assert result.exit_code == 0, result.output
    job_id = json.loads(result.stdout)["id"]
    waiting = wait_for(lambda: "waits for a pick" in (p := _publication(farm, token, job_id))[
        "message"] and p, 400, "the gen job to finish and wait for a pick")
    assert waiting["state"] == "waiting" and waiting["task"] == "Storyboard"
    assert gazu.task.all_previews_for_task(task, client=admin) == []  # nothing before a pick
    picked = _wanhe(farm, token, "gen", "pick", str(job_id), "0", "1", "--server", farm.url)
    assert picked.exit_code == 0, picked.output
    pub = _wait_published(farm, token, job_id)
    assert pub["file"].endswith(".png") and "candidate 1" in pub["message"]
    previews = gazu.task.all_previews_for_task(task, client=admin)
    assert [(p["revision"], p["extension"]) for p in previews] == [(1, "png")]
    comments = _ours(admin, task, job_id)
    assert len(comments) == 1
    text = comments[0]["text"]
    for part in ("model sd", "seed 1", "steps 2", "size 32x32", "prompt: a lion cub at dawn",
                 "candidate 1", f"/#/jobs/{job_id}"):
        assert part in text, text
    status = gazu.task.get_task_status(
        gazu.task.get_task(task["id"], client=admin)["task_status_id"], client=admin)
    assert status["short_name"] == "wfa"


def _task_type(admin: KitsuClient, name: str, for_entity: str, project: dict[str, Any],
               priority: int) -> dict[str, Any]:
    """The task type `name`, made (and added to the production) by the first test needing it."""
    found = gazu.task.get_task_type_by_name(name, for_entity=for_entity, client=admin)
    if found:
        return dict(found)
    made: dict[str, Any] = gazu.task.new_task_type(name, for_entity=for_entity, client=admin)
    gazu.project.add_task_type(project, made, priority, client=admin)
    return made


def test_a_story_reel_with_create_shots_creates_the_shots_kitsu_lacks(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any],
        admin: KitsuClient, tmp_path: Path) -> None:
    """--create-shots: the sequence has none of the reel's shots; each is created with its
    frames in the reel (frame in/out, count) and its Animatic task, and gets its clip."""
    import copy

    from tests.story.conftest import BASE, write

    board = copy.deepcopy(BASE)  # fps 12; s1 as long as its line, s2 and s3 one second each
    for sid in ("s2", "s3"):
        board["scenes"][0]["shots"].append({"id": sid, "duration": 1.0,
                                            "image": {"path": "board.png"}})
    story = write(tmp_path / "film", board)
    project = production["project"]
    animatic = _task_type(admin, "Animatic", "Shot", project, 2)
    reel_type = _task_type(admin, "Reel", "Sequence", project, 3)
    sequence = gazu.shot.new_sequence(project, "SQ03", client=admin)
    reel_task = gazu.task.new_task(sequence, reel_type, client=admin)
    if _publication_link_missing(farm, token):
        assert _link(farm, token, zou, ADMIN_PASSWORD).exit_code == 0
    result = _wanhe(farm, token, "submit", str(story), "--sequence", "SQ03", "--task",
                    "Animatic", "--reel-task", "Reel", "--create-shots", "--json")
    assert result.exit_code == 0, result.output
    job_id = json.loads(result.stdout)["id"]
    pub = _wait_published(farm, token, job_id)
    assert "3 clip(s) to their shots (created in Kitsu: s1, s2, s3)" in pub["message"]
    shots = {name: gazu.shot.get_shot_by_name(sequence, name, client=admin)
             for name in ("s1", "s2", "s3")}
    spans = {name: (s["data"]["frame_in"], s["data"]["frame_out"], s["nb_frames"])
             for name, s in shots.items()}
    assert spans["s1"][0] == 1  # the reel's first frame
    assert spans["s2"] == (spans["s1"][1] + 1, spans["s1"][1] + 12, 12)
    assert spans["s3"] == (spans["s2"][1] + 1, spans["s2"][1] + 12, 12)
    for name, (first, last, count) in spans.items():
        assert last - first + 1 == count, name
        task = gazu.task.get_task_by_entity(shots[name], animatic, client=admin)
        previews = gazu.task.all_previews_for_task(task, client=admin)
        assert [(p["revision"], p["extension"]) for p in previews] == [(1, "mp4")], name
    assert len(gazu.task.all_previews_for_task(reel_task, client=admin)) == 1


def test_an_openjd_job_publishes_its_newest_image_output(
        farm: ServiceProc, token: str, zou: ZouServer, production: dict[str, Any],
        admin: KitsuClient, tmp_path: Path) -> None:
    """`wanhe submit --template … --shot … --task …`: what the template wrote last among its
    OUT folder's movies and images (not the first by name) lands as the revision."""
    from PIL import Image

    from tests.openjd._util import step, template, write_yaml

    bundle = tmp_path / "bundle"
    bundle.mkdir()
    Image.new("RGB", (64, 36), (40, 160, 90)).save(bundle / "plate.png")
    doc = template(
        params=[{"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
                 "default": "out"},
                {"name": "Plate", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
                 "default": "plate.png"}],
        steps=[step("Comp", "cp {{Param.Plate}} {{Param.Out}}/zz_first.png; sleep 1.2; "
                            "cp {{Param.Plate}} {{Param.Out}}/aa_last.png; "
                            "echo notes > {{Param.Out}}/notes.txt")])
    path = write_yaml(bundle / "template.yaml", doc)
    compositing = _task_type(admin, "Compositing", "Shot", production["project"], 5)
    shot = gazu.shot.get_shot(production["tasks"]["SH030"]["entity_id"], client=admin)
    task = gazu.task.new_task(shot, compositing, client=admin)
    if _publication_link_missing(farm, token):
        assert _link(farm, token, zou, ADMIN_PASSWORD).exit_code == 0
    result = _wanhe(farm, token, "submit", "--template", str(path), "--shot", "SQ01/SH030",
                    "--task", "Compositing", "--json")
    assert result.exit_code == 0, result.output
    job_id = json.loads(result.stdout)["id"]
    pub = _wait_published(farm, token, job_id)
    assert pub["file"] == "out0/aa_last.png" and pub["task_id"] == task["id"]
    previews = gazu.task.all_previews_for_task(task, client=admin)
    assert [(p["revision"], p["extension"]) for p in previews] == [(1, "png")]
    assert len(_ours(admin, task, job_id)) == 1
