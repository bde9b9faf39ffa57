"""Blender's command line, parsed: order kept, Blender's frame syntax, clear refusals (pure)."""

from __future__ import annotations

import os
import stat
import subprocess
from pathlib import Path

import pytest

from wanhe.blender_cli import main, python_allowed, shim_dir
from wanhe.blender_cli.args import (
    MAX_FRAME,
    Action,
    CliError,
    parse_args,
    parse_frame_list,
    parse_relative,
)


def test_actions_keep_blenders_left_to_right_order() -> None:
    p = parse_args(["-o", "//a_", "-b", "s.blend", "-E", "CYCLES", "-f", "1",
                    "-o", "//b_", "-x", "0", "-F", "PNG", "-a", "--", "--x", "1"])
    assert p.actions == [
        Action("output", "//a_", "-o"), Action("load", "s.blend", "s.blend"),
        Action("engine", "CYCLES", "-E"), Action("frames", "1", "-f"),
        Action("output", "//b_", "-o"), Action("extension", "0", "-x"),
        Action("format", "PNG", "-F"), Action("anim", "", "-a"),
    ]
    assert p.script_args == ["--x", "1"]
    assert not p.runs_python


def test_long_forms_and_no_ops() -> None:
    p = parse_args(["--background", "--factory-startup", "-Y", "--render-output", "x",
                    "--render-format", "OPEN_EXR_MULTILAYER", "--use-extension", "1",
                    "--frame-start", "2", "--frame-end", "-1", "--frame-jump", "2",
                    "--threads", "0", "--engine", "BLENDER_EEVEE", "--render-anim"])
    assert [a.op for a in p.actions] == ["output", "format", "extension", "start", "end",
                                         "step", "threads", "engine", "anim"]


@pytest.mark.parametrize(("argv", "needle"), [
    (["-F", "GIF"], "not a format"),
    (["-x", "2"], "0 or 1"),
    (["-t", "many"], "whole number"),
    (["-t", "2000"], "to 1024"),
    (["-f"], "needs a value"),
    (["-f", "1..x"], "frame number"),
    (["-f", "5..2"], "runs backwards"),
    (["-j", "0"], "at least 1"),
    (["--bogus"], "unknown argument '--bogus'"),
    (["--python-exit-code", "300"], "0-255"),
])
def test_bad_arguments_are_named(argv: list[str], needle: str) -> None:
    with pytest.raises(CliError, match=needle):
        parse_args(argv)


def test_frame_lists_like_blender() -> None:
    assert parse_frame_list("1,3,5..7", 1, 10) == [1, 3, 5, 6, 7]
    assert parse_frame_list("+0..-0", 4, 6) == [4, 5, 6]  # the scene's whole range
    assert parse_frame_list("+2", 10, 20) == [12]
    assert parse_frame_list("-1", 10, 20) == [19]
    assert parse_relative("99999999", 1, 1) == MAX_FRAME  # clamped, as Blender does


def test_autoexec_is_never_enabled() -> None:
    p = parse_args(["-y", "s.blend"])
    assert p.actions == [Action("load", "s.blend", "s.blend")]
    assert "never run" in p.warnings[0]


def test_python_refused_unless_the_farm_allows(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("WANHE_ALLOW_BLENDER_PYTHON", raising=False)
    for flag in ("--python-expr", "--python", "-P", "--python-text"):
        assert main(["-b", "x.blend", flag, "print(1)"]) == 1
        err = capsys.readouterr().err
        assert f"{flag} refused" in err and "WANHE_ALLOW_BLENDER_PYTHON=1" in err
    assert not python_allowed({"WANHE_ALLOW_BLENDER_PYTHON": "0"})
    assert python_allowed({"WANHE_ALLOW_BLENDER_PYTHON": "1"})


def test_bad_argument_exits_1_with_blenders_error_prefix(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["-b", "x.blend", "-F", "GIF"]) == 1
    assert capsys.readouterr().err.startswith("Error: -F 'GIF' is not a format")


def test_shim_dir_holds_an_executable_blender(tmp_path: Path) -> None:
    folder = shim_dir(tmp_path)
    script = folder / "blender"
    assert script.stat().st_mode & stat.S_IXUSR
    assert shim_dir(tmp_path) == folder  # idempotent
    env = {**os.environ, "PATH": f"{folder}{os.pathsep}{os.environ['PATH']}"}
    out = subprocess.run(["blender", "--version"], env=env, capture_output=True, text=True,
                         timeout=60, check=True)
    assert out.stdout.startswith("Blender 5.0")
    assert shim_dir(tmp_path, python="/other/python") != folder


def test_session_blender_prefers_a_configured_binary(tmp_path: Path) -> None:
    from wanhe.blender_cli import session_blender

    fake = tmp_path / "my-blender-5.1"
    fake.write_text("#!/bin/sh\necho 'Blender 5.1.0'\n")
    fake.chmod(0o755)
    chosen = session_blender(str(fake), root=tmp_path / "bin")
    assert chosen.binary == str(fake) and chosen.path_prefix is not None
    out = subprocess.run([str(chosen.path_prefix / "blender"), "--version"],
                         capture_output=True, text=True, timeout=30, check=True)
    assert out.stdout.strip() == "Blender 5.1.0"
    with pytest.raises(FileNotFoundError, match="not an executable"):
        session_blender(str(tmp_path / "missing"), root=tmp_path / "bin")


@pytest.mark.parametrize(("reported", "shimmed"), [("Blender 3.4.1", True),
                                                   ("Blender 5.0.1", False),
                                                   ("not blender", True)])
def test_session_blender_on_path_must_be_new_enough(
    tmp_path: Path, reported: str, shimmed: bool
) -> None:
    from wanhe.blender_cli import session_blender

    bindir = tmp_path / "usr-bin"
    bindir.mkdir()
    (bindir / "blender").write_text(f"#!/bin/sh\necho '{reported}'\n")
    (bindir / "blender").chmod(0o755)
    chosen = session_blender(None, str(bindir), root=tmp_path / "bin")
    assert (chosen.path_prefix is not None) is shimmed, chosen.reason
    assert (chosen.binary is None) is shimmed
    empty = session_blender(None, str(tmp_path / "nowhere"), root=tmp_path / "bin")
    assert empty.path_prefix == shim_dir(tmp_path / "bin") and "none on PATH" in empty.reason
