"""Output folders of a submitted OpenJD job (`wanhe.openjd.dataflow`, `path_rules`): an OUT
folder exists before the session starts, an INOUT one starts as a writable copy of what was
uploaded and its submitter path maps to that copy (not the read-only input), a folder made
before is left as it is."""

from __future__ import annotations

import os
from pathlib import Path

from wanhe.jobtypes.base import JobFolder
from wanhe.jobtypes.openjd import OpenJDOptions, output_folders, path_rules
from wanhe.openjd.dataflow import prepare


def job_folder(root: Path) -> JobFolder:
    folder = JobFolder(root / "job" / "input", root / "job" / "output", root / "job" / "work")
    for f in (folder.input, folder.output, folder.work):
        f.mkdir(parents=True)
    os.chmod(folder.output, 0o2770)
    return folder


def test_out_and_inout_folders_are_made_and_mapped(tmp_path: Path) -> None:
    folder = job_folder(tmp_path)
    (folder.input / "data").mkdir()
    (folder.input / "data" / "in.txt").write_text("x\n")
    os.chmod(folder.input / "data" / "in.txt", 0o440)  # inputs are read-only
    options = OpenJDOptions(template_dir="/home/me/bundle", outputs=[
        "/home/me/bundle/out", "/home/me/bundle/data"], inouts=["/home/me/bundle/data"])
    outputs = output_folders(options, folder)
    assert outputs == [{"dir": str(folder.output / "out0"), "seed": None},
                       {"dir": str(folder.output / "out1"),
                        "seed": str(folder.input / "data")}]
    lines = prepare(outputs)
    assert len(lines) == 2 and "INOUT" in lines[1]
    assert (folder.output / "out0").is_dir()
    copy = folder.output / "out1" / "in.txt"
    assert copy.read_text() == "x\n" and os.stat(copy).st_mode & 0o660 == 0o660  # writable
    assert os.stat(folder.output / "out1").st_mode & 0o070 == 0o070  # the group's, as output/
    assert not list(folder.output.parent.glob(".*.tmp"))  # built aside, renamed into place
    (copy).write_text("changed\n")
    assert prepare(outputs) == [] and copy.read_text() == "changed\n"  # made once
    rules = {r["source_path"]: r["destination_path"] for r in path_rules(options, folder)}
    assert rules["/home/me/bundle/data"] == str(folder.output / "out1")
    assert rules["/home/me/bundle"] == str(folder.input)  # the rest of the bundle


def test_an_inout_folder_outside_the_bundle_maps_to_its_copy_only(tmp_path: Path) -> None:
    folder = job_folder(tmp_path)
    options = OpenJDOptions(template_dir="/b", inputs={"/elsewhere/cache": "_inputs/0-cache",
                                                       "/elsewhere/plate.exr": "_inputs/1-p"},
                            outputs=["/elsewhere/cache"], inouts=["/elsewhere/cache"])
    rules = {r["source_path"]: r["destination_path"] for r in path_rules(options, folder)}
    assert rules["/elsewhere/cache"] == str(folder.output / "out0")
    assert rules["/elsewhere/plate.exr"] == str(folder.input / "_inputs/1-p")
    assert output_folders(options, folder)[0]["seed"] == str(folder.input / "_inputs/0-cache")
