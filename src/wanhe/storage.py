"""Where a farm's files live: durable storage for blobs and finished outputs, and a work area
where Blender and the workers read and write plain files.

**Storage** (`wanhe serve --storage`, `WANHE_STORAGE`) is a plain local path or any fsspec URL
(`file:///srv/wanhe`, `s3://bucket/prefix`, `gs://bucket/prefix`, `ftp://host/path`,
`memory://name`; the cloud protocols need their fsspec driver installed, e.g. `pip install
s3fs`). It holds what must last::

    blobs/ab/cdef…        every uploaded file once, named by its SHA-256 (the first two hex
                          digits make the folder)
    jobs/<id>/output/…    each job's finished deliverables: frame_####.exr / .png, the preview
                          video and its contact sheet
    tmp/                  uploads and publishes in flight

Nothing is ever half-visible: a blob is hashed and size-checked in a local temporary file, then
written under `tmp/` and moved to its name; an output is published the same way.

**The work area** (`--work`, `WANHE_WORK`) is a local folder, or one every worker node mounts
(NFS), because Blender opens a local .blend and tiles are local EXRs::

    jobs/<id>/input/      the job's files materialised from blobs at their relative paths (the
                          .blend opens from here)
    jobs/<id>/output/     what the tasks write; each file is published to storage once the task
                          that wrote it is done
    jobs/<id>/work/       intermediate tiles
    staging/<uuid>/       a checkout before its job has an id
    logs/                 per-attempt task logs
    cache/blobs/ab/…      blobs fetched from a remote storage, kept for the next checkout
    tmp/                  uploads being hashed before they go to storage

With a plain path and no separate work area (the default: both are `~/.wanhe/storage`) they are
one folder: tasks write their outputs in place, publishing is a no-op, and checkouts hard-link
the blobs, so a plain path costs nothing over plain files.

Every path a user names is checked: relative, no `..`, no drive letters or backslashes, no
control characters; every resolved local path must stay inside its folder (a symlink pointing
out is refused).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import shutil
import tempfile
import threading
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, Protocol, TypeVar

from wanhe.config import is_url as is_url  # core owns it; storage's callers may import it here
from wanhe.private import private_folder
from wanhe.transfer.hashing import sha256_file as sha256_file  # the packer's, one hashing

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
MAX_PATH_LENGTH = 1024
MAX_PART_LENGTH = 255
_CHUNK = 1 << 20
_T = TypeVar("_T")
# The progressive preview a frame's sample chunks write (RenderSpec.partial_path); the frame's
# final preview replaces it, so storage drops it too.
TRANSIENT_OUTPUT_SUFFIXES = (".partial.png",)


class StorageError(ValueError):
    """A request the storage refuses; the message says why and what to do."""


class UnsafePath(StorageError):
    """A user-supplied path that would leave its folder (`..`, absolute, symlink out)."""


class TooLarge(StorageError):
    """An upload over the size limit."""


class HashMismatch(StorageError):
    """Uploaded bytes whose SHA-256 is not the one they were sent as."""


class StorageUnavailable(RuntimeError):
    """A storage location that cannot be used: unknown protocol, missing driver, unreachable,
    not writable. A fault of the server's setup, not of a request."""


@dataclass(frozen=True, slots=True)
class StoredFile:
    path: str  # relative to the folder listed, POSIX separators
    size: int
    modified: float  # seconds since the epoch; 0.0 where the storage does not say


# ---------------------------------------------------------------------- pure path policy


def check_sha256(value: str) -> str:
    if not SHA256_RE.match(value):
        raise StorageError(
            f"{value[:80]!r} is not a SHA-256 digest (64 lowercase hex characters)"
        )
    return value


def safe_relpath(path: str) -> PurePosixPath:
    """`path` as a clean relative POSIX path, or UnsafePath saying what is wrong with it."""
    if not path or not path.strip():
        raise UnsafePath("an empty path names no file")
    if len(path) > MAX_PATH_LENGTH:
        raise UnsafePath(f"path longer than {MAX_PATH_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in path):
        raise UnsafePath(f"path {path!r} contains control characters")
    if "\\" in path:
        raise UnsafePath(f"path {path!r} contains a backslash — use / between folders")
    if path.startswith("/") or re.match(r"^[A-Za-z]:", path):
        raise UnsafePath(f"path {path!r} is absolute — send paths relative to the upload root")
    parts = PurePosixPath(path).parts
    if any(p == ".." for p in parts):
        raise UnsafePath(f"path {path!r} climbs out of the upload with '..'")
    clean = [p for p in parts if p not in ("", ".")]
    if not clean:
        raise UnsafePath(f"path {path!r} names no file")
    if any(len(p) > MAX_PART_LENGTH for p in clean):
        raise UnsafePath(f"path {path!r} has a name longer than {MAX_PART_LENGTH} characters")
    return PurePosixPath(*clean)


def redact(location: str) -> str:
    """`location` fit to print: a password in the URL becomes ***."""
    return re.sub(r"^([A-Za-z][A-Za-z0-9+.-]*://[^/@:]*):[^/@]*@", r"\1:***@", location)


def blob_key(sha: str) -> str:
    check_sha256(sha)
    return f"blobs/{sha[:2]}/{sha[2:]}"


def output_key(job_id: int, relative: str) -> str:
    return f"jobs/{int(job_id)}/output/{safe_relpath(relative)}"


def is_transient_output(relative: str) -> bool:
    return relative.endswith(TRANSIENT_OUTPUT_SUFFIXES)


def _visible(relative: PurePosixPath) -> bool:
    """Hidden names are temporary files being written (`.frame.tmp-123.exr`)."""
    return bool(relative.parts) and not any(p.startswith(".") or p == ".." for p in
                                            relative.parts)


def named_outputs(payload: Any, output_dir: Path) -> list[str]:
    """The files a task's payload names inside a job's output folder, as sorted relative paths.

    A task's payload names every file it reads or writes by absolute path; those inside the
    output folder are the ones publishing has to look at once the task is done."""
    base = PurePosixPath(output_dir.as_posix())
    found: set[str] = set()

    def visit(value: Any) -> None:
        if isinstance(value, str):
            try:
                relative = PurePosixPath(value).relative_to(base)
            except ValueError:
                return
            if _visible(relative):
                found.add(relative.as_posix())
        elif isinstance(value, dict):
            for item in value.values():
                visit(item)
        elif isinstance(value, list | tuple):
            for item in value:
                visit(item)

    visit(payload)
    return sorted(found)


def modified_time(info: dict[str, Any]) -> float:
    """When an fsspec `info()` says the file was last written, as epoch seconds (0.0: unknown).

    Filesystems disagree: local has `mtime`, S3 `LastModified`, GCS `updated`, memory `created`,
    FTP `modify` as YYYYMMDDHHMMSS."""
    for key in ("mtime", "LastModified", "updated", "modify", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, dt.datetime):
            stamp = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
            return stamp.timestamp()
        text = str(value)
        try:
            if re.fullmatch(r"\d{14}(\.\d+)?", text):
                return dt.datetime.strptime(text[:14], "%Y%m%d%H%M%S").replace(
                    tzinfo=dt.UTC).timestamp()
            stamp = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            return (stamp if stamp.tzinfo else stamp.replace(tzinfo=dt.UTC)).timestamp()
        except ValueError:
            continue
    return 0.0


# ---------------------------------------------------------------------- local file helpers


def inside(folder: Path, relative: str) -> Path:
    """`folder/relative`, resolved (symlinks followed), refused unless it stays inside `folder`."""
    rel = safe_relpath(relative)
    base = folder.resolve()
    target = (base / rel).resolve()
    if target != base and base not in target.parents:
        raise UnsafePath(f"path {relative!r} leads out of its folder (a symlink?)")
    return target


def confined(folder: Path, relative: str) -> Path:
    """`folder/relative` resolved, refused (UnsafePath) unless it stays inside `folder` and
    `folder` itself is no link: what the files routes use, so a link a task left in its output
    folder never serves a file from outside that folder (another job's, the storage's)."""
    if folder.is_symlink():
        raise UnsafePath(f"folder {folder.name!r} is a link")
    return inside(folder, relative)


class OutsideJob(UnsafePath):
    """A file a farm job names that is not among its own files."""


def job_input(base: Path, named: str, inputs: Path, what: str, fix: str) -> Path:
    """The file `named` (relative to `base`, a folder among the job's inputs) resolved, links
    followed, and refused (OutsideJob: "<what> '<named>' is outside this job's files — <fix>")
    unless it lies inside `inputs`, the job's own input folder. Absolute paths and `..` out
    are refused before anything is opened: on the farm a job names only what it carries."""
    refused = OutsideJob(f"{what} {named[:200]!r} is outside this job's files — {fix}")
    if not named or "\0" in named or os.path.isabs(named):
        raise refused
    root = inputs.resolve()
    target = (base / named).resolve()
    if target != root and root not in target.parents:
        raise refused
    return target


def within_job(path: str | Path, job_root: str | None) -> Path:
    """A path a task's payload names, checked again when the task runs (resolve, then check):
    inside the job's own folder (its inputs, or what an earlier task of the job wrote), else
    OutsideJob before the file is opened. `job_root` None: a local run, whose user may name
    any file of their own."""
    if job_root is None:
        return Path(path)
    root = Path(job_root).resolve()
    target = Path(path).resolve()
    if target != root and root not in target.parents:
        raise OutsideJob(f"{str(path)[:200]!r} is outside this job's files — the farm opens "
                         "only the job's own inputs and what its tasks wrote")
    return target


def _local_files(base: Path) -> Iterator[StoredFile]:
    """Regular, visible files under `base` (symlinks are never listed)."""
    if not base.is_dir():
        return
    for path in sorted(base.rglob("*")):
        relative = PurePosixPath(path.relative_to(base).as_posix())
        if path.is_symlink() or not path.is_file() or not _visible(relative):
            continue
        stat = path.stat()
        yield StoredFile(relative.as_posix(), stat.st_size, stat.st_mtime)


def _make_folders(folders: Iterable[Path], option: str) -> None:
    """The farm's own folders, private to its user (0700; see wanhe.private)."""
    for folder in folders:
        try:
            private_folder(folder)
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot create the folder {folder}: {exc.strerror or exc} — make it writable "
                f"for this user or choose another {option}"
            ) from None


def _link_or_copy(source: Path, target: Path) -> None:
    """Hard-link where the file system allows (stored once), copy otherwise."""
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


# ---------------------------------------------------------------------- storage backends


class _Backend(Protocol):
    """Files by key (`blobs/ab/cdef…`, `jobs/7/output/frame_0001.exr`) in one storage root."""

    def describe(self) -> str: ...

    def local_path(self, key: str) -> Path | None: ...

    def exists(self, key: str) -> bool: ...

    def stat(self, key: str) -> StoredFile | None: ...

    def listing(self, prefix: str) -> list[StoredFile]: ...

    def store(self, local: Path, key: str, *, consume: bool) -> None: ...

    def fetch(self, key: str, target: Path) -> None: ...

    def remove(self, key: str) -> None: ...

    def check_writable(self) -> None: ...

    def confine(self, key: str, folder: str) -> None: ...


class _LocalBackend:
    """A plain folder: renames and hard links, no fsspec in between."""

    def __init__(self, root: Path) -> None:
        self.root = root
        _make_folders([root, *(root / sub for sub in ("blobs", "jobs", "tmp"))], "--storage")

    def describe(self) -> str:
        return str(self.root)

    def local_path(self, key: str) -> Path:
        return inside(self.root, key)

    def exists(self, key: str) -> bool:
        return (self.root / key).is_file()

    def stat(self, key: str) -> StoredFile | None:
        path = self.local_path(key)
        if not path.is_file():
            return None
        stat = path.stat()
        return StoredFile(PurePosixPath(key).name, stat.st_size, stat.st_mtime)

    def listing(self, prefix: str) -> list[StoredFile]:
        return list(_local_files(self.root / prefix))

    def store(self, local: Path, key: str, *, consume: bool) -> None:
        final = self.root / key
        if final.exists() and final.samefile(local):  # the work area is this folder
            return
        final.parent.mkdir(parents=True, exist_ok=True)
        if consume and local.parent.resolve() == (self.root / "tmp").resolve():
            os.replace(local, final)  # same file system: one rename
            return
        fd, name = tempfile.mkstemp(dir=self.root / "tmp", prefix="put-")
        os.close(fd)
        try:
            shutil.copyfile(local, name)
            os.replace(name, final)
        finally:
            Path(name).unlink(missing_ok=True)

    def fetch(self, key: str, target: Path) -> None:
        _link_or_copy(self.root / key, target)

    def confine(self, key: str, folder: str) -> None:
        confined(self.root / folder, PurePosixPath(key).relative_to(folder).as_posix())

    def remove(self, key: str) -> None:
        (self.root / key).unlink(missing_ok=True)

    def check_writable(self) -> None:
        try:
            with tempfile.NamedTemporaryFile(dir=self.root / "tmp", prefix=".probe-"):
                pass
        except OSError as exc:
            raise StorageUnavailable(
                f"cannot write to the storage folder {self.root}: {exc} — give this user write "
                "access or choose another --storage"
            ) from None


class _FsspecBackend:
    """Any fsspec filesystem. Every thread gets its own filesystem object, because some drivers
    (FTP, SFTP) hold one connection that must not carry two requests at once."""

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._made: set[str] = set()
        self.root = self._connect()[1].rstrip("/")

    def _connect(self) -> tuple[Any, str]:
        import fsspec.core

        protocol = self.url.split("://", 1)[0].split("::")[-1]
        try:
            fs, root = fsspec.core.url_to_fs(self.url, skip_instance_cache=True)
        except ValueError as exc:
            if "Protocol not known" in str(exc):
                raise StorageUnavailable(
                    f"storage {redact(self.url)}: fsspec knows no protocol {protocol!r} — use a "
                    "local path or a URL such as file:///srv/wanhe, s3://bucket/prefix, "
                    "gs://bucket/prefix, ftp://host/path"
                ) from None
            raise StorageUnavailable(f"storage {redact(self.url)}: {exc}") from None
        except ImportError as exc:
            raise StorageUnavailable(
                f"storage {redact(self.url)} needs fsspec's {protocol!r} driver ({exc}) — "
                "install it into wanhe's environment, e.g. pip install s3fs or gcsfs"
            ) from None
        except Exception as exc:
            raise StorageUnavailable(
                f"cannot reach storage {redact(self.url)}: {type(exc).__name__}: {exc} — check "
                "the address, the credentials and that the server is up"
            ) from None
        self._local.fs = fs
        return fs, str(root)

    @property
    def fs(self) -> Any:
        fs = getattr(self._local, "fs", None)
        return fs if fs is not None else self._connect()[0]

    def _call(self, doing: str, work: Callable[[Any], _T]) -> _T:
        """`work(fs)`, once more on a fresh connection if the first fails (a connection the
        server dropped, e.g. across its restart, is not reused). A failure of the storage
        server itself (refused, dropped, timed out, credentials refused) becomes
        StorageUnavailable naming the storage and the fix; a missing file stays
        FileNotFoundError."""
        for attempt in (1, 2):
            try:
                return work(self.fs)
            except (FileNotFoundError, StorageUnavailable):
                raise
            except Exception as exc:
                self._local.fs = None
                if attempt == 2:
                    raise StorageUnavailable(
                        f"storage {redact(self.url)} failed while {doing}: "
                        f"{type(exc).__name__}: {exc} — check that the storage server is up "
                        "and reachable, then try again"
                    ) from exc
        raise AssertionError("unreachable")

    def describe(self) -> str:
        return redact(self.url)

    def _path(self, key: str) -> str:
        return f"{self.root}/{key}"

    def _makedirs(self, folder: str) -> None:
        if folder not in self._made:
            self.fs.makedirs(folder, exist_ok=True)
            self._made.add(folder)

    def local_path(self, key: str) -> None:
        return None

    def confine(self, key: str, folder: str) -> None:
        """Object stores have no links; a `file://` storage has, so resolve those."""
        protocol = self.fs.protocol
        protocols = (protocol,) if isinstance(protocol, str) else tuple(protocol)
        if not {"file", "local"} & set(protocols):
            return
        confined(Path(self._path(folder)), PurePosixPath(key).relative_to(folder).as_posix())

    def exists(self, key: str) -> bool:
        return self._call(f"looking for {key}", lambda fs: bool(fs.isfile(self._path(key))))

    def stat(self, key: str) -> StoredFile | None:
        try:
            info = self._call(f"reading {key}", lambda fs: fs.info(self._path(key)))
        except FileNotFoundError:
            return None
        if info.get("type") != "file":
            return None
        return StoredFile(PurePosixPath(key).name, int(info.get("size") or 0),
                          modified_time(info))

    def listing(self, prefix: str) -> list[StoredFile]:
        base = self._path(prefix).rstrip("/")
        try:
            found = self._call(f"listing {prefix}", lambda fs: fs.find(base, detail=True))
        except FileNotFoundError:
            return []
        files: list[StoredFile] = []
        for name, info in sorted(found.items()):
            name = name.rstrip("/")
            if info.get("type") != "file" or not name.startswith(base + "/"):
                continue
            relative = PurePosixPath(name[len(base) + 1:])
            if _visible(relative):
                files.append(StoredFile(relative.as_posix(), int(info.get("size") or 0),
                                        modified_time(info)))
        return files

    def store(self, local: Path, key: str, *, consume: bool) -> None:
        """Upload under tmp/, then move to the key, so no reader sees half a file."""
        final = self._path(key)
        staged = self._path(f"tmp/{uuid.uuid4().hex}")

        def upload(fs: Any) -> None:
            self._makedirs(self._path("tmp"))
            fs.put_file(str(local), staged)
            self._makedirs(final.rsplit("/", 1)[0])
            fs.mv(staged, final)

        try:
            self._call(f"writing {key}", upload)
        except BaseException:
            self._quietly_remove(staged)
            raise
        if consume:
            local.unlink(missing_ok=True)

    def _quietly_remove(self, path: str) -> None:
        try:
            if self.fs.exists(path):
                self.fs.rm_file(path)
        except Exception:  # cleaning up after a failure must not hide the failure
            pass

    def fetch(self, key: str, target: Path) -> None:
        partial = target.with_name(f".{target.name}.part-{uuid.uuid4().hex[:8]}")
        try:
            self._call(f"reading {key}", lambda fs: fs.get_file(self._path(key), str(partial)))
            os.replace(partial, target)
        finally:
            partial.unlink(missing_ok=True)

    def remove(self, key: str) -> None:
        path = self._path(key)

        def remove(fs: Any) -> None:
            if fs.isfile(path):
                fs.rm_file(path)

        self._call(f"removing {key}", remove)

    def check_writable(self) -> None:
        probe = Path(tempfile.mkstemp(prefix="wanhe-probe-")[1])
        key = f"tmp/.probe-{uuid.uuid4().hex}"
        try:
            self.store(probe, key, consume=True)
            self.remove(key)
        except Exception as exc:
            # name the server's own answer, not our wrapping of it
            cause: BaseException = exc
            if isinstance(exc, StorageUnavailable) and exc.__cause__ is not None:
                cause = exc.__cause__
            raise StorageUnavailable(
                f"cannot write to storage {redact(self.url)}: {type(cause).__name__}: {cause} — "
                "check the credentials, the permissions and that the server is up"
            ) from None
        finally:
            probe.unlink(missing_ok=True)


# ---------------------------------------------------------------------- storage


class Storage:
    """Content-addressed blobs and jobs' finished outputs, in a plain folder or behind an fsspec
    URL. Uploads are hashed in a local temporary file first: in a plain folder's own tmp/ (so a
    verified upload is one rename), for a URL in `scratch` (default: the system's temp folder).
    """

    def __init__(
        self, location: str | Path, *, max_blob_bytes: int = 20 * 1024**3,
        scratch: Path | None = None,
    ) -> None:
        text = str(location)
        self.max_blob_bytes = max_blob_bytes
        self._backend: _Backend
        if is_url(text):
            self._backend = _FsspecBackend(text)
            self.local_root: Path | None = None
            self.scratch = scratch or Path(tempfile.gettempdir())
        else:
            self.local_root = Path(text).expanduser().absolute()
            self._backend = _LocalBackend(self.local_root)
            self.scratch = self.local_root / "tmp"
        _make_folders([self.scratch], "--work")

    def describe(self) -> str:
        """Where the storage is, fit to print (no password)."""
        return self._backend.describe()

    def check_writable(self) -> None:
        """StorageUnavailable, naming the fix, unless a file can be written and removed."""
        self._backend.check_writable()

    def writes_in_place(self, work_root: Path) -> bool:
        """Whether tasks writing in this work area already write into storage (a plain path
        that is the work area too): then publishing has nothing to do."""
        return self.local_root is not None and self.local_root == work_root.absolute()

    # ------------------------------------------------------------------ blobs

    def has(self, sha: str) -> bool:
        return self._backend.exists(blob_key(sha))

    def missing(self, hashes: Iterable[str]) -> list[str]:
        """The hashes (validated, de-duplicated, in order) that are not stored yet."""
        seen: dict[str, None] = {}
        for sha in hashes:
            check_sha256(sha)
            seen.setdefault(sha, None)
        return [sha for sha in seen if not self.has(sha)]

    def _spool_verified(self, sha: str, chunks: Iterable[bytes], limit: int) -> Path:
        """The bytes in a local temporary file, refused past `limit` or unless they hash to
        `sha`."""
        digest = hashlib.sha256()
        size = 0
        fd, name = tempfile.mkstemp(dir=self.scratch, prefix="blob-")
        spool = Path(name)
        try:
            with os.fdopen(fd, "wb") as f:
                for chunk in chunks:
                    size += len(chunk)
                    if size > limit:
                        raise TooLarge(
                            f"file is larger than the upload limit of {limit} bytes — "
                            "raise WANHE_MAX_UPLOAD_BYTES on the server or split the file"
                        )
                    digest.update(chunk)
                    f.write(chunk)
            actual = digest.hexdigest()
            if actual != sha:
                raise HashMismatch(
                    f"the uploaded bytes hash to {actual}, not {sha} — the upload was "
                    "corrupted or sent under the wrong name; send it again"
                )
        except BaseException:
            spool.unlink(missing_ok=True)
            raise
        return spool

    def put_chunks(self, sha: str, chunks: Iterable[bytes], *, limit: int | None = None) -> int:
        """Verify bytes that must hash to `sha` and store them once; return their size.

        Hashed and size-checked locally first, then moved into place under the blob's name;
        bytes already stored are verified and dropped (each blob is stored once)."""
        check_sha256(sha)
        spool = self._spool_verified(sha, chunks, self.max_blob_bytes if limit is None else limit)
        try:
            size = spool.stat().st_size
            if not self.has(sha):
                self._backend.store(spool, blob_key(sha), consume=True)
        finally:
            spool.unlink(missing_ok=True)
        return size

    def put_bytes(self, sha: str, data: bytes) -> int:
        return self.put_chunks(sha, [data])

    def put_file(self, sha: str, f: IO[bytes], *, limit: int | None = None) -> int:
        return self.put_chunks(sha, iter(lambda: f.read(_CHUNK), b""), limit=limit)

    def local_blob(self, sha: str, cache: Path) -> Path:
        """A local file holding the blob: the blob itself in a plain-path storage, else a copy
        kept in `cache` (blobs never change, so a cached copy never goes stale and costs no
        round trip). FileNotFoundError when the blob is not stored."""
        key = blob_key(sha)
        own = self._backend.local_path(key)
        if own is not None:
            if not own.is_file():
                raise FileNotFoundError(f"blob {sha} is not stored")
            return own
        cached = cache / sha[:2] / sha[2:]
        if not cached.is_file():
            if not self._backend.exists(key):
                raise FileNotFoundError(f"blob {sha} is not stored")
            cached.parent.mkdir(parents=True, exist_ok=True)
            self._backend.fetch(key, cached)
        return cached

    # ------------------------------------------------------------------ outputs

    def publish(self, local: Path, job_id: int, relative: str) -> None:
        """Copy a finished output from the work area to storage (temp name, then moved)."""
        self._backend.store(local, output_key(job_id, relative), consume=False)

    def unpublish(self, job_id: int, relative: str) -> None:
        self._backend.remove(output_key(job_id, relative))

    def _confined_output_key(self, job_id: int, relative: str) -> str:
        """The output's key, refused (UnsafePath) unless the file, links resolved, lies inside
        this job's own output folder — not merely somewhere in storage."""
        key = output_key(job_id, relative)
        self._backend.confine(key, f"jobs/{int(job_id)}/output")
        return key

    def output(self, job_id: int, relative: str) -> StoredFile:
        """A stored output of a job (UnsafePath, FileNotFoundError)."""
        found = self._backend.stat(self._confined_output_key(job_id, relative))
        if found is None:
            raise FileNotFoundError(relative)
        return StoredFile(str(safe_relpath(relative)), found.size, found.modified)

    def local_output(self, job_id: int, relative: str) -> Path | None:
        """The output's own file in a plain-path storage (symlinks out refused), None for a
        URL storage (read it with `fetch_output`). UnsafePath, FileNotFoundError."""
        path = self._backend.local_path(self._confined_output_key(job_id, relative))
        if path is not None and not path.is_file():
            raise FileNotFoundError(relative)
        return path

    def fetch_output(self, job_id: int, relative: str, folder: Path) -> Path:
        """A local temporary copy of a stored output in `folder`; the caller removes it."""
        self.output(job_id, relative)
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=folder, prefix="download-",
                                    suffix=PurePosixPath(relative).suffix)
        os.close(fd)
        target = Path(name)
        try:
            self._backend.fetch(self._confined_output_key(job_id, relative), target)
        except BaseException:
            target.unlink(missing_ok=True)
            raise
        return target

    def outputs(self, job_id: int) -> list[StoredFile]:
        """Every finished output file of a job (paths relative to its output folder)."""
        return self._backend.listing(f"jobs/{int(job_id)}/output")


# ---------------------------------------------------------------------- work area


class WorkArea:
    """The folder Blender and the workers use: jobs' checked-out inputs, outputs being written,
    tiles, logs. Local, or shared by every worker node (NFS) on a multi-machine cluster."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser().absolute()
        _make_folders([self.root, *(self.root / sub for sub in
                                    ("jobs", "staging", "tmp", "logs", "cache"))], "--work")

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def tmp(self) -> Path:
        return self.root / "tmp"

    @property
    def blob_cache(self) -> Path:
        return self.root / "cache" / "blobs"

    def job_dir(self, job_id: int) -> Path:
        return self.root / "jobs" / str(int(job_id))

    def output_dir(self, job_id: int) -> Path:
        return self.job_dir(job_id) / "output"

    def job_ids(self) -> list[int]:
        """Jobs with a folder here, in id order."""
        base = self.root / "jobs"
        return sorted(int(p.name) for p in base.iterdir() if p.is_dir() and p.name.isdigit())

    def local_outputs(self, job_id: int) -> list[StoredFile]:
        """The finished files tasks have written to a job's output folder so far."""
        return list(_local_files(self.output_dir(job_id)))

    def new_staging(self) -> Path:
        folder = self.root / "staging" / uuid.uuid4().hex
        folder.mkdir(parents=True)
        return folder

    def materialise_inputs(
        self, folder: Path, files: dict[str, str], storage: Storage
    ) -> dict[str, Path]:
        """Put `files` (relative path -> sha256) from storage into `folder/input`; return the
        local paths. Hard links where the file system allows (a blob is stored once however
        many jobs use it), copies otherwise. Refuses unsafe paths, a path used both as file
        and as folder, and blobs that were never uploaded."""
        checked = _checked_inputs(files)
        blobs: dict[str, Path] = {}
        missing: list[str] = []
        for sha in sorted(set(checked.values())):
            try:
                blobs[sha] = storage.local_blob(sha, self.blob_cache)
            except FileNotFoundError:
                missing.append(sha)
        if missing:
            raise StorageError(
                f"{len(missing)} file(s) were never uploaded (first: {missing[0]}) — "
                "upload them with PUT /api/blobs/{sha256} first"
            )
        base = folder / "input"
        base.mkdir(parents=True, exist_ok=True)
        placed: dict[str, Path] = {}
        for name, sha in checked.items():
            target = base / name
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.parent.resolve() != (base.resolve() / name).parent:
                raise UnsafePath(f"path {name!r} leads out of the job's folder")
            _link_or_copy(blobs[sha], target)
            placed[name] = target
        return placed

    def adopt(self, staging: Path, job_id: int) -> Path:
        """Move a staged checkout to its job's folder (one rename); return the job folder."""
        target = self.job_dir(job_id)
        if target.exists():  # left over from an id the database handed out before and rolled back
            trash = self.root / "staging" / f"stale-{job_id}-{uuid.uuid4().hex[:8]}"
            os.replace(target, trash)
            shutil.rmtree(trash, ignore_errors=True)
        os.replace(staging, target)
        return target

    def discard(self, folder: Path) -> None:
        if folder.resolve().is_relative_to(self.root.resolve()):
            shutil.rmtree(folder, ignore_errors=True)


def _checked_inputs(files: dict[str, str]) -> dict[str, str]:
    """`files` with clean paths and checked digests; no path may be both a file and a folder."""
    checked = {str(safe_relpath(p)): check_sha256(sha) for p, sha in files.items()}
    for name in checked:
        parent = PurePosixPath(name).parent
        while str(parent) not in (".", ""):
            if str(parent) in checked:
                raise UnsafePath(f"{parent} is sent both as a file and as a folder")
            parent = parent.parent
    return checked
