"""Blender's command line, parsed: order kept, Blender's frame syntax, clear refusals (pure)."""

from __future__ import annotations

import pytest

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
