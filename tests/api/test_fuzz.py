"""The API fuzzed from its own OpenAPI schema (schemathesis): no input makes it answer 5xx.

Bounded: a few examples per operation, with an admin token and with a project token, against
an app on a real database holding one (cancelled) job, so ids and paths sometimes exist.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings

from tests.api.conftest import FAKE_BLEND, FAKE_INSPECTORS, farm_settings, sha
from wanhe.api.app import create_app
from wanhe.store.store import Store

TOKENS: dict[str, str] = {}


@pytest.fixture(scope="module")
def api_schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[schemathesis.BaseSchema]:
    tmp: Path = tmp_path_factory.mktemp("fuzz")
    conf = farm_settings(tmp, f"sqlite:///{tmp / 'wanhe.db'}", max_upload_bytes=4096)
    store = Store(conf.db_url)
    TOKENS["admin"] = store.create_token(None, "admin")
    project = store.create_project("fuzz")
    TOKENS["project"] = store.create_token(project.id, "fuzzer")
    store.dispose()
    app = create_app(conf, start_dispatcher=False, inspectors=FAKE_INSPECTORS)
    from fastapi.testclient import TestClient

    with TestClient(app) as client:  # one real job, cancelled so log streams end
        auth = {"Authorization": f"Bearer {TOKENS['project']}"}
        client.put(f"/api/blobs/{sha(FAKE_BLEND)}", content=FAKE_BLEND, headers=auth)
        r = client.post("/api/jobs", headers=auth, json={
            "main": "s.blend", "files": {"s.blend": sha(FAKE_BLEND)}})
        assert r.status_code == 201, r.text
        client.post(f"/api/jobs/{r.json()['id']}/cancel", headers=auth)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        yield schema.exclude(path="/api/events")


FUZZ = settings(max_examples=6, deadline=None, derandomize=True, database=None,
                suppress_health_check=list(HealthCheck))


@pytest.mark.parametrize("who", ["admin", "project"])
def test_no_server_errors(api_schema: schemathesis.BaseSchema, who: str) -> None:
    headers = {"Authorization": f"Bearer {TOKENS[who]}"}
    failures: list[str] = []
    operations = 0
    for result in api_schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @FUZZ
        @given(case=operation.as_strategy())
        def fuzz(case: schemathesis.Case) -> None:
            response = case.call(headers=headers)
            if response.status_code >= 500:
                failures.append(f"{case.method} {case.formatted_path} {case.query} "
                                f"{case.body!r:.200} -> {response.status_code} "
                                f"{response.text[:300]}")

        fuzz()
    assert operations >= 25
    assert failures == []
