"""OpenJD templates on a real `wanhe serve` (embedded Ray, 2 CPU workers and one logical GPU,
workers started with `--worker-attr license=houdini`): a job bundle submitted with `wanhe
submit BUNDLE_DIR` (its input uploaded content-addressed, PATH parameters mapped to the job's
folders), environments kept across the tasks of a session, host requirements refused at
submit and placed (the GPU step on the GPU slot), the REST form, `wanhe job` / `wanhe report`,
and — this machine runs as root — project isolation: a template of one project that tries to
read another project's inputs, sessions and outputs is denied, as its own OS user.

Ray's "GPU" is a logical resource here (no GPU on this machine): placement and
CUDA_VISIBLE_DEVICES are what is tested, not CUDA.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.api._service import (
    ServiceProc,
    make_project,
    os_user,
    run_cli,
    running_farm,
    wait_for,
)
from tests.openjd._util import env, step, template, write_yaml
from wanhe.cli import app as wanhe_app

REPO = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]


@pytest.fixture(scope="module")
def farm() -> Iterator[ServiceProc]:
    def conda_queue_env(home: Path) -> list[str]:
        # a farm-wide queue environment, entered first in every session (Deadline's Conda one)
        queue_env = write_yaml(home / "conda.yaml", {
            "specificationVersion": "environment-2023-09", "environment": {
                "name": "Conda", "script": {"actions": {"onEnter": {
                    "command": "bash", "args": ["-c", "echo 'openjd_env: QUEUE_TOOL=conda'"]}}}}})
        os.chmod(queue_env, 0o644)
        return ["--queue-env", str(queue_env)]

    with running_farm("wanhe-openjd-", workers=2, num_cpus=2,
                      extra_args=["--num-gpus", "1", "--worker-attr", "license=houdini"],
                      prepare=conda_queue_env) as svc:
        yield svc


def done(svc: ServiceProc, token: str, job_id: int, timeout: float = 120) -> dict[str, Any]:
    with svc.client(token) as http:
        job: dict[str, Any] = wait_for(
            lambda: (j := http.get(f"/api/jobs/{job_id}").json())["state"]
            in ("done", "failed", "cancelled") and j, timeout, f"job {job_id} to end")
    return job


def out_param() -> dict[str, Any]:
    return {"name": "OutDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
            "default": "out"}


def test_a_bundle_runs_with_its_inputs_and_environments_kept(farm: ServiceProc,
                                                              tmp_path: Path) -> None:
    token = make_project(farm.db_url, "bundles")
    bundle = tmp_path / "bundle"
    (bundle / "plates").mkdir(parents=True)
    (bundle / "plates" / "plate.txt").write_text("plate\n")
    write_yaml(bundle / "template.yaml", template(
        name="Bundle {{Param.Shot}}",
        params=[{"name": "Shot", "type": "STRING"},
                {"name": "Plate", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
                 "default": "plates/plate.txt"}, out_param()],
        # (one file per session: a session's pids are its sandbox's own, the same in each)
        job_envs=[env("Warm", "mkdir -p {{Param.OutDir}}; "
                              "echo $$ >> {{Param.OutDir}}/enter-$(date +%s%N).log",
                      "echo exit >> {{Param.OutDir}}/exits.log")],
        steps=[step("Comp", "(cat {{Param.Plate}}; echo {{Param.Shot}} {{Task.Param.F}}) "
                            "> {{Param.OutDir}}/f{{Task.Param.F}}.txt",
                    params=[{"name": "F", "type": "INT", "range": "1-6"}])]))
    write_yaml(bundle / "parameter_values.yaml",
               {"parameterValues": [{"name": "Shot", "value": "sh010"}]})
    sent = json.loads(run_cli(farm, token, "submit", str(bundle), "--priority", "70",
                              "--json"))
    assert sent["files"] == 2  # the template and the plate it reads
    job = done(farm, token, sent["id"])
    assert job["state"] == "done", job["message"]
    assert job["name"] == "Bundle sh010" and job["priority"] == 70
    with farm.client(token) as http:
        files = {f["path"] for f in http.get(f"/api/jobs/{sent['id']}").json()["outputs"]}
        assert {f"out0/f{i}.txt" for i in range(1, 7)} <= files
        text = http.get(f"/api/jobs/{sent['id']}/files/out0/f3.txt").text
        assert text == "plate\nsh010 3\n"
        tasks = http.get(f"/api/jobs/{sent['id']}/tasks").json()
    enters = [f for f in files if f.startswith("out0/enter-")]
    assert 1 <= len(enters) <= 2  # once per session (two CPU workers), not once per task
    with farm.client(token) as http:  # the job ended: each worker exits its session
        wait_for(lambda: http.get(f"/api/jobs/{sent['id']}/files/out0/exits.log").text.split()
                 == ["exit"] * len(enters), 30, "the sessions' onExit")
    labels = {t["key"]: t["label"] for t in tasks}
    assert labels["Comp/F=1"] == "step 'Comp' task F=1"
    shown = json.loads(run_cli(farm, token, "job", str(sent["id"]), "--json"))
    assert shown["state"] == "done" and shown["core_hours"] > 0
    report = json.loads(run_cli(farm, token, "report", "--json"))
    assert any(k["kind"] == "openjd" for k in report["kinds"])


def test_host_requirements_are_refused_at_submit_and_placed(farm: ServiceProc) -> None:
    token = make_project(farm.db_url, "hostreq")
    nuke = template(steps=[step("Comp", "true", hostRequirements={"attributes": [
        {"name": "attr.license", "anyOf": ["nuke"]}]})])
    with farm.client(token) as http:
        refused = http.post("/api/jobs", json={"kind": "openjd",
                                               "options": {"template": nuke}})
        assert refused.status_code == 422
        detail = refused.json()["detail"][0]
        assert detail["loc"] == ["body", "options", "template"]
        assert "step 'Comp' can never run on this farm" in detail["msg"]
        assert "attr.license anyOf ['nuke']" in detail["msg"]
        bad = http.post("/api/jobs", json={"kind": "openjd", "options": {
            "template": template(params=[{"name": "N", "type": "INT", "maxValue": 3}],
                                 steps=[step("S", "true")]),
            "parameters": {"N": 7}}})
        assert bad.status_code == 422 and "must be at most 3" in bad.text
        placed = template(
            params=[{"name": "Out", "type": "PATH", "objectType": "DIRECTORY",
                     "dataFlow": "OUT"}],
            steps=[
                step("Gpu", "mkdir -p {{Param.Out}}; echo gpu=$CUDA_VISIBLE_DEVICES > "
                            "{{Param.Out}}/gpu.txt", hostRequirements={
                                "amounts": [{"name": "amount.worker.gpu", "min": 1}],
                                "attributes": [{"name": "attr.license",
                                                "allOf": ["houdini"]}]}),
                step("Cpu", "mkdir -p {{Param.Out}}; echo cpu=$CUDA_VISIBLE_DEVICES > "
                            "{{Param.Out}}/cpu.txt"),
            ])
        made = http.post("/api/jobs", json={"kind": "openjd", "options": {
            "template": placed, "parameters": {"Out": "/submitter/out"},
            "outputs": ["/submitter/out"]}})
        assert made.status_code == 201, made.text
    job = done(farm, token, made.json()["id"])
    assert job["state"] == "done", job["message"]
    with farm.client(token) as http:
        gpu = http.get(f"/api/jobs/{job['id']}/files/out0/gpu.txt").text
        cpu = http.get(f"/api/jobs/{job['id']}/files/out0/cpu.txt").text
        assert (gpu, cpu) == ("gpu=0\n", "cpu=\n")
        assert job["gpu_hours"] > 0  # the GPU slot's worker ran it: CUDA_VISIBLE_DEVICES=0


@pytest.mark.skipif(os.geteuid() != 0, reason="project users need a farm running as root")
def test_a_projects_template_cannot_read_another_projects_files(farm: ServiceProc) -> None:
    alpha = make_project(farm.db_url, "alpha")
    beta = make_project(farm.db_url, "beta")
    alpha_user, beta_user = os_user(farm.db_url, "alpha"), os_user(farm.db_url, "beta")
    assert alpha_user != beta_user and alpha_user.endswith("-alpha")
    secret = template(params=[out_param()], job_envs=[env("E", "true")], steps=[
        step("Write", "mkdir -p {{Param.OutDir}}; echo alpha-secret > "
                      "{{Param.OutDir}}/secret.txt; id -un > {{Param.OutDir}}/whoami.txt")])
    with farm.client(alpha) as http:
        first = http.post("/api/jobs", json={"kind": "openjd", "options": {
            "template": secret, "template_dir": "/submitter", "outputs": ["/submitter/out"]}})
        assert first.status_code == 201, first.text
    victim = done(farm, alpha, first.json()["id"])
    assert victim["state"] == "done", victim
    work = farm.home / "storage"
    targets = [work / "jobs" / str(victim["id"]) / "output" / "out0" / "secret.txt",
               work / "jobs" / str(victim["id"]) / "input",
               work / "jobs" / str(victim["id"]) / "work",
               work / "sessions" / alpha_user, work / "openjd-jobs", work / "blobs",
               work / "logs"]
    probe = " ".join(f"{t}" for t in targets)
    spy = template(params=[out_param()], steps=[step("Spy", (
        "mkdir -p {{Param.OutDir}}; for p in " + probe + "; do "
        "if cat $p >/dev/null 2>&1 || ls $p >/dev/null 2>&1; then echo READ $p; "
        "else echo DENIED $p; fi; done > {{Param.OutDir}}/report.txt; "
        "id -un >> {{Param.OutDir}}/report.txt; "
        f"ls -A {work / 'jobs'} > {{{{Param.OutDir}}}}/jobs.txt 2>&1 || true"))])
    with farm.client(beta) as http:
        second = http.post("/api/jobs", json={"kind": "openjd", "options": {
            "template": spy, "template_dir": "/submitter", "outputs": ["/submitter/out"]}})
        assert second.status_code == 201, second.text
    spied = done(farm, beta, second.json()["id"])
    assert spied["state"] == "done", spied
    with farm.client(beta) as http:
        report = http.get(f"/api/jobs/{spied['id']}/files/out0/report.txt").text.splitlines()
        # and beta's token cannot fetch alpha's outputs through the API either
        other = http.get(f"/api/jobs/{victim['id']}/files/out0/secret.txt")
        assert other.status_code == 404
    assert report[-1] == beta_user
    assert report[:-1] == [f"DENIED {t}" for t in targets]
    # the jobs folder lists no other job (denied, or in the sandbox: only beta's own)
    with farm.client(beta) as http:
        listed = http.get(f"/api/jobs/{spied['id']}/files/out0/jobs.txt").text.split()
    assert str(victim["id"]) not in listed, listed
    with farm.client(alpha) as http:
        whoami = http.get(f"/api/jobs/{victim['id']}/files/out0/whoami.txt").text
    assert whoami == f"{alpha_user}\n"


def test_cancel_notifies_then_terminates_and_the_status_line_shows(farm: ServiceProc) -> None:
    token = make_project(farm.db_url, "cancels")
    marks = "{{Param.OutDir}}/marks.txt"
    doc = template(params=[out_param()], steps=[step(
        "Long", f"mkdir -p {{{{Param.OutDir}}}}; trap 'echo notified >> {marks}; sleep 0.5; "
                f"echo tidied >> {marks}; exit 0' TERM; echo started >> {marks}; "
                "echo 'openjd_progress: 25'; echo 'openjd_status: simulating frame 12'; "
                "for i in $(seq 1200); do sleep 0.1; done",
        action={"cancelation": {"mode": "NOTIFY_THEN_TERMINATE",
                                "notifyPeriodInSeconds": 20}})])
    with farm.client(token) as http:
        made = http.post("/api/jobs", json={"kind": "openjd", "options": {
            "template": doc, "template_dir": "/submitter", "outputs": ["/submitter/out"]}})
        assert made.status_code == 201, made.text
        job_id = made.json()["id"]
        running = wait_for(lambda: next((t for t in http.get(f"/api/jobs/{job_id}/tasks").json()
                                         if t["status"]), None), 90, "the status line")
        assert running["status"] == "simulating frame 12"
        assert running["progress"] == pytest.approx(0.25)
        assert http.post(f"/api/jobs/{job_id}/cancel").status_code == 200
    job = done(farm, token, job_id, timeout=60)
    assert job["state"] == "cancelled"
    with farm.client(token) as http:
        text = wait_for(lambda: "tidied" in (t := http.get(
            f"/api/jobs/{job_id}/files/out0/marks.txt").text) and t, 30, "the tidy-up")
    assert text.split() == ["started", "notified", "tidied"]


@pytest.mark.browser
def test_the_dashboard_shows_steps_by_tasks_with_status_lines(farm: ServiceProc) -> None:
    playwright = pytest.importorskip("playwright.sync_api", reason="pip install -e '.[test]'")
    if not Path("/usr/bin/chromium").exists():
        pytest.skip("Debian's chromium is missing: make test installs it")
    token = make_project(farm.db_url, "dashboard")
    doc = template(steps=[
        step("Sim", "echo 'openjd_status: cached frame {{Task.Param.F}}'",
             params=[{"name": "F", "type": "INT", "range": "1-2"}]),
        step("Encode", "echo 'openjd_status: muxed'", dependencies=[{"dependsOn": "Sim"}])])
    with farm.client(token) as http:
        made = http.post("/api/jobs", json={"kind": "openjd", "name": "steps",
                                            "options": {"template": doc}})
        assert made.status_code == 201, made.text
    job = done(farm, token, made.json()["id"])
    assert job["state"] == "done", job["message"]
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium",
                                    args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page()
            page.set_default_timeout(20_000)
            errors: list[str] = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(f"{farm.url}/#/login")
            page.fill("#token", token)
            page.click("#sign-in")
            page.wait_for_selector("#jobs-table")
            page.goto(f"{farm.url}/#/jobs/{job['id']}")
            page.wait_for_selector("#task-list .step-head")
            heads = page.locator("#task-list .step-head").all_inner_texts()
            buttons = page.locator("#task-list button").all_inner_texts()
        finally:
            browser.close()
    assert [h.strip() for h in heads] == ["step Sim", "step Encode"]
    assert "F=1 · cached frame 1" in [b.strip() for b in buttons]
    assert "task · muxed" in [b.strip() for b in buttons]
    assert not errors, errors


def test_output_folders_come_back_and_a_redacted_secret_stays_secret(
        farm: ServiceProc, tmp_path: Path) -> None:
    """OUT made on the worker (the template does not mkdir it), INOUT copied in writable and
    published back, `wanhe download` putting both into the submitter's folders; the project's
    user runs wanhe's `blender`; a value the job redacts (REDACTED_ENV_VARS) is in no API
    answer, no log and not in the database."""
    token = make_project(farm.db_url, "dataflow")
    secret = "zq-FARMSECRET-314"
    bundle = tmp_path / "bundle"
    (bundle / "data").mkdir(parents=True)
    (bundle / "data" / "in.txt").write_text("hash me\n")
    (bundle / "vault.txt").write_text(secret)  # the secret comes from a file, not the template
    doc = template(
        params=[{"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
                 "default": "out"},
                {"name": "Data", "type": "PATH", "objectType": "DIRECTORY",
                 "dataFlow": "INOUT", "default": "data"},
                {"name": "Vault", "type": "PATH", "objectType": "FILE", "dataFlow": "IN",
                 "default": "vault.txt"}],
        job_envs=[env("Creds", 'echo "openjd_redacted_env: KEY=$(cat {{Param.Vault}})"')],
        steps=[step("Hash", "sha1sum < {{Param.Data}}/in.txt > {{Param.Data}}/hashes.txt; "
                            "echo out $QUEUE_TOOL > {{Param.Out}}/o.txt; "
                            "blender --version > {{Param.Out}}/blender.txt"),
               step("Leak", 'echo "openjd_status: using $KEY"; '
                            'echo "openjd_fail: rejected key $KEY"; exit 1',
                    dependencies=[{"dependsOn": "Hash"}])])
    doc["extensions"] = ["REDACTED_ENV_VARS"]
    write_yaml(bundle / "template.yaml", doc)
    sent = json.loads(run_cli(farm, token, "submit", str(bundle), "--json"))
    job = done(farm, token, sent["id"])
    assert job["state"] == "failed" and "rejected key ********" in job["message"]
    with farm.client(token) as http:
        answers = [http.get(f"/api/jobs/{sent['id']}").text,
                   http.get(f"/api/jobs/{sent['id']}/tasks").text,
                   http.get(f"/api/jobs/{sent['id']}/logs").text, http.get("/api/jobs").text]
        files = {f["path"] for f in http.get(f"/api/jobs/{sent['id']}").json()["outputs"]}
    assert not any(secret in a for a in answers)
    assert {"out0/o.txt", "out1/in.txt", "out1/hashes.txt"} <= files
    home = Path(farm.db_url.removeprefix("sqlite:///")).parent
    # A session keeps its working folder (openjd-sessions' action scripts, which export the
    # session's variables, the redacted one too) until it ends, just after its job does; it
    # is removed whole then. Wait for that, then nothing but the input may hold the secret.
    sessions = home / "storage" / "sessions"
    wait_for(lambda: not [p for p in sessions.glob("*/*") if p.is_dir()], 60,
             "the job's sessions to end and remove their working folders")
    # only the uploaded vault file itself (its blob, the job's input) holds the secret
    leaks = [p for p in home.rglob("*") if p.is_file() and not p.is_symlink()
             and secret.encode() in p.read_bytes() and p.read_bytes() != secret.encode()]
    assert leaks == []
    fetched = json.loads(run_cli(farm, token, "download", str(sent["id"]), "--to",
                                 str(tmp_path / "rest"), "--json"))
    assert str(bundle / "out" / "o.txt") in fetched["files"]
    assert (bundle / "out" / "o.txt").read_text() == "out conda\n"  # the queue env's
    # the project's user ran wanhe's bpy-backed blender (not Debian's 3.4 behind it on PATH)
    assert "wanhe: the bpy wheel" in (bundle / "out" / "blender.txt").read_text()
    digest = hashlib.sha1(b"hash me\n").hexdigest()
    assert (bundle / "data" / "hashes.txt").read_text().split()[0] == digest


def test_a_projects_queue_environment_is_entered_by_its_jobs_only(
        farm: ServiceProc, tmp_path: Path) -> None:
    """`wanhe project env add`: the project's later jobs enter the farm's queue environment,
    then the project's, then their own (and leave in reverse); another project's jobs never
    see it; a file that is not an environment template is one line; remove forgets it."""
    alpha = make_project(farm.db_url, "queued-alpha", scope="manage")
    beta = make_project(farm.db_url, "queued-beta")
    rez = write_yaml(tmp_path / "rez.yaml", {
        "specificationVersion": "environment-2023-09", "environment": {
            "name": "Rez", "script": {"actions": {
                "onEnter": {"command": "bash", "args": [
                    "-c", 'echo "openjd_env: PROJECT_TOOL=rez-$QUEUE_TOOL"']}}}}})
    run_cli(farm, alpha, "project", "env", "add", "queued-alpha", str(rez))
    listed = json.loads(run_cli(farm, alpha, "project", "env", "list", "queued-alpha",
                                "--json"))
    assert [e["name"] for e in listed] == ["Rez"]
    doc = template(job_envs=[env("Job", 'echo "openjd_env: SEEN=job-saw-$PROJECT_TOOL"')],
                   steps=[step("Show", 'echo "openjd_status: $SEEN"; '
                                       'echo "openjd_fail: tools $QUEUE_TOOL/$PROJECT_TOOL"; '
                                       'exit 1')])
    path = write_yaml(tmp_path / "job.yaml", doc)
    results = {}
    for name, token in (("alpha", alpha), ("beta", beta)):
        sent = json.loads(run_cli(farm, token, "submit", "--template", str(path), "--json"))
        results[name] = done(farm, token, sent["id"])["message"]
    # the job's own environment ran after the project's: it saw PROJECT_TOOL
    assert "tools conda/rez-conda" in results["alpha"], results["alpha"]
    assert "tools conda/" in results["beta"] and "rez" not in results["beta"], results["beta"]

    bad = tmp_path / "not-env.yaml"
    write_yaml(bad, template(steps=[step("S", "true")]))
    refused = CliRunner().invoke(wanhe_app, ["project", "env", "add", "queued-alpha", str(bad)],
                                 env={"WANHE_SERVER": farm.url, "WANHE_TOKEN": alpha})
    assert refused.exit_code == 2
    assert "not an environment template" in refused.output
    assert "Traceback" not in refused.output
    run_cli(farm, alpha, "project", "env", "remove", "queued-alpha", "Rez")
    assert json.loads(run_cli(farm, alpha, "project", "env", "list", "queued-alpha",
                              "--json")) == []
    # beta cannot see or change alpha's
    denied = CliRunner().invoke(wanhe_app, ["project", "env", "list", "queued-alpha"],
                                env={"WANHE_SERVER": farm.url, "WANHE_TOKEN": beta})
    assert denied.exit_code != 0 and "no project named" in denied.output
