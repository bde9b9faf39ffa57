"""Content-addressed storage: hashes verified, paths kept inside, limits enforced."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from wanhe.storage import (
    HashMismatch,
    Storage,
    StorageError,
    TooLarge,
    UnsafePath,
    inside,
    safe_relpath,
)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def storage(tmp_path: Path) -> Storage:
    return Storage(tmp_path / "store", max_blob_bytes=1000)


def test_put_and_missing(storage: Storage) -> None:
    data = b"hello"
    assert storage.missing([sha(data), sha(data)]) == [sha(data)]
    assert storage.put_bytes(sha(data), data) == 5
    assert storage.missing([sha(data)]) == []
    path = storage.blob_path(sha(data))
    assert path.read_bytes() == data
    assert path.parent.name == sha(data)[:2] and path.name == sha(data)[2:]


def test_hash_mismatch_and_size_limit(storage: Storage) -> None:
    with pytest.raises(HashMismatch):
        storage.put_bytes(sha(b"a"), b"b")
    big = b"x" * 1001
    with pytest.raises(TooLarge, match="upload limit"):
        storage.put_bytes(sha(big), big)
    assert not storage.has(sha(b"a")) and not storage.has(sha(big))
    assert list((storage.root / "tmp").iterdir()) == []


@pytest.mark.parametrize("bad", ["ABC", "x" * 64, "0" * 63, "../" + "0" * 61])
def test_bad_digests(storage: Storage, bad: str) -> None:
    with pytest.raises(StorageError, match="SHA-256"):
        storage.missing([bad])


@pytest.mark.parametrize(
    "bad", ["", "/etc/passwd", "../x", "a/../../x", "a\\b", "C:/x", "a\x00b", ".", "a/" * 600]
)
def test_unsafe_paths(bad: str) -> None:
    with pytest.raises(UnsafePath):
        safe_relpath(bad)


def test_safe_paths_are_cleaned() -> None:
    assert str(safe_relpath("./a//b/./c.blend")) == "a/b/c.blend"


def test_checkout_links_blobs(storage: Storage, tmp_path: Path) -> None:
    data = b"scene"
    storage.put_bytes(sha(data), data)
    staging = storage.new_staging()
    placed = storage.checkout(staging, {"shots/a.blend": sha(data), "tex/b.png": sha(data)})
    assert placed["shots/a.blend"].read_bytes() == data
    job = storage.adopt(staging, 7)
    assert (job / "input" / "tex" / "b.png").read_bytes() == data
    assert os.stat(job / "input" / "tex" / "b.png").st_ino == os.stat(
        storage.blob_path(sha(data))).st_ino
    with pytest.raises(StorageError, match="never uploaded"):
        storage.checkout(storage.new_staging(), {"x.blend": sha(b"nope")})
    with pytest.raises(UnsafePath, match="both as a file and as a folder"):
        storage.checkout(storage.new_staging(), {"a": sha(data), "a/b": sha(data)})


def test_outputs_refuse_symlinks_out(storage: Storage, tmp_path: Path) -> None:
    out = storage.output_dir(3)
    out.mkdir(parents=True)
    (out / "frame_0001.png").write_bytes(b"png")
    secret = tmp_path / "secret"
    secret.write_text("no")
    (out / "leak.png").symlink_to(secret)
    assert storage.job_file(3, "frame_0001.png").read_bytes() == b"png"
    with pytest.raises(UnsafePath):
        storage.job_file(3, "leak.png")
    with pytest.raises(UnsafePath):
        storage.job_file(3, "../../../secret")
    with pytest.raises(FileNotFoundError):
        storage.job_file(3, "nope.png")
    assert list(storage.outputs(3)) == [("frame_0001.png", 3)]
    assert inside(out, "frame_0001.png") == (out / "frame_0001.png").resolve()
