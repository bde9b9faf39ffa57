"""The public OpenJD sample templates, as users try them first: our own equivalents of those a
farm can run here (no Windows, no Docker; the samples themselves are not copied into the
repository) run with `wanhe run` and with `openjd run` (openjd-cli, in its own virtualenv:
tests/openjd/_reference.py) on the same machine, and leave the same files, byte for byte.

Equivalents of the samples in OpenJobDescription/openjd-specifications, samples/v2023-09/
job_templates/: stdout-messages (progress, status), task-parameter-definition-showcase
(ranges with steps, compound ranges, lists, FLOAT, STRING, PATH with path mapping, products,
associations), path-mapping (Session.PathMappingRulesFile), host-requirements (with what
this machine has) and ffmpeg (frames made and encoded by ffmpeg). Each action writes what
the sample prints into the job's output folder, so the outputs can be compared.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.openjd._reference import openjd_exe
from tests.openjd._util import step, template, write_yaml

pytestmark = [pytest.mark.slow, pytest.mark.timeout(300)]
OUT = [{"name": "Out", "type": "PATH", "objectType": "DIRECTORY", "dataFlow": "OUT"}]
RULES = {"version": "pathmapping-1.0", "path_mapping_rules": [
    {"source_path_format": "POSIX", "source_path": "/mnt/drive",
     "destination_path": "/mnt/remapped_drive"}]}


def _write(name: str, text: str) -> str:
    """Shell that appends `text` (expanded by the shell) to Out/name."""
    return f"mkdir -p {{{{Param.Out}}}}; echo \"{text}\" >> {{{{Param.Out}}}}/{name}"


def stdout_messages() -> dict[str, Any]:
    script = ("import pathlib, sys\n"
              "out = pathlib.Path(sys.argv[1]); out.mkdir(parents=True, exist_ok=True)\n"
              "for line in ['openjd_progress: 0.0', 'openjd_status: Loading the things',\n"
              "             'openjd_progress: 50.0', 'openjd_status: Processing the things',\n"
              "             'openjd_progress: 100']:\n"
              "    print(line, flush=True)\n"
              "    with open(out / 'messages.txt', 'a') as f: f.write(line + '\\n')\n")
    return template(name="ShowOffStdoutMessages", params=OUT, steps=[{
        "name": "Demo",
        "script": {"actions": {"onRun": {"command": "python3",
                                         "args": ["{{Task.File.Run}}", "{{Param.Out}}"]}},
                   "embeddedFiles": [{"name": "Run", "type": "TEXT", "runnable": True,
                                      "data": "#!/usr/bin/env python3\n" + script}]}}])


def showcase() -> dict[str, Any]:
    def echo_step(name: str, params: list[dict[str, Any]], text: str,
                  combination: str | None = None) -> dict[str, Any]:
        made = step(name, _write(name.replace(" ", "_") + ".txt", text), params=params)
        if combination:
            made["parameterSpace"]["combination"] = combination
        return made

    foo = "{{Task.Param.Foo}}"
    return template(
        name="Showcase of value definitions for task parameters",
        params=[*OUT, {"name": "IntRange", "type": "STRING", "default": "1-5"},
                {"name": "IntValue", "type": "INT", "default": 10},
                {"name": "FloatValue", "type": "FLOAT", "default": 10.4},
                {"name": "PathValueAsString", "type": "STRING",
                 "default": "/mnt/drive/dir/string_file"},
                {"name": "PathValue", "type": "PATH"}],
        steps=[
            echo_step("Range is a format string", [
                {"name": "Foo", "type": "INT", "range": "{{Param.IntRange}}"}], foo),
            echo_step("Range with a skip", [
                {"name": "Foo", "type": "INT", "range": "1-100:10"}], foo),
            echo_step("Compound range", [
                {"name": "Foo", "type": "INT", "range": "50, 60-100:5, 1-10"}], foo),
            echo_step("List of integers", [
                {"name": "Foo", "type": "INT", "range": [1, 2, "3", "{{Param.IntValue}}"]}],
                foo),
            echo_step("List of floats", [
                {"name": "Foo", "type": "FLOAT",
                 "range": [1, 2.2, "3", "4.5", "{{Param.FloatValue}}"]}], foo),
            echo_step("List of strings", [
                {"name": "Foo", "type": "STRING",
                 "range": ["one", "two, three, four", "{{Param.IntRange}}"]}], foo),
            echo_step("List of paths", [
                {"name": "Foo", "type": "PATH",
                 "range": ["/mnt/drive/dir/file1", "{{Param.PathValueAsString}}",
                           "{{RawParam.PathValue}}"]}],
                "Mapped Path: " + foo + " -- Raw Value: {{Task.RawParam.Foo}}"),
            echo_step("Cartesian product", [
                {"name": "Foo", "type": "INT", "range": "1-2"},
                {"name": "Bar", "type": "STRING", "range": ["one", "two", "three"]}],
                "Foo=" + foo + " -- Bar={{Task.Param.Bar}}", "Foo * Bar"),
            echo_step("Association", [
                {"name": "Foo", "type": "INT", "range": "1-3"},
                {"name": "Bar", "type": "STRING", "range": ["one", "two", "three"]}],
                "Foo=" + foo + " -- Bar={{Task.Param.Bar}}", "(Foo, Bar)"),
            echo_step("Mix of operators", [
                {"name": "Foo", "type": "INT", "range": "1-4"},
                {"name": "Bar", "type": "STRING", "range": ["one", "two"]},
                {"name": "Buz", "type": "STRING", "range": ["Buz1", "Buz2"]}],
                "Foo=" + foo + " -- Bar={{Task.Param.Bar}} -- Buz={{Task.Param.Buz}}",
                "(Foo, Bar*Buz)"),
        ])


def path_mapping() -> dict[str, Any]:
    return template(name="ViewPathMappingFile", params=OUT, steps=[{
        "name": "PrintRules",
        "script": {"actions": {"onRun": {"command": "bash", "args": ["{{Task.File.Print}}"]}},
                   "embeddedFiles": [{"name": "Print", "type": "TEXT", "data": (
                       "#!/bin/bash\nmkdir -p '{{Param.Out}}'\n"
                       "if test '{{Session.HasPathMappingRules}}' = 'true'; then\n"
                       "  cat '{{Session.PathMappingRulesFile}}' > '{{Param.Out}}/rules.json'\n"
                       "else\n  echo 'No path mapping rules' > '{{Param.Out}}/rules.json'\n"
                       "fi\n")}]}}])


def host_requirements() -> dict[str, Any]:
    return template(name="DemoHostRequirements", params=OUT, steps=[
        step("StepOne", _write("one.txt", "This is StepOne - it is light on resources"),
             hostRequirements={
                 "amounts": [{"name": "amount.worker.vcpu", "min": 1, "max": 1},
                             {"name": "amount.worker.memory", "min": 256, "max": 1024}],
                 "attributes": [{"name": "attr.worker.os.family",
                                 "anyOf": ["linux", "macos"]}]}),
        step("StepTwo", _write("two.txt", "This is StepTwo - heavier on resources"),
             hostRequirements={"amounts": [{"name": "amount.worker.memory", "min": 64}],
                               "attributes": [{"name": "attr.worker.os.family",
                                               "anyOf": ["linux"]}]}),
    ])


def ffmpeg() -> dict[str, Any]:
    frames = ("mkdir -p {{Param.Out}}/frames; ffmpeg -nostdin -loglevel error -y -f lavfi "
              "-i testsrc=size=64x48:rate=1:duration=4 -vf \"select=eq(n\\,{{Task.Param.F}}-1)\""
              " -frames:v 1 -fflags +bitexact -flags +bitexact "
              "{{Param.Out}}/frames/f{{Task.Param.F}}.png")
    encode = ("ffmpeg -nostdin -loglevel error -y -framerate 1 -i {{Param.Out}}/frames/f%d.png "
              "-fflags +bitexact -flags +bitexact -pix_fmt yuv420p {{Param.Out}}/movie.y4m")
    return template(name="FFmpeg", params=OUT, steps=[
        step("Frames", frames, params=[{"name": "F", "type": "INT", "range": "1-4"}]),
        step("Encode", encode, dependencies=[{"dependsOn": "Frames"}]),
    ])


def task_chunking() -> dict[str, Any]:
    """Not a public sample: the TASK_CHUNKING extension wanhe accepts (default chunk size)."""
    doc = template(name="Chunks", params=OUT, steps=[step(
        "R", _write("chunks.txt", "{{Task.Param.Frame}}"),
        params=[{"name": "Frame", "type": "CHUNK[INT]", "range": "1-10",
                 "chunks": {"defaultTaskCount": 3, "rangeConstraint": "CONTIGUOUS"}}])])
    return {**doc, "extensions": ["TASK_CHUNKING"]}


SAMPLES = {"stdout-messages": (stdout_messages, {}),
           "task-parameter-definition-showcase": (showcase,
                                                  {"PathValue": "/mnt/drive/dir/path_file"}),
           "path-mapping": (path_mapping, {}),
           "host-requirements": (host_requirements, {}),
           "ffmpeg": (ffmpeg, {}),
           "task-chunking": (task_chunking, {})}


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def sorted_lines(files: dict[str, bytes]) -> dict[str, list[bytes]]:
    """Tasks run in no promised order (the spec says so): compare appended lines as sets."""
    return {k: sorted(v.splitlines()) for k, v in files.items()}


@pytest.mark.skipif(shutil.which("ffmpeg") is None,
                    reason="needs Debian's ffmpeg: make test installs it")
@pytest.mark.parametrize("name", list(SAMPLES))
def test_sample_equivalent_matches_openjd_run(name: str, tmp_path: Path) -> None:
    make, values = SAMPLES[name]
    path = write_yaml(tmp_path / f"{name}.yaml", make())
    rules = tmp_path / "rules.json"
    rules.write_text(json.dumps(RULES))
    params = [f"{k}={v}" for k, v in values.items()]
    theirs, ours = tmp_path / "openjd-out", tmp_path / "wanhe-out"
    ran = subprocess.run(
        [openjd_exe(), "run", str(path), "--path-mapping-rules", f"file://{rules}",
         "-p", f"Out={theirs}", *[a for p in params for a in ("-p", p)]],
        capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert ran.returncode == 0, ran.stdout[-3000:] + ran.stderr[-2000:]
    env = {**os.environ, "WANHE_PATH_MAPPING": str(rules), "WANHE_HOME": str(tmp_path / "h")}
    report = tmp_path / "report.json"
    wanhe = subprocess.run(
        [sys.executable, "-m", "wanhe.cli", "run", "--template", str(path), "-q",
         "--db", f"sqlite:///{tmp_path / 'w.db'}", "--report-json", str(report),
         "-p", f"Out={ours}", *[a for p in params for a in ("-p", p)]],
        capture_output=True, text=True, timeout=180, cwd=tmp_path, env=env)
    assert wanhe.returncode == 0, wanhe.stdout[-3000:] + wanhe.stderr[-3000:]
    mine, reference = tree(ours), tree(theirs)
    assert reference, "openjd run wrote nothing"
    assert sorted_lines(mine) == sorted_lines(reference)
    if name == "ffmpeg":
        assert mine == reference  # frames and the encode, bit for bit
    if name == "stdout-messages":
        tasks = json.loads(report.read_text())["tasks"]
        assert tasks[0]["status"] == "Processing the things"
    if name == "path-mapping":
        assert json.loads(mine["rules.json"])["path_mapping_rules"][0]["source_path"] \
            == "/mnt/drive"
