"""Tracker credentials at rest: encrypted with a key only the service's user can read.

The key is `<home>/kitsu.key` (0600, made on first use); the database holds only ciphertext,
so a copy of the database (a backup, a PostgreSQL dump) does not give away a studio's Kitsu
password. Nothing here ever logs or returns the clear text beyond the caller that decrypts.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken

from wanhe.private import FILE_MODE, private_folder

KEY_FILE = "kitsu.key"


class SecretUnreadable(RuntimeError):
    """The stored credentials do not decrypt with this service's key."""


def _key(home: Path) -> bytes:
    """The service's key, made on first use (0600, written whole or not at all)."""
    path = home / KEY_FILE
    if path.exists():
        return path.read_bytes().strip()
    private_folder(home)
    key = Fernet.generate_key()
    temp = path.with_name(f".{KEY_FILE}.{os.getpid()}")
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, FILE_MODE)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    try:
        os.link(temp, path)  # another process made one first: use theirs
    except FileExistsError:
        pass
    finally:
        temp.unlink(missing_ok=True)
    return path.read_bytes().strip()


def seal(home: Path, credentials: dict[str, str]) -> str:
    """The credentials as ciphertext to store."""
    return Fernet(_key(home)).encrypt(json.dumps(credentials).encode()).decode()


def unseal(home: Path, secret: str) -> dict[str, str]:
    """The credentials back; SecretUnreadable when the key is not the one that sealed them."""
    try:
        data: dict[str, str] = json.loads(Fernet(_key(home)).decrypt(secret.encode()))
    except InvalidToken:
        raise SecretUnreadable(
            f"the stored Kitsu credentials do not decrypt with {home / KEY_FILE} (the key "
            "changed) — link the project again: wanhe kitsu link"
        ) from None
    return data
