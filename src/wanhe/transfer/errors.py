"""The one base of every transfer failure: a line the user can act on, shown as it is."""

from __future__ import annotations


class TransferError(Exception):
    """Something the user can act on, in one line (the farm's refusal, an unreachable farm,
    a file that cannot be packed)."""


class PackError(TransferError):
    """A file that cannot be packed (unreadable, not a .blend, a broken library)."""
