"""Content-addressed uploads: ask which files are missing, send only those.

`PUT /api/blobs/{sha256}` streams one file (hash verified, size-limited); `POST
/api/blobs/batch` takes a tar of many small files named by their hashes, so thousands of
textures go in a few requests.
"""

from __future__ import annotations

import hashlib
import tarfile
import tempfile
from collections.abc import AsyncIterator

import anyio
from fastapi import APIRouter, Depends, HTTPException, Path, Request

from wanhe.api.auth import Principal, principal
from wanhe.api.schemas import BlobMissing, BlobQuery, BlobStored
from wanhe.api.service import Service, get_service
from wanhe.storage import SHA256_RE, HashMismatch, StorageError, TooLarge

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


@router.post("/api/blobs/missing", response_model=BlobMissing)
def missing(
    body: BlobQuery, _: Principal = Depends(principal), service: Service = Depends(get_service)
) -> BlobMissing:
    return BlobMissing(missing=service.storage.missing(body.hashes))


@router.put(
    "/api/blobs/{sha256}", response_model=BlobStored,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}},
)
async def put_blob(
    request: Request, sha256: str = _SHA_PATH, _: Principal = Depends(principal),
    service: Service = Depends(get_service),
) -> BlobStored:
    limit = service.storage.max_blob_bytes
    _check_length(request, limit)
    if service.storage.has(sha256):
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
    return BlobStored(stored=[sha256], bytes=size)


def _store_tar(service: Service, spool: tempfile.SpooledTemporaryFile[bytes]) -> BlobStored:
    stored: list[str] = []
    total = 0
    try:
        with tarfile.open(fileobj=spool, mode="r|*") as tar:
            for member in tar:
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
                f = tar.extractfile(member)
                assert f is not None
                if service.storage.has(name):
                    continue
                try:
                    total += service.storage.put_file(name, f)
                except TooLarge:
                    raise _too_large(service.storage.max_blob_bytes) from None
                except HashMismatch as exc:
                    raise HTTPException(422, f"tar member {name}: {exc}") from None
                stored.append(name)
    except tarfile.TarError as exc:
        raise HTTPException(400, f"the body is not a readable tar archive ({exc})") from None
    return BlobStored(stored=stored, bytes=total)


@router.post(
    "/api/blobs/batch", response_model=BlobStored,
    openapi_extra={"requestBody": {"required": True, "content": {
        "application/octet-stream": {"schema": {
            "type": "string", "format": "binary",
            "description": "a tar (application/x-tar) of files named by their SHA-256"}}}}},
)
async def put_batch(
    request: Request, _: Principal = Depends(principal), service: Service = Depends(get_service)
) -> BlobStored:
    """A tar (optionally gzip) of regular files, each named by the SHA-256 of its bytes."""
    _check_length(request, BATCH_BODY_LIMIT)
    spool = await _spool(request, BATCH_BODY_LIMIT)
    try:
        return await anyio.to_thread.run_sync(_store_tar, service, spool)
    except StorageError as exc:
        raise HTTPException(422, str(exc)) from None
    finally:
        spool.close()


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
