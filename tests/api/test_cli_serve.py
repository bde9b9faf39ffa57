"""`wanhe serve --storage …` refuses a storage it cannot use, before starting anything, with one
line naming the problem and the fix (no traceback)."""

from __future__ import annotations

import socket
from pathlib import Path

from typer.testing import CliRunner

from tests._ftp import ftp_server
from wanhe.cli import app as wanhe_app


def _serve(tmp_path: Path, storage: str) -> tuple[int, str]:
    result = CliRunner().invoke(
        wanhe_app, ["serve", "--db", f"sqlite:///{tmp_path / 'wanhe.db'}", "--storage", storage,
                    "--port", "1"],
        env={"WANHE_HOME": str(tmp_path / "home")})
    return result.exit_code, " ".join(result.output.split())


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_unknown_protocol(tmp_path: Path) -> None:
    code, text = _serve(tmp_path, "nosuch://bucket/farm")
    assert code == 2, text
    assert "no protocol 'nosuch'" in text and "s3://bucket/prefix" in text
    assert "Traceback" not in text


def test_unreachable_server(tmp_path: Path) -> None:
    code, text = _serve(tmp_path, f"ftp://artist:hunter2@127.0.0.1:{_closed_port()}/farm")
    assert code == 2, text
    assert "cannot reach storage ftp://artist:***@127.0.0.1" in text
    assert "check the address" in text and "hunter2" not in text and "Traceback" not in text


def test_unwritable_storage(tmp_path: Path) -> None:
    with ftp_server(tmp_path / "ftp", perm="elr") as base:
        code, text = _serve(tmp_path, f"{base}/farm")
    assert code == 2, text
    assert "cannot write to storage" in text and "permissions" in text
    assert "Traceback" not in text


def test_unwritable_local_folder(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    code, text = _serve(tmp_path, str(tmp_path / "a-file" / "store"))
    assert code == 2, text
    assert "cannot create the folder" in text and "choose another --storage" in text


def test_a_port_in_use_is_named_with_the_fix(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen(1)
        port = taken.getsockname()[1]
        result = CliRunner().invoke(
            wanhe_app, ["serve", "--db", f"sqlite:///{tmp_path / 'wanhe.db'}", "--storage",
                        str(tmp_path / "storage"), "--port", str(port)],
            env={"WANHE_HOME": str(tmp_path / "home")})
    text = " ".join(result.output.split())
    assert result.exit_code == 2, text
    assert f"cannot listen on 127.0.0.1:{port}" in text and "--port" in text
    assert "Traceback" not in text
