"""Storage: content addressing, verified uploads, materialised inputs and published outputs, the
same against a plain path, a file:// URL, memory:// and a real FTP server on loopback; paths kept
inside; bad locations refused with the fix named."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import fsspec
import pytest

from tests._ftp import ftp_server
from wanhe.storage import (
    HashMismatch,
    Storage,
    StorageError,
    StorageUnavailable,
    TooLarge,
    UnsafePath,
    WorkArea,
    blob_key,
    inside,
    is_url,
    modified_time,
    named_outputs,
    output_key,
    redact,
    safe_relpath,
)

KINDS = ["path", "file-url", "memory", "ftp"]


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _disk_files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink()}


def _memory_files(url: str) -> dict[str, bytes]:
    fs, root = fsspec.core.url_to_fs(url)
    return {name[len(root) + 1:]: fs.cat_file(name) for name in fs.find(root)}


@dataclass
class Placed:
    """A storage under test, its work area, and a raw view of every file the storage holds."""

    storage: Storage
    work: WorkArea
    files: Callable[[], dict[str, bytes]]
    kind: str


@pytest.fixture(params=KINDS)
def placed(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Placed]:
    kind: str = request.param
    work = WorkArea(tmp_path / "work")
    disk = tmp_path / "store"
    if kind == "path":
        yield Placed(Storage(disk, max_blob_bytes=1000), work, lambda: _disk_files(disk), kind)
    elif kind == "file-url":
        storage = Storage(f"file://{disk}", max_blob_bytes=1000, scratch=work.tmp)
        yield Placed(storage, work, lambda: _disk_files(disk), kind)
    elif kind == "memory":
        url = f"memory://wanhe-test-{uuid.uuid4().hex}"
        storage = Storage(url, max_blob_bytes=1000, scratch=work.tmp)
        try:
            yield Placed(storage, work, lambda: _memory_files(url), kind)
        finally:
            fs, root = fsspec.core.url_to_fs(url)
            if fs.exists(root):
                fs.rm(root, recursive=True)
    else:
        with ftp_server(disk) as base:
            storage = Storage(f"{base}/farm", max_blob_bytes=1000, scratch=work.tmp)
            yield Placed(storage, work, lambda: _disk_files(disk / "farm"), kind)


def _blobs_and_outputs(files: dict[str, bytes]) -> dict[str, bytes]:
    """What a storage holds for good: no temporary files, no probes."""
    return {k: v for k, v in files.items() if not k.startswith("tmp/")}


def test_put_has_missing_and_layout(placed: Placed) -> None:
    storage, data = placed.storage, b"hello"
    assert storage.missing([sha(data), sha(data)]) == [sha(data)]
    assert not storage.has(sha(data))
    assert storage.put_bytes(sha(data), data) == 5
    assert storage.has(sha(data)) and storage.missing([sha(data)]) == []
    assert placed.files() == {f"blobs/{sha(data)[:2]}/{sha(data)[2:]}": data}
    # the same bytes again are verified and not stored twice
    assert storage.put_bytes(sha(data), data) == 5
    assert placed.files() == {f"blobs/{sha(data)[:2]}/{sha(data)[2:]}": data}
    assert list(storage.scratch.iterdir()) == []


def test_hash_mismatch_and_size_limit_leave_nothing(placed: Placed) -> None:
    storage = placed.storage
    with pytest.raises(HashMismatch, match="send it again"):
        storage.put_bytes(sha(b"a"), b"b")
    big = b"x" * 1001
    with pytest.raises(TooLarge, match="upload limit"):
        storage.put_bytes(sha(big), big)
    assert not storage.has(sha(b"a")) and not storage.has(sha(big))
    assert placed.files() == {}
    assert list(storage.scratch.iterdir()) == []


def test_an_upload_cut_off_midway_is_never_visible(placed: Placed) -> None:
    data = b"y" * 600

    def cut_off() -> Iterator[bytes]:
        yield data[:300]
        raise ConnectionResetError("client went away")

    with pytest.raises(ConnectionResetError):
        placed.storage.put_chunks(sha(data), cut_off())
    assert not placed.storage.has(sha(data))
    assert placed.files() == {} and list(placed.storage.scratch.iterdir()) == []


@pytest.mark.parametrize("kind", ["memory", "ftp"])
def test_a_transfer_failing_midway_leaves_no_half_blob(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """The bytes go to tmp/ first and are moved to their name only once complete; the failure
    names the storage (StorageUnavailable: the service answers 503)."""
    data = b"z" * 600

    def half_then_fail(fs: fsspec.AbstractFileSystem, lpath: str, rpath: str,
                       **_: object) -> None:
        fs.pipe_file(rpath, data[:300])
        raise ConnectionResetError("link dropped")

    with contextlib.ExitStack() as stack:
        if kind == "memory":
            url = f"memory://wanhe-test-{uuid.uuid4().hex}"
            files: Callable[[], dict[str, bytes]] = lambda: _memory_files(url)  # noqa: E731
        else:
            url = stack.enter_context(ftp_server(tmp_path / "ftp")) + "/farm"
            files = lambda: _disk_files(tmp_path / "ftp" / "farm")  # noqa: E731
        storage = Storage(url, scratch=tmp_path / "scratch")
        monkeypatch.setattr(type(fsspec.core.url_to_fs(url)[0]), "put_file", half_then_fail)
        with pytest.raises(StorageUnavailable, match=r"failed while writing .*link dropped"):
            storage.put_bytes(sha(data), data)  # tried twice, the second on a new connection
        assert not storage.has(sha(data))
        assert files() == {}  # nothing under its name, and the partial upload is gone


@pytest.mark.parametrize("bad", ["ABC", "x" * 64, "0" * 63, "../" + "0" * 61])
def test_bad_digests(tmp_path: Path, bad: str) -> None:
    with pytest.raises(StorageError, match="SHA-256"):
        Storage(tmp_path / "store").missing([bad])


@pytest.mark.parametrize(
    "bad", ["", "/etc/passwd", "../x", "a/../../x", "a\\b", "C:/x", "a\x00b", ".", "a/" * 600]
)
def test_unsafe_paths(bad: str) -> None:
    with pytest.raises(UnsafePath):
        safe_relpath(bad)


def test_safe_paths_are_cleaned() -> None:
    assert str(safe_relpath("./a//b/./c.blend")) == "a/b/c.blend"


def test_materialise_inputs(placed: Placed) -> None:
    storage, work, data = placed.storage, placed.work, b"scene"
    storage.put_bytes(sha(data), data)
    staging = work.new_staging()
    placed_files = work.materialise_inputs(
        staging, {"shots/a.blend": sha(data), "tex/b.png": sha(data)}, storage)
    assert placed_files["shots/a.blend"].read_bytes() == data
    job = work.adopt(staging, 7)
    copy = job / "input" / "tex" / "b.png"
    assert copy.read_bytes() == data and job == work.job_dir(7)
    local = storage.local_blob(sha(data), work.blob_cache)
    assert os.stat(copy).st_ino == os.stat(local).st_ino  # stored once, hard-linked
    if placed.kind == "path":
        assert local.is_relative_to(storage.local_root)  # type: ignore[arg-type]
    else:  # fetched once into the work area's cache, reused by the next checkout
        assert local.is_relative_to(work.blob_cache)
    assert not any(k.startswith("jobs/") for k in placed.files())  # inputs stay in the work area
    with pytest.raises(StorageError, match="never uploaded"):
        work.materialise_inputs(work.new_staging(), {"x.blend": sha(b"nope")}, storage)
    with pytest.raises(UnsafePath, match="both as a file and as a folder"):
        work.materialise_inputs(work.new_staging(), {"a": sha(data), "a/b": sha(data)}, storage)


def test_publish_list_read_and_unpublish(placed: Placed) -> None:
    storage, work = placed.storage, placed.work
    out = work.output_dir(3)
    (out / "sub").mkdir(parents=True)
    (out / "frame_0001.exr").write_bytes(b"exr")
    (out / "sub" / "preview.mp4").write_bytes(b"mp4 bytes")
    (out / ".frame_0002.tmp-1.exr").write_bytes(b"half")
    for local in work.local_outputs(3):
        storage.publish(out / local.path, 3, local.path)
    assert [(f.path, f.size) for f in storage.outputs(3)] == [
        ("frame_0001.exr", 3), ("sub/preview.mp4", 9)]
    assert _blobs_and_outputs(placed.files()) == {
        "jobs/3/output/frame_0001.exr": b"exr", "jobs/3/output/sub/preview.mp4": b"mp4 bytes"}
    assert storage.output(3, "sub/preview.mp4").size == 9
    copy = storage.fetch_output(3, "frame_0001.exr", work.tmp)
    assert copy.read_bytes() == b"exr"
    copy.unlink()
    storage.unpublish(3, "frame_0001.exr")
    storage.unpublish(3, "never-there.png")
    assert [f.path for f in storage.outputs(3)] == ["sub/preview.mp4"]
    with pytest.raises(FileNotFoundError):
        storage.output(3, "frame_0001.exr")
    with pytest.raises(UnsafePath):
        storage.output(3, "../../blobs/x")
    assert storage.outputs(4) == []


def test_outputs_refuse_symlinks_out(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "store")
    out = tmp_path / "store" / "jobs" / "3" / "output"
    out.mkdir(parents=True)
    (out / "frame_0001.png").write_bytes(b"png")
    secret = tmp_path / "secret"
    secret.write_text("no")
    (out / "leak.png").symlink_to(secret)
    assert storage.local_output(3, "frame_0001.png") == (out / "frame_0001.png").resolve()
    with pytest.raises(UnsafePath):
        storage.local_output(3, "leak.png")
    with pytest.raises(UnsafePath):
        storage.output(3, "../../../secret")
    with pytest.raises(FileNotFoundError):
        storage.local_output(3, "nope.png")
    assert [(f.path, f.size) for f in storage.outputs(3)] == [("frame_0001.png", 3)]
    assert inside(out, "frame_0001.png") == (out / "frame_0001.png").resolve()


def test_plain_path_is_its_own_work_area(tmp_path: Path) -> None:
    storage = Storage(tmp_path / "store")
    assert storage.writes_in_place(tmp_path / "store")
    assert not storage.writes_in_place(tmp_path / "work")
    assert not Storage(f"file://{tmp_path}/store").writes_in_place(tmp_path / "store")
    work = WorkArea(tmp_path / "store")  # the default layout: one folder
    out = work.output_dir(1)
    out.mkdir(parents=True)
    (out / "f.png").write_bytes(b"png")
    storage.publish(out / "f.png", 1, "f.png")  # writing in place: nothing to copy
    assert storage.local_output(1, "f.png") == (out / "f.png").resolve()


# ---------------------------------------------------------------------- bad locations


def test_unknown_protocol_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(StorageUnavailable, match=r"no protocol 'nosuch'.*s3://bucket"):
        Storage("nosuch://bucket/x")


def test_missing_driver_names_the_package() -> None:
    pytest.importorskip("fsspec")
    try:
        import s3fs  # noqa: F401
    except ImportError:
        with pytest.raises(StorageUnavailable, match=r"driver.*pip install s3fs"):
            Storage("s3://bucket/prefix")
    else:
        pytest.skip("s3fs is installed here")


def test_unreachable_server(tmp_path: Path) -> None:
    import socket

    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(StorageUnavailable, match=r"cannot reach storage ftp://u:\*\*\*@"):
        Storage(f"ftp://u:secret@127.0.0.1:{port}/farm")


def test_read_only_ftp_is_refused(tmp_path: Path) -> None:
    with ftp_server(tmp_path / "ro", perm="elr") as base:
        storage = Storage(f"{base}/farm", scratch=tmp_path / "scratch")
        with pytest.raises(StorageUnavailable, match="cannot write to storage") as caught:
            storage.check_writable()
        assert "render-farm" not in str(caught.value)  # the password stays out of messages


def test_unwritable_local_folder(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    with pytest.raises(StorageUnavailable, match=r"cannot create the folder.*--storage"):
        Storage(blocker / "store")
    with pytest.raises(StorageUnavailable, match=r"--work"):
        WorkArea(blocker / "work")


# ---------------------------------------------------------------------- pure policy


def test_locations_and_keys() -> None:
    assert is_url("s3://b/p") and is_url("memory://x") and is_url("simplecache::s3://b")
    assert not is_url("/srv/wanhe") and not is_url("relative/dir") and not is_url("C:/x")
    assert redact("ftp://u:pw@host:21/x") == "ftp://u:***@host:21/x"
    assert redact("s3://bucket/p") == "s3://bucket/p"
    digest = sha(b"x")
    assert blob_key(digest) == f"blobs/{digest[:2]}/{digest[2:]}"
    assert output_key(5, "./a//b.png") == "jobs/5/output/a/b.png"
    with pytest.raises(UnsafePath):
        output_key(5, "../../blobs/x")


def test_named_outputs_finds_files_in_the_output_folder(tmp_path: Path) -> None:
    out = tmp_path / "jobs" / "9" / "output"
    payload = {
        "input": str(out / "frame_0001.exr"), "output": str(out / "frame_0001.png"),
        "scene": str(tmp_path / "jobs" / "9" / "input" / "a.blend"),
        "partial": {"output": str(out / "frame_0001.partial.png"), "width": 64},
        "previews": [str(out / "frame_0001.png"), str(out / "frame_0002.png")],
        "temp": str(out / ".frame.tmp-1.exr"), "escape": str(out / ".." / "work" / "t.exr"),
        "folder": str(out), "engine": "CYCLES", "frame": 1,
    }
    assert named_outputs(payload, out) == [
        "frame_0001.exr", "frame_0001.partial.png", "frame_0001.png", "frame_0002.png"]


def test_modified_time_reads_every_driver_s_field() -> None:
    when = dt.datetime(2025, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
    stamp = when.timestamp()
    assert modified_time({"mtime": stamp}) == stamp
    assert modified_time({"LastModified": when}) == stamp
    assert modified_time({"updated": "2025-01-02T03:04:05Z"}) == stamp
    assert modified_time({"modify": "20250102030405"}) == stamp
    assert modified_time({"created": when.replace(tzinfo=None)}) == stamp
    assert modified_time({"size": 3}) == 0.0


def test_outputs_stay_in_their_jobs_folder_local_and_fsspec(tmp_path: Path) -> None:
    """A link in a job's output folder that points at the storage root or another job is
    refused, though its target lies inside the storage: for a plain path and `file://` alike."""
    for location in (tmp_path / "plain", f"file://{tmp_path}/url"):
        storage = Storage(location)
        root = Path(str(location).removeprefix("file://"))
        alpha = root / "jobs" / "1" / "output"
        beta = root / "jobs" / "2" / "output"
        alpha.mkdir(parents=True)
        beta.mkdir(parents=True)
        (alpha / "frame_0001.png").write_bytes(b"alpha")
        (beta / "store").symlink_to(root)
        (beta / "frame.png").symlink_to(alpha / "frame_0001.png")
        for stolen in ("store/jobs/1/output/frame_0001.png", "frame.png"):
            with pytest.raises(UnsafePath):
                storage.output(2, stolen)
            with pytest.raises(UnsafePath):
                storage.fetch_output(2, stolen, tmp_path / "dl")
        assert storage.output(1, "frame_0001.png").size == 5


def test_a_job_names_only_its_own_inputs(tmp_path: Path) -> None:
    """Resolve, then check: a name that climbs out, an absolute path, and a link inside the
    inputs that points out are refused before anything is opened; a name that stays in is
    the file."""
    from wanhe.storage import OutsideJob, job_input, within_job

    inputs = tmp_path / "staging" / "input"
    (inputs / "board").mkdir(parents=True)
    (inputs / "board" / "a.png").write_bytes(b"png")
    secret = tmp_path / "secret.png"
    secret.write_bytes(b"secret")
    (inputs / "board" / "link.png").symlink_to(secret)
    board = inputs / "board"
    assert job_input(board, "a.png", inputs, "shot 's1' image", "fix") == board / "a.png"
    assert job_input(board, "../board/a.png", inputs, "x", "fix") == board / "a.png"
    for name in ("link.png", "../../../secret.png", str(secret), "/root/.ray/auth_token"):
        with pytest.raises(OutsideJob, match=r"^shot 's1' image .* is outside this job's files "
                                             r"— add it to the storyboard's folder$"):
            job_input(board, name, inputs, "shot 's1' image", "add it to the storyboard's folder")
    job = tmp_path / "jobs" / "2"
    (job / "output").mkdir(parents=True)
    (job / "output" / "c000.png").write_bytes(b"made by an earlier task")
    assert within_job(job / "output" / "c000.png", str(job)) == (job / "output" / "c000.png")
    with pytest.raises(OutsideJob):
        within_job("/root/.ray/auth_token", str(job))
    assert within_job("/anything/of/mine.png", None) == Path("/anything/of/mine.png")  # local
