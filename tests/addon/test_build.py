"""`wanhe addon build`: one folder with the sources, a valid manifest naming the bundled wheel,
a valid pure-Python wheel of blender-asset-tracer, the same bytes every time."""

from __future__ import annotations

import base64
import hashlib
import tomllib
import zipfile
from pathlib import Path

from typer.testing import CliRunner

from wanhe.addon.build import SOURCE, build
from wanhe.cli import app


def test_the_zip_is_an_extension_and_a_legacy_addon(tmp_path: Path) -> None:
    path = build(tmp_path)
    assert path.name == "wanhe_farm-0.1.0.zip"
    with zipfile.ZipFile(path) as zf:
        names = zf.namelist()
        assert {n.split("/")[0] for n in names} == {"wanhe_farm"}
        assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
        manifest = tomllib.loads(zf.read("wanhe_farm/blender_manifest.toml").decode())
        assert manifest["id"] == "wanhe_farm" and manifest["blender_version_min"] == "4.2.0"
        [wheel] = manifest["wheels"]
        assert wheel.startswith("./wheels/blender_asset_tracer-") and wheel.endswith(
            "-py3-none-any.whl")
        assert "network" in manifest["permissions"]
        assert b"bl_info" in zf.read("wanhe_farm/__init__.py")  # legacy add-on too
        sources = {p.relative_to(SOURCE).as_posix() for p in SOURCE.rglob("*.py")
                   if "__pycache__" not in p.parts}
        assert {f"wanhe_farm/{s}" for s in sources} <= set(names)
        whl_bytes = zf.read("wanhe_farm/" + wheel[2:])
    whl_path = tmp_path / "bat.whl"
    whl_path.write_bytes(whl_bytes)
    with zipfile.ZipFile(whl_path) as whl:
        [record_name] = [n for n in whl.namelist() if n.endswith(".dist-info/RECORD")]
        rows = [line.split(",") for line in whl.read(record_name).decode().splitlines()]
        for name, digest, size in rows:
            if name == record_name:
                continue
            data = whl.read(name)
            expect = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
            assert digest == "sha256=" + expect.decode() and int(size) == len(data)
        assert "blender_asset_tracer/trace/__init__.py" in whl.namelist()
    assert build(tmp_path / "again").read_bytes() == path.read_bytes()  # reproducible


def test_cli_writes_the_zip(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["addon", "build", "--output", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert Path(result.stdout.strip()) == tmp_path / "out" / "wanhe_farm-0.1.0.zip"
    assert zipfile.is_zipfile(tmp_path / "out" / "wanhe_farm-0.1.0.zip")


def test_blenders_own_validator_accepts_the_zip(tmp_path: Path) -> None:
    """The extension validator that ships with Blender (in the bpy wheel), run on the zip."""
    import subprocess
    import sys

    from tests.addon._blender import SITE

    [validator] = (SITE / "bpy").glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py")
    proc = subprocess.run([sys.executable, str(validator), "validate", str(build(tmp_path))],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0 and "Success" in proc.stdout, proc.stdout + proc.stderr
