"""wanhe.imaging.atomic: outputs appear complete or not at all."""

from __future__ import annotations

import errno
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from wanhe.imaging import exr as exr_module
from wanhe.imaging.atomic import atomic_write
from wanhe.imaging.errors import OutputError
from wanhe.imaging.exr import read_layers, write_layers

from ._synth import synthetic_frame


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if ".tmp-" in p.name)


def test_success_renames_into_place(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with atomic_write(target) as tmp:
        assert tmp.parent == tmp_path
        assert tmp.name.startswith(".out.bin.tmp-")
        tmp.write_bytes(b"new")
        assert target.read_bytes() == b"old"  # readers still see the old file
    assert target.read_bytes() == b"new"
    assert _leftovers(tmp_path) == []


def test_exception_in_body_removes_temp_and_keeps_old_file(tmp_path: Path) -> None:
    target = tmp_path / "out.bin"
    target.write_bytes(b"old")
    with pytest.raises(ZeroDivisionError), atomic_write(target) as tmp:
        tmp.write_bytes(b"half")
        _ = 1 / 0
    assert target.read_bytes() == b"old"
    assert _leftovers(tmp_path) == []


def test_body_that_writes_nothing_is_an_output_error(tmp_path: Path) -> None:
    with pytest.raises(OutputError, match="produced no file"), atomic_write(tmp_path / "x"):
        pass
    assert not (tmp_path / "x").exists()


def test_missing_folder_names_path_and_fix(tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "frame.exr"
    with pytest.raises(OutputError, match=r"frame\.exr.*create the folder") as info:
        write_layers(synthetic_frame(4, 4), target)
    assert info.value.errno == errno.ENOENT
    assert info.value.path == target


@pytest.fixture
def tiny_tmpfs(tmp_path: Path) -> Iterator[Path]:
    """A real 64 KiB tmpfs (needs root, as in the CI container); skipped elsewhere."""
    mount_point = tmp_path / "tiny"
    mount_point.mkdir()
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if proc.returncode != 0:
        pytest.skip(f"cannot mount tmpfs: {proc.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=False)


def test_disk_full_on_real_tmpfs_leaves_no_partial_file(tiny_tmpfs: Path) -> None:
    frame = synthetic_frame(200, 150, seed=5)  # ~1 MB of random floats: cannot fit in 64 KiB
    target = tiny_tmpfs / "frame.exr"
    with pytest.raises(OutputError, match=r"frame\.exr.*disk .* is full") as info:
        write_layers(frame, target)
    assert info.value.errno == errno.ENOSPC
    assert list(tiny_tmpfs.iterdir()) == []


def test_disk_full_stand_in_leaves_no_partial_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Stand-in for a full disk where no tmpfs can be mounted: the EXR writer raises
    OSError(ENOSPC) after writing part of the file, exactly as it does on a full disk."""
    real_file = exr_module.OpenEXR.File

    class FullDiskFile:
        def __init__(self, *args: object) -> None:
            self._inner = real_file(*args)

        def write(self, stream: object) -> None:
            assert hasattr(stream, "write")
            stream.write(b"partial bytes")  # type: ignore[attr-defined]
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(exr_module.OpenEXR, "File", FullDiskFile)
    target = tmp_path / "frame.exr"
    with pytest.raises(OutputError, match="full") as info:
        write_layers(synthetic_frame(8, 8), target)
    assert info.value.errno == errno.ENOSPC
    assert list(tmp_path.iterdir()) == []


def test_read_only_file_system_keeps_old_file(tmp_path: Path) -> None:
    """A read-only bind mount is read-only even for root (chmod is not)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    write_layers(synthetic_frame(6, 5, seed=1), folder / "frame.exr")
    before = (folder / "frame.exr").read_bytes()
    if os.geteuid() == 0:
        ok = subprocess.run(["mount", "--bind", str(folder), str(folder)], check=False)
        if ok.returncode != 0:
            pytest.skip("cannot bind-mount")
        try:
            subprocess.run(["mount", "-o", "remount,ro,bind", str(folder)], check=True)
            with pytest.raises(OutputError, match="read-only"):
                write_layers(synthetic_frame(6, 5, seed=2), folder / "frame.exr")
        finally:
            subprocess.run(["umount", str(folder)], check=False)
    else:
        folder.chmod(0o555)
        try:
            with pytest.raises(OutputError, match="not writable"):
                write_layers(synthetic_frame(6, 5, seed=2), folder / "frame.exr")
        finally:
            folder.chmod(0o755)
    assert (folder / "frame.exr").read_bytes() == before
    assert _leftovers(folder) == []
    read_layers(folder / "frame.exr")
