"""Which `blender` a session gets: the worker's own, a new-enough one on PATH, or the shim."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from wanhe.blender_cli import session_blender, shim_dir


def test_session_blender_prefers_a_configured_binary(tmp_path: Path) -> None:
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
    bindir = tmp_path / "usr-bin"
    bindir.mkdir()
    (bindir / "blender").write_text(f"#!/bin/sh\necho '{reported}'\n")
    (bindir / "blender").chmod(0o755)
    chosen = session_blender(None, str(bindir), root=tmp_path / "bin")
    assert (chosen.path_prefix is not None) is shimmed, chosen.reason
    assert (chosen.binary is None) is shimmed
    empty = session_blender(None, str(tmp_path / "nowhere"), root=tmp_path / "bin")
    assert empty.path_prefix == shim_dir(tmp_path / "bin") and "none on PATH" in empty.reason
