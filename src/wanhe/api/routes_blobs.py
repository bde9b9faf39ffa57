"""Content-addressed uploads: ask which files are missing, send only those.

`PUT /api/blobs/{sha256}` streams one file (hash verified, size-limited); `POST
/api/blobs/batch` takes a tar of many small files named by their hashes, so thousands of
textures go in a few requests.

Blobs are private to the project that uploaded them. `POST /api/blobs/missing` answers from the
asking project's own uploads, never from what other projects sent, so it cannot be used to learn
whether anyone else has a file; and a job may use only its own project's blobs. A project that
sends bytes another project already stored gets them verified and recorded as its own, while the
storage keeps one copy. Admin tokens belong to no project and cannot submit jobs, so they cannot
upload either (403): upload with the token of the project whose jobs will use the files.
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Request

from wanhe.api.auth import Principal, principal
from wanhe.api.deps import get_service
from wanhe.api.schemas import BlobMissing, BlobQuery, BlobStored
from wanhe.api.service import Service
from wanhe.storage import SHA256_RE, HashMismatch, Storage, StorageError, TooLarge

router = APIRouter(tags=["blobs"])

BATCH_BODY_LIMIT = 1 << 30  # a tar of small files; each member is held to the per-file limit
_SHA_PATH = Path(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of the body, lowercase hex")


def _too_large(limit: int) -> HTTPException:
    return HTTPException(
        413,
        f"upload larger than the server's limit of {limit:,} bytes — split it, or raise "
        "WANHE_MAX_UPLOAD_BYTES on the server",
    )


def _check_length(request: Request, limit: int) -> None:
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > limit:
        raise _too_large(limit)


async def _spool(request: Request, limit: int) -> tempfile.SpooledTemporaryFile[bytes]:
    """The request body in a spooled temp file, refused past `limit` bytes."""
    spool: tempfile.SpooledTemporaryFile[bytes] = tempfile.SpooledTemporaryFile(  # noqa: SIM115
        8 << 20
    )
    size = 0
    stream: AsyncIterator[bytes] = request.stream()
    async for chunk in stream:
        size += len(chunk)
        if size > limit:
            spool.close()
            raise _too_large(limit)
        spool.write(chunk)
    spool.seek(0)
    return spool


def _project_of(who: Principal) -> int:
    if who.project_id is None:
        raise HTTPException(
            403, "an admin token belongs to no project — upload with the token of the project "
            "whose jobs will use the files",
        )
    return who.project_id


@router.post("/api/blobs/missing", response_model=BlobMissing)
def missing(
    body: BlobQuery, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> BlobMissing:
    """The hashes this project has not uploaded (whatever other projects have)."""
    return BlobMissing(missing=service.store.blobs_missing(_project_of(who), body.hashes))


def _already_sent(service: Service, project_id: int, sha256: str) -> bool:
    """Whether this project uploaded the blob and its bytes are still stored."""
    return not service.store.blobs_missing(project_id, [sha256]) and service.storage.has(sha256)


@router.put(
    "/api/blobs/{sha256}", response_model=BlobStored,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def put_blob(
    request: Request, sha256: str = _SHA_PATH, who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> BlobStored:
    project_id = _project_of(who)
    limit = service.storage.max_blob_bytes
    _check_length(request, limit)
    if await anyio.to_thread.run_sync(_already_sent, service, project_id, sha256):
        async for _chunk in request.stream():  # drain: the client may still be sending
            pass
        return BlobStored(stored=[], bytes=0)
    spool = await _spool(request, limit)
    try:
        size = await anyio.to_thread.run_sync(service.storage.put_file, sha256, spool)
    except TooLarge:
        raise _too_large(limit) from None
    except HashMismatch as exc:
        raise HTTPException(422, str(exc)) from None
    finally:
        spool.close()
    await anyio.to_thread.run_sync(service.store.record_blobs, project_id, [(sha256, size)])
    return BlobStored(stored=[sha256], bytes=size)


def _tar_member_name(member: tarfile.TarInfo) -> str:
    """The SHA-256 a tar member is named by; 400 for links, folders and other names."""
    name = member.name.rsplit("/", 1)[-1]
    if not member.isfile():
        kind = "a symlink" if member.issym() or member.islnk() else "not a file"
        raise HTTPException(
            400, f"tar member {member.name!r} is {kind} — send regular files only"
        )
    if not SHA256_RE.match(name) or member.name not in (name, f"./{name}"):
        raise HTTPException(
            400, f"tar member {member.name[:100]!r} must be named by its SHA-256"
        )
    return name


def _verify_tar(
    storage: Storage, spool: tempfile.SpooledTemporaryFile[bytes], verified: dict[str, int]
) -> None:
    """Verify and store every member of the tar, adding each to `verified` (sha -> size)."""
    try:
        with tarfile.open(fileobj=spool, mode="r|*") as tar:
            for member in tar:
                name = _tar_member_name(member)
                f = tar.extractfile(member)
                assert f is not None
                try:
                    verified[name] = storage.put_file(name, f)
                except TooLarge:
                    raise _too_large(storage.max_blob_bytes) from None
                except HashMismatch as exc:
                    raise HTTPException(422, f"tar member {name}: {exc}") from None
    except tarfile.TarError as exc:
        raise HTTPException(400, f"the body is not a readable tar archive ({exc})") from None


def _store_tar(
    service: Service, project_id: int, spool: tempfile.SpooledTemporaryFile[bytes]
) -> BlobStored:
    verified: dict[str, int] = {}
    try:
        _verify_tar(service.storage, spool, verified)
    finally:  # what was verified before a bad member is the project's all the same
        new = service.store.record_blobs(project_id, verified.items())
    return BlobStored(stored=new, bytes=sum(verified[sha] for sha in new))


@router.post(
    "/api/blobs/batch", response_model=BlobStored,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {
            "type": "string", "format": "binary",
            "description": "a tar (application/x-tar) of files named by their SHA-256"}}}}},
)
async def put_batch(
    request: Request, who: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> BlobStored:
    """A tar (optionally gzip) of regular files, each named by the SHA-256 of its bytes."""
    project_id = _project_of(who)
    _check_length(request, BATCH_BODY_LIMIT)
    spool = await _spool(request, BATCH_BODY_LIMIT)
    try:
        return await anyio.to_thread.run_sync(_store_tar, service, project_id, spool)
    except StorageError as exc:
        raise HTTPException(422, str(exc)) from None
    finally:
        spool.close()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
