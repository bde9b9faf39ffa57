"""A file's SHA-256, read in blocks: how the farm names content (the packer's uploads, the
farm's blobs and outputs). A module of its own, standard library only, so that what only
hashes (`wanhe.storage`) does not load the packer (tarfile, a thread pool) at start-up."""

from __future__ import annotations

import hashlib
from pathlib import Path

_BLOCK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(_BLOCK), b""):
            digest.update(block)
    return digest.hexdigest()
