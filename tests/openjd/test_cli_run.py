"""`wanhe run` for OpenJD templates and bundles, in this process (local workers, no Ray): one-line
errors with exit 2 for bad templates and parameters, a bundle run to the end with its report,
resume (a second run runs nothing again), a failing task's reason with exit 1."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tests.openjd._util import env, step, template, write_yaml
from wanhe.cli import app

pytestmark = pytest.mark.timeout(120)


def run(tmp_path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["run", *args, "--db", f"sqlite:///{tmp_path / 'w.db'}"],
                                env={"WANHE_HOME": str(tmp_path / "home")})
    return result.exit_code, result.output


def quiet_line(text: str) -> dict[str, Any]:
    """The JSON line `wanhe run -q` prints."""
    found: dict[str, Any] = json.loads(next(
        line for line in text.splitlines() if line.startswith('{"job"')))
    return found


def test_bad_templates_and_parameters_are_one_line_errors(tmp_path: Path) -> None:
    doc = template(params=[{"name": "Quality", "type": "STRING",
                            "allowedValues": ["draft", "final"]}],
                   steps=[step("S", "true")])
    path = write_yaml(tmp_path / "job.yaml", doc)
    code, text = run(tmp_path, "--template", str(path), "-p", "Quality=ultra")
    assert code == 2 and "Quality" in text and "draft, final" in text
    assert "Traceback" not in text
    code, text = run(tmp_path, "--template", str(path))
    assert code == 2 and "Quality" in text and "required" in text
    broken = write_yaml(tmp_path / "broken.yaml", {**doc, "steps": [{"name": "S"}]})
    code, text = run(tmp_path, "--template", str(broken), "-p", "Quality=draft")
    assert code == 2 and "steps[0]" in text and "script" in text
    (tmp_path / "notyaml.yaml").write_text("steps: [unclosed")
    code, text = run(tmp_path, "--template", str(tmp_path / "notyaml.yaml"))
    assert code == 2 and "not valid YAML" in text and "line 1, column" in text
    code, text = run(tmp_path, str(tmp_path / "nothing-here"))
    assert code == 2 and "not a job bundle folder" in text
    assert not (tmp_path / "w.db").exists() or "job 1" not in text  # nothing half-made


def test_a_bundle_runs_and_resumes(tmp_path: Path) -> None:
    bundle = tmp_path / "bundle"
    out = tmp_path / "out"
    write_yaml(bundle / "template.yaml", template(
        params=[{"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT"},
                {"name": "Frames", "type": "STRING", "default": "1-4"}],
        job_envs=[env("E", "mkdir -p {{Param.Out}}; echo x >> {{Param.Out}}/enter.log")],
        steps=[step("R", "echo {{Task.Param.F}} > {{Param.Out}}/{{Task.Param.F}}.txt",
                    params=[{"name": "F", "type": "INT", "range": "{{Param.Frames}}"}])]))
    (bundle / "parameter_values.json").write_text(json.dumps({"parameterValues": [
        {"name": "Out", "value": str(out)}, {"name": "deadline:priority", "value": 50}]}))
    report = tmp_path / "report.json"
    code, text = run(tmp_path, str(bundle), "-q", "--report-json", str(report))
    assert code == 0, text
    assert sorted(p.name for p in out.glob("*.txt")) == ["1.txt", "2.txt", "3.txt", "4.txt"]
    body = json.loads(report.read_text())
    assert body["state"] == "done" and body["totals"]["core_seconds"] > 0
    first = len(body["attempts"])
    code, text = run(tmp_path, str(bundle), "--report-json", str(report))
    assert code == 0 and "resuming job 1: 4 task(s) already done" in text  # the 4 tasks, no barrier
    assert len(json.loads(report.read_text())["attempts"]) == first


def test_a_failing_task_names_its_reason(tmp_path: Path) -> None:
    path = write_yaml(tmp_path / "job.yaml", template(steps=[
        step("S", "echo 'openjd_fail: no licence for the solver'; exit 1")]))
    code, text = run(tmp_path, "--template", str(path), "-q")
    assert code == 1
    assert "no licence for the solver" in text.replace("\n", " ")
    logs = Path(quiet_line(text)["logs"])
    (tmp_path / "w.db").unlink()  # a new database: job 1 again, in the same run folder
    code, text = run(tmp_path, "--template", str(path), "-q")
    assert code == 1 and quiet_line(text)["logs"] == str(logs)
    log = "".join(p.read_text() for p in logs.glob("*.log"))
    assert log.count("[wanhe] openjd task S/task") == 1  # this run's only
