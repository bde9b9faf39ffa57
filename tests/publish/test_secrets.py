"""Kitsu credentials at rest: sealed with the service's own key, unreadable without it."""

from __future__ import annotations

from pathlib import Path

import pytest

from wanhe.publish.secrets import KEY_FILE, SecretUnreadable, seal, unseal


def test_credentials_round_trip_and_the_ciphertext_hides_them(tmp_path: Path) -> None:
    home = tmp_path / "home"
    sealed = seal(home, {"email": "bot@studio", "password": "hunter2-long"})
    assert "hunter2" not in sealed and "bot@studio" not in sealed
    assert unseal(home, sealed) == {"email": "bot@studio", "password": "hunter2-long"}
    key = home / KEY_FILE
    assert (key.stat().st_mode & 0o777) == 0o600  # only the service's user reads it
    assert seal(home, {"token": "t"}) != sealed and key.read_bytes() == key.read_bytes()


def test_another_key_cannot_open_them_and_says_to_link_again(tmp_path: Path) -> None:
    sealed = seal(tmp_path / "a", {"token": "secret-token"})
    with pytest.raises(SecretUnreadable, match="wanhe kitsu link"):
        unseal(tmp_path / "b", sealed)
