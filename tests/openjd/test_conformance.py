"""`wanhe run` against the reference runner (`openjd run`, installed by the test extra) on
templates of our own, one per extension and queue environments: the same files with the same
bytes, the same enter/run/exit order (one worker), and a redacted secret that appears nowhere
— not in the job's message, the database, the task logs or the report.

Each template is tiny (bash only); both runners run it in full."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.openjd._util import write_yaml
from wanhe.cli import app

# ~15 s a case on a loaded 2-core machine: two runners, each starting its sessions
pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

OPENJD = Path(sys.executable).with_name("openjd")
SECRET = "zq-TOPSECRET-991"


def bash(script: str) -> dict[str, Any]:
    return {"command": "bash", "args": ["-c", script]}


def job(name: str, steps: list[dict[str, Any]], *, extensions: list[str] | None = None,
        params: list[dict[str, Any]] | None = None,
        envs: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    doc: dict[str, Any] = {"specificationVersion": "jobtemplate-2023-09", "name": name}
    if extensions:
        doc["extensions"] = extensions
    doc["parameterDefinitions"] = [
        {"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT"},
        *(params or [])]
    if envs:
        doc["jobEnvironments"] = envs
    doc["steps"] = steps
    return doc


def log_env(name: str) -> dict[str, Any]:
    return {"name": name, "script": {"actions": {
        "onEnter": bash(f"mkdir -p {{{{Param.Out}}}}; echo enter-{name} >> "
                        "{{Param.Out}}/order.txt"),
        "onExit": bash(f"echo exit-{name} >> {{{{Param.Out}}}}/order.txt")}}}


def chunking() -> dict[str, Any]:
    # every frame writes its own file; the chunks it ran in depend on timing, the files not
    run = ("mkdir -p {{Param.Out}}; F='{{Task.Param.F}}'; "
           "for f in $(seq ${F%-*} ${F#*-}); do echo $f > {{Param.Out}}/f$f.txt; done")
    return job("Chunks", [{"name": "R", "parameterSpace": {"taskParameterDefinitions": [
        {"name": "F", "type": "CHUNK[INT]", "range": "1-30", "chunks": {
            "defaultTaskCount": 3, "rangeConstraint": "CONTIGUOUS",
            "targetRuntimeSeconds": 2}}]},
        "script": {"actions": {"onRun": bash(run)}}}], extensions=["TASK_CHUNKING"])


def feature_bundle() -> dict[str, Any]:
    return job("FB1", [{"name": "S", "script": {
        "actions": {"onRun": {"command": "bash", "args": ["{{Task.File.run}}"],
                              "timeout": "{{Param.Limit}}"}},
        "embeddedFiles": [{"name": "run", "type": "TEXT", "endOfLine": "LF", "data":
                           "mkdir -p {{Param.Out}}\nprintf 'a\\nb\\n' > {{Param.Out}}/x.txt\n"}]}}],
        extensions=["FEATURE_BUNDLE_1"], params=[{"name": "Limit", "type": "INT",
                                                  "default": 60}])


def expr() -> dict[str, Any]:
    return job("Expr", [{"name": "S", "let": ["n = len(Param.Names)"], "script": {"actions": {
        "onRun": bash("mkdir -p {{Param.Out}}; echo '{{n}} {{Param.Names[0]}} "
                      "{{upper(Param.Names[1]) if Param.Loud else Param.Names[1]}}' "
                      "> {{Param.Out}}/e.txt")}}}],
        extensions=["EXPR"], params=[
            {"name": "Names", "type": "LIST[STRING]", "default": ["a", "b"]},
            {"name": "Loud", "type": "BOOL", "default": True}])


def wrap() -> dict[str, Any]:
    forward = {"command": "{{WrappedAction.Command}}", "args": ["{{WrappedAction.Args}}"]}
    wrapper = {"name": "Wrapper", "script": {"actions": {
        "onEnter": bash("mkdir -p {{Param.Out}}; echo enter >> {{Param.Out}}/order.txt"),
        "onWrapEnvEnter": forward, "onWrapEnvExit": forward,
        "onWrapTaskRun": {"command": "bash", "args": [
            "-c", 'echo "wrap {{WrappedStep.Name}}" >> {{Param.Out}}/order.txt; exec "$@"',
            "wrapper", "{{WrappedAction.Command}}", "{{WrappedAction.Args}}"]},
        "onExit": bash("echo exit >> {{Param.Out}}/order.txt")}}}
    return job("Wrap", [{
        "name": "S", "stepEnvironments": [log_env("Step")],
        "parameterSpace": {"taskParameterDefinitions": [
            {"name": "F", "type": "INT", "range": "1-2"}]},
        "script": {"actions": {"onRun": bash(
            "echo task {{Task.Param.F}} >> {{Param.Out}}/order.txt")}}}],
        extensions=["EXPR", "WRAP_ACTIONS"], envs=[wrapper])


def queue_env() -> dict[str, Any]:
    return job("Queue", [{"name": "S", "script": {"actions": {"onRun": bash(
        'echo "task sees $QUEUE_TOOL" >> {{Param.Out}}/order.txt')}}}],
        envs=[{"name": "J", "script": {"actions": {"onEnter": bash(
            'mkdir -p {{Param.Out}}; echo "job env sees $QUEUE_TOOL" >> '
            "{{Param.Out}}/order.txt")}}}])


QUEUE_ENV = {"specificationVersion": "environment-2023-09", "environment": {
    "name": "Conda", "script": {"actions": {
        "onEnter": bash("echo 'openjd_env: QUEUE_TOOL=conda-like'"),
        "onExit": bash("echo queue-exit")}}}}

CASES = {"TASK_CHUNKING-adaptive": chunking, "FEATURE_BUNDLE_1": feature_bundle,
         "EXPR": expr, "WRAP_ACTIONS": wrap, "queue-environment": queue_env}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def openjd_run(template: Path, out: Path, *extra: str) -> str:
    done = subprocess.run([str(OPENJD), "run", str(template), "-p", f"Out={out}", *extra],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 or "openjd_fail" in done.stdout, done.stdout[-2000:]
    return done.stdout


def wanhe_run(tmp_path: Path, template: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [
        "run", "--template", str(template), "-p", f"Out={out}", "--workers", "1",
        "--db", f"sqlite:///{tmp_path / 'w.db'}", "--report-json",
        str(tmp_path / "report.json"), *extra], env={"WANHE_HOME": str(tmp_path / "home")})
    return result.exit_code, result.output


@pytest.mark.skipif(not OPENJD.exists(), reason="openjd-cli (the test extra) not installed")
@pytest.mark.parametrize("case", list(CASES))
def test_wanhe_run_matches_openjd_run(case: str, tmp_path: Path) -> None:
    template = write_yaml(tmp_path / "job.yaml", CASES[case]())
    extra: list[str] = []
    if case == "queue-environment":
        extra = ["--env", str(write_yaml(tmp_path / "conda.yaml", QUEUE_ENV))]
    openjd_run(template, tmp_path / "ref", *extra)
    code, text = wanhe_run(tmp_path, template, tmp_path / "ours", *extra)
    assert code == 0, text
    ours, ref = tree(tmp_path / "ours"), tree(tmp_path / "ref")
    assert ours == ref
    if case == "TASK_CHUNKING-adaptive":
        assert sorted(ours) == sorted(f"f{i}.txt" for i in range(1, 31))
        report = json.loads((tmp_path / "report.json").read_text())
        slots = [t for t in report["tasks"] if t["key"].startswith("R/chunk ")]
        assert len(slots) == 10 and all(t["state"] == "done" for t in slots)
    if case == "WRAP_ACTIONS":  # enter, step enter, each task wrapped, exits newest first
        assert ours["order.txt"].decode().split("\n")[:4] == [
            "enter", "enter-Step", "wrap S", "task 1"]
    if case == "queue-environment":
        assert ours["order.txt"] == b"job env sees conda-like\ntask sees conda-like\n"


@pytest.mark.skipif(not OPENJD.exists(), reason="openjd-cli (the test extra) not installed")
def test_a_redacted_secret_appears_nowhere(tmp_path: Path) -> None:
    # The secret comes from the worker (a file the template names), as a vault's would.
    (tmp_path / "vault").write_text(SECRET)
    doc = job("Secret", [{"name": "Use", "script": {"actions": {"onRun": bash(
        'echo "openjd_status: using $APIKEY"; echo "key is $APIKEY"; '
        'echo "openjd_fail: rejected key $APIKEY"; exit 1')}}}],
        extensions=["REDACTED_ENV_VARS"], envs=[{"name": "Creds", "script": {"actions": {
            "onEnter": bash(f'echo "openjd_redacted_env: APIKEY=$(cat {tmp_path / "vault"})"')
        }}}])
    template = write_yaml(tmp_path / "job.yaml", doc)
    reference = openjd_run(template, tmp_path / "ref")
    assert SECRET not in reference and "rejected key ********" in reference
    code, text = wanhe_run(tmp_path, template, tmp_path / "ours")
    assert code == 1 and "rejected key ********" in text.replace("\n", " ")
    for path in [tmp_path / "w.db", tmp_path / "report.json", template,
                 *(p for p in (tmp_path / "home").rglob("*") if p.is_file())]:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in text
    logs = [p for p in (tmp_path / "home").rglob("*.log")]
    assert logs and any(b"key is ********" in p.read_bytes() for p in logs)

