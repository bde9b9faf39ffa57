"""The add-on's HTTP client (urllib only): each failure is one line a Blender report shows;
the legacy path (no Blender extension system) imports BAT from the bundled wheel's zip."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.api._service import free_port
from wanhe.addon.build import build
from wanhe.addon.wanhe_farm.farm import TOKEN_FIX, Farm, FarmError, Unreachable
from wanhe.transfer.refusal import describe_refusal as describe


def describe_refusal(status: int, body: bytes) -> str:
    return describe(status, body, token_fix=TOKEN_FIX)


def test_refusals_are_one_line() -> None:
    assert describe_refusal(401, b'{"detail":"bad token"}').startswith(
        "the farm refused the token")
    body = (b'{"detail":[{"loc":["body","options","frames"],"msg":"malformed frame range",'
            b'"type":"value_error"}]}')
    assert describe_refusal(422, body) == (
        "the farm refused the values: options.frames: malformed frame range")
    assert describe_refusal(409, b'{"detail":"job 3 is done; it cannot be paused"}') == (
        "job 3 is done; it cannot be paused")
    assert "\n" not in describe_refusal(500, b"<html>\n\n  oops\n</html>")


def test_settings_and_unreachable_server() -> None:
    with pytest.raises(FarmError, match="no API token"):
        Farm("http://127.0.0.1:1", " ")
    with pytest.raises(FarmError, match="must start with http"):
        Farm("127.0.0.1:8640", "t")
    farm = Farm(f"http://127.0.0.1:{free_port()}/", "t", timeout=5)
    assert farm.dashboard_url(7).endswith("/#/jobs/7") and "//#" not in farm.dashboard_url(7)
    with pytest.raises(Unreachable, match=r"cannot reach the farm at http://127\.0\.0\.1:"):
        farm.me()


_LEGACY = """
import sys
sys.path[:] = [p for p in sys.path if 'site-packages' not in p] + [sys.argv[1]]
import wanhe_farm
added = wanhe_farm.bundled_wheels_on_path()
assert len(added) == 1 and added[0].endswith('.whl'), added
from wanhe_farm.shared import pack as packing
assert packing.__name__ == 'wanhe_farm._transfer.pack', packing.__name__  # the zip's copy
import blender_asset_tracer
assert blender_asset_tracer.__file__.startswith(added[0]), blender_asset_tracer.__file__
try:
    import wanhe
except ImportError:
    pass
else:
    raise SystemExit('wanhe importable')
try:
    packing.collect(__import__('pathlib').Path(sys.argv[2]))
except packing.PackError as exc:
    print('PACKERROR', exc)
"""


def test_legacy_install_imports_bat_from_the_wheel(tmp_path: Path) -> None:
    """As Blender < 4.2 loads it (a legacy add-on: nobody installs the wheels), with only
    Python's standard library: the add-on puts its wheel on sys.path; a file that is not a
    .blend gives a one-line PackError."""
    with zipfile.ZipFile(build(tmp_path / "dist")) as zf:
        zf.extractall(tmp_path / "addons")
    bogus = tmp_path / "not_a_scene.blend"
    bogus.write_bytes(b"hello")
    proc = subprocess.run([sys.executable, "-I", "-S", "-c", _LEGACY,
                           str(tmp_path / "addons"), str(bogus)],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    line = proc.stdout.strip()
    assert line.startswith("PACKERROR cannot pack not_a_scene.blend: ") and "\n" not in line
