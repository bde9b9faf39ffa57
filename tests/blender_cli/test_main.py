"""The command's entry point: Python refused unless the farm allows it, Blender's exit codes."""

from __future__ import annotations

import pytest

from wanhe.blender_cli import main, python_allowed


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
