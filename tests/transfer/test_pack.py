"""The one packer through both transports, against a real `wanhe serve`: the CLI's httpx
`Client` (threads) and the add-on's urllib `Farm` (one request at a time) upload what the
farm lacks, small files in a tar batch and a large one alone; a refusal reads the same in
both but for where the token comes from."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.api._service import ServiceProc, make_project, running_farm
from wanhe.addon.wanhe_farm.farm import Farm, FarmError, TokenRefused
from wanhe.api.client import ApiError, Client
from wanhe.transfer.errors import PackError
from wanhe.transfer.pack import SMALL_FILE, Bundle, hash_all, missing_on_farm, upload

pytestmark = pytest.mark.timeout(240)


@pytest.fixture(scope="module")
def service() -> Iterator[ServiceProc]:
    with running_farm("wanhe-transfer-", workers=1, num_cpus=1) as svc:
        yield svc


def _bundle(root: Path, tag: str) -> Bundle:
    files = {f"tex/{i}.png": root / f"{tag}{i}.png" for i in range(3)}
    for i, path in enumerate(files.values()):
        path.write_bytes(f"{tag} small {i}".encode())
    large = root / f"{tag}.vdb"
    large.write_bytes(tag.encode() * (SMALL_FILE // len(tag) + 1))
    files["cache/big.vdb"] = large
    return Bundle(root, "tex/0.png", files)


def test_both_transports_send_only_what_the_farm_lacks(service: ServiceProc,
                                                        tmp_path: Path) -> None:
    token = make_project(service.db_url, "transfer")
    cli_bundle, addon_bundle = _bundle(tmp_path, "cli"), _bundle(tmp_path, "addon")
    size = sum(p.stat().st_size for p in cli_bundle.files.values())
    seen: list[tuple[int, int]] = []
    with Client(service.url, token) as client:
        hash_all(cli_bundle)
        assert upload(client, cli_bundle, on_progress=lambda d, t: seen.append((d, t))) == (
            4, size)
        assert seen[0] == (0, size) and seen[-1] == (size, size) and len(seen) == 3
        assert missing_on_farm(client, list(cli_bundle.hashes.values())) == []
    farm = Farm(service.url, token)
    hash_all(addon_bundle, threads=1)
    assert upload(farm, cli_bundle, threads=1) == (0, 0)  # the CLI sent these already
    assert upload(farm, addon_bundle, threads=1)[0] == 4
    assert missing_on_farm(farm, list(addon_bundle.hashes.values())) == []


def test_a_refusal_in_the_same_words(service: ServiceProc, tmp_path: Path) -> None:
    with pytest.raises(TokenRefused) as addon:
        Farm(service.url, "nope").me()
    with pytest.raises(ApiError) as cli, Client(service.url, "nope") as client:
        client.json("GET", "/api/me")
    assert str(addon.value) == ("the farm refused the token — paste a valid one in the "
                                "add-on's preferences")
    assert str(cli.value) == "the farm refused the token — check WANHE_TOKEN (or --token)"
    token = make_project(service.db_url, "refusals")
    with pytest.raises(FarmError) as addon:
        Farm(service.url, token).post_json("/api/blobs/missing", {"hashes": "x"})
    with pytest.raises(ApiError) as cli, Client(service.url, token) as client:
        client.post_json("/api/blobs/missing", {"hashes": "x"})
    assert str(addon.value) == str(cli.value)
    assert str(cli.value).startswith("the farm refused the values: hashes: ")


def test_an_unreadable_file_is_one_line(tmp_path: Path) -> None:
    bundle = Bundle(tmp_path, "a.blend", {"a.blend": tmp_path / "gone.blend"})
    with pytest.raises(PackError, match=r"^cannot read .*gone\.blend: No such file"):
        hash_all(bundle)
