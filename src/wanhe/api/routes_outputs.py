"""`GET /api/jobs/{id}/checksums`: the SHA-256 of every finished output of a job.

Clients that download outputs (the Blender add-on) verify each file against this. Hashes are
kept in memory per (job, path, size, modified), so a job's files are read once however often
clients ask; a file replaced since (a progressive preview) is hashed again.
"""

from __future__ import annotations

import threading
from pathlib import Path

from fastapi import APIRouter, Depends
from pydantic import BaseModel

from wanhe.api.auth import Principal, principal
from wanhe.api.deps import get_service
from wanhe.api.routes_jobs import visible_job
from wanhe.api.service import Service
from wanhe.storage import StoredFile, UnsafePath, sha256_file

router = APIRouter(tags=["jobs"])

_CACHE_LIMIT = 100_000
_cache: dict[tuple[int, str, int, float], str] = {}
_lock = threading.Lock()


class OutputChecksum(BaseModel):
    path: str
    bytes: int
    sha256: str


class OutputChecksums(BaseModel):
    job_id: int
    files: list[OutputChecksum]


def _hash(service: Service, job_id: int, file: StoredFile) -> str | None:
    key = (job_id, file.path, file.size, file.modified)
    with _lock:
        known = _cache.get(key)
    if known is not None:
        return known
    try:
        local = service.storage.local_output(job_id, file.path)
        if local is not None:
            digest = sha256_file(local)
        else:
            copy: Path = service.storage.fetch_output(job_id, file.path, service.work.tmp)
            try:
                digest = sha256_file(copy)
            finally:
                copy.unlink(missing_ok=True)
    except (FileNotFoundError, UnsafePath):  # replaced or removed between listing and reading
        return None
    with _lock:
        if len(_cache) >= _CACHE_LIMIT:
            _cache.clear()
        _cache[key] = digest
    return digest


@router.get("/api/jobs/{job_id}/checksums", response_model=OutputChecksums)
def checksums(
    job_id: int, who: Principal = Depends(principal), service: Service = Depends(get_service)
) -> OutputChecksums:
    """Path, size and SHA-256 of each output file the job has so far."""
    job = visible_job(service, who, job_id)
    service.settle_outputs(job.id)
    files: list[OutputChecksum] = []
    for file in service.storage.outputs(job.id):  # StorageUnavailable: the app's 503
        digest = _hash(service, job.id, file)
        if digest is not None:
            files.append(OutputChecksum(path=file.path, bytes=file.size, sha256=digest))
    return OutputChecksums(job_id=job.id, files=files)
