"""Attacks on the sandbox, as project beta on a real `wanhe serve` running as root (embedded
Ray, two workers) beside project alpha: each is an OpenJD step beta submits.

- reading the database file, the storage root, alpha's job input, Ray's session folder and a
  file alpha's task left in its /tmp: none is there inside beta's sandbox, and alpha's bytes
  are in none of beta's outputs or logs;
- a `setsid nohup` busy-loop daemon: gone within 2 s of its task's end, and the CPU seconds it
  burnt are on beta's bill (its attempt's cpu_s);
- a memory hog past the step's request (amount.worker.memory): recorded out of memory, with
  the peak, and every worker still serves;
- a fork loop: refused by the process limit (WANHE_TASK_PIDS_MAX=200 here), the farm alive;

and after all of them an alpha job succeeds. Skips, saying why, where root, bubblewrap or
cgroups are missing.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.api._service import ServiceProc, make_project, os_user, running_farm, wait_for
from tests.openjd._util import env, step, template
from wanhe.sandbox import cgroup
from wanhe.store.store import Store

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
SECRET = "alpha-secret-7f3a9"


def _why_not() -> str | None:
    if os.geteuid() != 0:
        return "needs root (per-project users and cgroups)"
    if shutil.which("bwrap") is None:
        return "needs bubblewrap (apt-get install bubblewrap)"
    return cgroup.available()


@pytest.fixture(scope="module")
def farm() -> Iterator[ServiceProc]:
    why = _why_not()
    if why is not None:
        pytest.skip(why)
    with running_farm("wanhe-sandbox-", workers=2, num_cpus=2,
                      extra_env={"WANHE_TASK_PIDS_MAX": "200"}) as svc:
        yield svc


def submit(svc: ServiceProc, token: str, doc: dict[str, Any]) -> int:
    with svc.client(token) as http:
        sent = http.post("/api/jobs", json={"kind": "openjd", "options": {
            "template": doc, "template_dir": "/submitter", "outputs": ["/submitter/out"]}})
        assert sent.status_code == 201, sent.text
        job_id: int = sent.json()["id"]
        return job_id


def ended(svc: ServiceProc, token: str, job_id: int, timeout: float = 60) -> dict[str, Any]:
    with svc.client(token) as http:
        job: dict[str, Any] = wait_for(
            lambda: (j := http.get(f"/api/jobs/{job_id}").json())["state"]
            in ("done", "failed", "cancelled") and j, timeout, f"job {job_id} to end")
    return job


def out_param() -> dict[str, Any]:
    return {"name": "OutDir", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT",
            "default": "out"}


def one_step(script: str, **extra: Any) -> dict[str, Any]:
    return template(params=[out_param()], job_envs=[env("E", "true")],
                    steps=[step("S", "mkdir -p {{Param.OutDir}}; " + script, **extra)])


def attempts(svc: ServiceProc, job_id: int) -> list[dict[str, Any]]:
    store = Store(svc.db_url)
    try:
        return store.attempts(job_id)
    finally:
        store.dispose()


def logs(svc: ServiceProc, token: str, job_id: int) -> str:
    with svc.client(token) as http:
        return http.get(f"/api/jobs/{job_id}/logs").text


@pytest.fixture(scope="module")
def alpha_job(farm: ServiceProc) -> tuple[str, int]:
    """alpha's job: a secret in its input (its template), its output, and its /tmp."""
    alpha = make_project(farm.db_url, "alpha")
    job = submit(farm, alpha, one_step(
        f"echo {SECRET} > {{{{Param.OutDir}}}}/secret.txt; echo {SECRET} > /tmp/alpha.txt; "
        f"echo {SECRET} > /dev/shm/alpha.txt"))
    assert ended(farm, alpha, job)["state"] == "done"
    return alpha, job


def test_beta_cannot_read_the_farms_or_alphas_files(farm: ServiceProc,
                                                   alpha_job: tuple[str, int]) -> None:
    _alpha, victim = alpha_job
    storage = farm.home / "storage"
    secrets = [farm.home / "wanhe.db", storage / "jobs" / str(victim) / "input",
               storage / "jobs" / str(victim) / "output" / "out0" / "secret.txt",
               storage / "blobs", storage / "logs", Path("/tmp/ray"), Path("/root/.ray"),
               Path("/tmp/alpha.txt"), Path("/dev/shm/alpha.txt")]
    # The folders on the way to beta's own job: the sandbox's own empty ones
    on_the_way = [farm.home, storage, storage / "jobs"]
    beta = make_project(farm.db_url, "beta")
    job = submit(farm, beta, one_step(
        "for p in " + " ".join(map(str, secrets)) + "; do "
        "if cat $p 2>/dev/null || ls -A $p 2>/dev/null | grep -q .; then echo READ $p; "
        "elif [ -e $p ]; then echo DENIED $p; else echo MISSING $p; fi; "
        "done > {{Param.OutDir}}/report.txt; id -un >> {{Param.OutDir}}/report.txt; "
        "for p in " + " ".join(map(str, on_the_way)) + "; do "
        "echo LIST $p $(ls -A $p); done >> {{Param.OutDir}}/report.txt"))
    spied = ended(farm, beta, job)
    assert spied["state"] == "done", spied["message"]
    with farm.client(beta) as http:
        report = http.get(f"/api/jobs/{job}/files/out0/report.txt").text
    lines = report.splitlines()
    # Not even there: the sandbox shows none of them (not "there but denied").
    assert lines[:len(secrets)] == [f"MISSING {t}" for t in secrets], report
    assert lines[len(secrets)] == os_user(farm.db_url, "beta")
    listed = {line.split()[1]: set(line.split()[2:]) for line in lines[len(secrets) + 1:]}
    # (bin: the farm's `blender` command for OpenJD sessions, shown read-only)
    assert listed == {str(farm.home): {"storage", "bin"}, str(storage): {"jobs", "sessions"},
                      str(storage / "jobs"): {str(job)}}, report
    assert SECRET not in report and SECRET not in logs(farm, beta, job)
    # alpha's /tmp and /dev/shm were its sandbox's own: nothing of them is on the machine
    assert not Path("/tmp/alpha.txt").exists() and not Path("/dev/shm/alpha.txt").exists()


def _loops_of(user: str) -> list[int]:
    """Processes of `user` running the busy loop."""
    import pwd

    uid = pwd.getpwnam(user).pw_uid
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            if os.stat(f"/proc/{entry}").st_uid != uid:
                continue
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                if b"while :" in f.read():
                    found.append(int(entry))
        except OSError:
            continue
    return found


def test_a_setsid_daemon_dies_with_its_task_and_is_billed(farm: ServiceProc) -> None:
    beta = make_project(farm.db_url, "beta-daemon")
    job = submit(farm, beta, one_step(
        "setsid nohup sh -c 'while :; do :; done' >/dev/null 2>&1 < /dev/null & "
        "sleep 3; echo started"))
    ran = ended(farm, beta, job)
    assert ran["state"] == "done", ran["message"]
    user = os_user(farm.db_url, "beta-daemon")
    gone_by = time.monotonic() + 2.0
    while _loops_of(user) and time.monotonic() < gone_by:
        time.sleep(0.1)
    assert _loops_of(user) == [], "the daemon outlived its task by 2 s"
    task = [a for a in attempts(farm, job) if a["key"].startswith("S/")]
    # The step itself sleeps; the CPU seconds are the daemon's (it spun ~3 s on 2 cores
    # shared with the farm).
    assert task and task[0]["cpu_s"] >= 0.5, task
    assert "left 1 process(es) running: killed" in logs(farm, beta, job)


def test_a_memory_hog_is_out_of_memory_with_its_peak(farm: ServiceProc) -> None:
    beta = make_project(farm.db_url, "beta-hog")
    hog = template(params=[out_param()], steps=[step(
        "S", "python3 -c 'b = bytearray(2**30); print(len(b))'",
        hostRequirements={"amounts": [{"name": "amount.worker.memory", "min": 128}]})])
    job = submit(farm, beta, hog)
    ran = ended(farm, beta, job, timeout=120)
    assert ran["state"] == "failed"
    oom = [a for a in attempts(farm, job) if a["key"].startswith("S/")]
    assert oom and all(a["outcome"] == "out_of_memory" for a in oom), oom
    assert "ran out of memory" in oom[0]["message"] and "peak" in oom[0]["message"]
    assert (oom[0]["peak_rss"] or 0) >= 128 * 2**20


def test_a_fork_loop_meets_the_process_limit(farm: ServiceProc) -> None:
    beta = make_project(farm.db_url, "beta-forks")
    job = submit(farm, beta, one_step(
        "python3 -c \"\nimport os, sys, time\nn = 0\ntry:\n    while n < 2000:\n"
        "        if os.fork() == 0:\n            time.sleep(30); os._exit(0)\n"
        "        n += 1\nexcept OSError as e:\n    print('refused after', n, e)\n"
        "    sys.exit(3)\n\""))
    ran = ended(farm, beta, job)
    assert ran["state"] == "failed"
    text = logs(farm, beta, job)
    assert "refused after" in text and "Resource temporarily unavailable" in text, text[-2000:]


def test_after_the_attacks_alpha_still_runs(farm: ServiceProc,
                                           alpha_job: tuple[str, int]) -> None:
    alpha, _ = alpha_job
    job = submit(farm, alpha, one_step("echo fine > {{Param.OutDir}}/ok.txt"))
    ran = ended(farm, alpha, job)
    assert ran["state"] == "done", ran["message"]
    with farm.client(alpha) as http:
        assert http.get(f"/api/jobs/{job}/files/out0/ok.txt").text == "fine\n"
