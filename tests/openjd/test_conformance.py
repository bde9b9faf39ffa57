"""`wanhe run` against the reference runner (`openjd run`, openjd-cli in its own virtualenv:
tests/openjd/_reference.py) on
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

from tests.openjd._reference import openjd_exe, reference_python
from tests.openjd._util import write_yaml
from wanhe.cli import app

# ~15 s a case on a loaded 2-core machine: two runners, each starting its sessions
pytestmark = [pytest.mark.timeout(300), pytest.mark.slow]

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
    done = subprocess.run([openjd_exe(), "run", str(template), "-p", f"Out={out}", *extra],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 or "openjd_fail" in done.stdout, done.stdout[-2000:]
    return done.stdout


def wanhe_run(tmp_path: Path, template: Path, out: Path, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, [
        "run", "--template", str(template), "-p", f"Out={out}", "--workers", "1",
        "--db", f"sqlite:///{tmp_path / 'w.db'}", "--report-json",
        str(tmp_path / "report.json"), *extra], env={"WANHE_HOME": str(tmp_path / "home")})
    return result.exit_code, result.output


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



# EXPR's engine (openjd._openjd_rs, built from the openjd-rs crates) is what moved between
# openjd-model 0.13 (the reference's) and 0.14 (wanhe's): the same expressions give the same
# values and types, or fail alike, in both interpreters — numbers, strings, lists, ranges,
# paths, regular expressions, the function library and the errors of each.
EXPRESSIONS = [
    "7 / 2", "-7 // 2", "7 % -3", "2 ** -1", "0 ** -1", "round(2.5)", "round(2.675, 2)",
    "int(3.9)", "int('12')", "float('1e3')", "string(0.1 + 0.2)", "string(1e16)",
    "string(1.5e-7)", "string([1, 2.5])", "string(['a', \"b'c\"])", "string(True)",
    "9223372036854775807 + 1", "1 / 0", "1 == 1.0", "'a' + 1", "[1, 'a']",
    "repr_sh(\"it's\")", "repr_py(['a', 1])", "repr_json(['x', 1.0])", "repr_pwsh('a$b')",
    "len('héllo')", "upper('straße')", "'abc'[::-1]", "[1, 2, 3][5:]", "[1, 2, 3][-4]",
    "sorted([3, 1, 2])", "unique([1, 1, 2])", "flatten([[1], [2, 3]])", "sum([1.5, 2])",
    "min(3, 1, 2)", "max([])", "floor(-1.5)", "range(1, 10, 3)", "zfill(-5, 3)",
    "range_expr('1-10:3')", "string(range_expr('1-5,8'))", "range_expr('10-1:-3')",
    "range_expr('1-10:0')", "range_expr('1-10')[2:5]", "range_expr('1-10')[::-1]",
    "3.0 in range_expr('1-5')", "len(range_expr('1-9223372036854775806'))",
    "'a,b,,c'.split(',')", "'abc'.center(7, '*')", "'ǅ'.isupper()", "'١٢'.isdigit()",
    "re_search('a(b+)', 'xabbb')", "re_findall('(a)(b)', 'abab')",
    "re_sub('(?P<n>a)', r'\\g<n>!', 'a')", "re_search('(?<=a)b', 'ab')",
    "re_search(r'(a)\\1', 'aa')", "re_escape('a.b')",
    "path('/a/b/c.tar.gz').suffixes", "path('/a/b/c.tar.gz').stem", "path('/a/b') / 'c'",
    "path('/a/b/c').relative_to('/a')", "path('/a/b/c_####.exr').with_number(12)",
    "path('/a/../b')", "string(path('a') / '/b')", "path('C:/x/y').name",
    "[x * 2 for x in [1, 2, 3] if x > 1]", "'x' if 0 else 'y'", "1 < 2 < 3", "0 or 'b'",
    "fail('boom')", "{1: 2}", "f'{1}'", "'x' * 100000000", "[0] * 100000000", "len(5)",
]

EVALUATE = """
import json, sys
from openjd.expr import evaluate_expression
out = []
for text in json.loads(sys.argv[1])[0]:
    try:
        value = evaluate_expression(text)
        out.append(["value", repr(value), str(value.type)])
    except Exception as exc:
        out.append(["error", type(exc).__name__, str(exc)])
print(json.dumps(out))
"""


def test_expressions_evaluate_as_in_the_reference() -> None:
    ours = subprocess.run([sys.executable, "-c", EVALUATE, json.dumps([EXPRESSIONS])],
                          capture_output=True, text=True, timeout=120, check=True)
    theirs = reference_python(EVALUATE, EXPRESSIONS)
    assert isinstance(theirs, list) and len(theirs) == len(EXPRESSIONS)
    assert {"value", "error"} == {kind for kind, *_ in theirs}  # both kinds are compared
    assert dict(zip(EXPRESSIONS, json.loads(ours.stdout), strict=True)) == \
        dict(zip(EXPRESSIONS, theirs, strict=True))


CREATE = """
import json, sys
from pathlib import Path
from openjd.model import (StepParameterSpaceIterator, create_job, decode_job_template,
                          preprocess_job_parameters)
out = []
for template in json.loads(sys.argv[1])[0]:
    try:
        decoded = decode_job_template(template=template, supported_extensions=[
            "TASK_CHUNKING", "REDACTED_ENV_VARS", "FEATURE_BUNDLE_1", "EXPR", "WRAP_ACTIONS"])
        values = preprocess_job_parameters(job_template=decoded,
                                           job_parameter_values={"Out": "/tmp/out"},
                                           job_template_dir=Path("/tmp"),
                                           current_working_dir=Path("/tmp"))
        job = create_job(job_template=decoded, job_parameter_values=values)
        out.append(["job", str(job.name), [[step.name, [] if step.parameterSpace is None else [
            {k: [v.type.value, str(v.value)] for k, v in task.items()}
            for task in StepParameterSpaceIterator(space=step.parameterSpace)]]
            for step in job.steps]])
    except Exception as exc:
        out.append(["error", type(exc).__name__, " ".join(str(exc).split())])
print(json.dumps(out))
"""


def edge_templates() -> list[dict[str, Any]]:
    """Templates at the edges of the extensions, valid and not."""
    onrun = {"actions": {"onRun": bash("echo {{Task.Param.F}}")}}
    plain = {"actions": {"onRun": bash("true")}}
    wrapper = [{"name": "W", "script": {"actions": {
        "onWrapTaskRun": {"command": "{{WrappedAction.Command}}",
                          "args": ["{{WrappedAction.Args}}"]}}}}]

    def one(space: list[dict[str, Any]], extensions: list[str],
            params: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        return job("Edge", [{"name": "S", "parameterSpace": {"taskParameterDefinitions": space},
                             "script": onrun}], extensions=extensions, params=params)

    return [
        one([{"name": "F", "type": "CHUNK[INT]", "range": "{{Param.R}}", "chunks": {
            "defaultTaskCount": "{{Param.N}}", "rangeConstraint": "NONCONTIGUOUS"}}],
            ["TASK_CHUNKING", "EXPR", "FEATURE_BUNDLE_1"],
            [{"name": "R", "type": "RANGE_EXPR", "default": "1-10,15-20"},
             {"name": "N", "type": "INT", "default": 4}]),
        one([{"name": "F", "type": "FLOAT", "range": "{{[x / 4 for x in range(4)]}}"}],
            ["EXPR"]),
        one([{"name": "F", "type": "INT", "range": "{{Param.L}}"}], ["EXPR"],
            [{"name": "L", "type": "LIST[INT]", "default": [3, 1, 2]}]),
        one([{"name": "F", "type": "STRING", "range": ["{{1 + 2}}"]}], []),  # EXPR not named
        {**one([{"name": "F", "type": "INT", "range": "1-2"}], ["EXPR"],
               [{"name": "N", "type": "INT", "default": 2}]), "name": "J{{Param.N + 1}}"},
        {**expr(), "steps": [{**expr()["steps"][0], "let": [f"v{i} = {i}" for i in range(51)]}]},
        job("W", [{"name": "S", "script": plain}], extensions=["WRAP_ACTIONS"], envs=wrapper),
        job("W", [{"name": "S", "script": plain}], extensions=["EXPR", "WRAP_ACTIONS"],
            envs=wrapper),  # a wrap action without the other two
        {k: v for k, v in feature_bundle().items()  # a timeout format string, no bundle
         if k != "extensions"},
    ]


def test_jobs_are_created_as_in_the_reference() -> None:
    # decoding, validation and job creation are where openjd-model's engine also moved: the
    # same jobs, tasks and refusals (word for word) as in the reference's interpreter
    templates = [make() for make in CASES.values()] + edge_templates()
    ours = subprocess.run([sys.executable, "-c", CREATE, json.dumps([templates])],
                          capture_output=True, text=True, timeout=120, check=True)
    theirs = reference_python(CREATE, templates)
    assert isinstance(theirs, list)
    assert {"job", "error"} == {kind for kind, *_ in theirs}
    assert json.loads(ours.stdout) == theirs
