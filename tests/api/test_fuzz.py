"""The API fuzzed from its own OpenAPI schema (schemathesis): no input makes it answer 5xx.

Bounded: a few examples per operation, with an admin token and with a project token, against
an app on a real database holding one (cancelled) job, so ids and paths sometimes exist; then
stateful sequences (project -> tokens -> submit -> cancel -> retry ...) with fuzzed inputs.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    rule,
    run_state_machine_as_test,
)

from tests.api.conftest import FAKE_BLEND, FAKE_INSPECTORS, farm_settings, sha
from wanhe.api.app import create_app
from wanhe.store.store import Store

TOKENS: dict[str, str] = {}
STATE_APP: dict[str, TestClient] = {}


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
    with TestClient(app) as client:
        STATE_APP["client"] = client  # one real job, cancelled so log streams end
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


# ---------------------------------------------------------------------------------- stateful
#
# Sequences a user (or an attacker) would run — create a project, mint tokens of each scope,
# submit, cancel, retry, pause, resume, re-prioritise, revoke — with every request's body and
# parameters also fuzzed by schemathesis from the schema, against real ids. Zero 5xx allowed.
# Bounded: a few sequences of a few steps (well under a minute here).


class FarmSequences(RuleBasedStateMachine):
    projects = Bundle("projects")
    tokens = Bundle("tokens")
    jobs = Bundle("jobs")

    def __init__(self) -> None:
        super().__init__()
        self.client: TestClient = STATE["client"]
        self.schema: schemathesis.BaseSchema = STATE["schema"]
        self.failures: list[str] = STATE["failures"]

    def _call(self, method: str, url: str, token: str, **kwargs: Any) -> Any:
        r = self.client.request(method, url, headers={"Authorization": f"Bearer {token}"},
                                **kwargs)
        STATE["seen"].add((method, url.rsplit("/", 1)[-1] if url.startswith("/api/jobs/")
                           else url, r.status_code))
        if r.status_code >= 500:
            self.failures.append(f"{method} {url} {kwargs!r:.200} -> {r.status_code} "
                                 f"{r.text[:300]}")
        return r

    @initialize(target=projects)
    def the_issue_sequence(self) -> str:
        """Every sequence starts the way a user does: project -> token -> submit -> cancel ->
        retry, each answering as it should; the rules then go on at random."""
        STATE["n"] += 1
        r = self._call("POST", "/api/projects", TOKENS["admin"],
                       json={"name": f"seq{STATE['n']}"})
        assert r.status_code == 201, r.text
        first = str(r.json()["token"])
        r = self._call("POST", "/api/tokens", first, json={"name": "ci"})
        assert r.status_code == 201, r.text
        ci = str(r.json()["token"])
        self._call("PUT", f"/api/blobs/{sha(FAKE_BLEND)}", ci, content=FAKE_BLEND)
        r = self._call("POST", "/api/jobs", ci, json={
            "main": "s.blend", "files": {"s.blend": sha(FAKE_BLEND)}})
        assert r.status_code == 201, r.text
        job_id = r.json()["id"]
        assert self._call("POST", f"/api/jobs/{job_id}/cancel", ci).status_code == 200
        assert self._call("POST", f"/api/jobs/{job_id}/retry", ci).status_code == 200
        return first

    @rule(target=projects, name=st.one_of(
        st.from_regex(r"\A[a-z][a-z0-9-]{0,12}\Z"), st.text(max_size=12)))
    def create_project(self, name: str) -> str:
        STATE["n"] += 1
        r = self._call("POST", "/api/projects", TOKENS["admin"],
                       json={"name": f"{name}{STATE['n']}" if name else name})
        return str(r.json()["token"]) if r.status_code == 201 else TOKENS["project"]

    @rule(target=tokens, parent=projects, scope=st.sampled_from(["submit", "manage", "x"]),
          expires=st.one_of(st.none(), st.floats(allow_nan=False, allow_infinity=False),
                            st.integers(-5, 10**9), st.text(max_size=4)))
    def create_token(self, parent: str, scope: str, expires: object) -> str:
        r = self._call("POST", "/api/tokens", parent,
                       json={"scope": scope, "expires_in_s": expires, "name": "seq"})
        return str(r.json()["token"]) if r.status_code == 201 else parent

    @rule(target=jobs, token=st.one_of(projects, tokens),
          options=st.dictionaries(st.sampled_from(
              ["frames", "seed", "task_timeout_s", "tiles", "samples", "priority", "x"]),
              st.one_of(st.integers(-2**70, 2**70), st.floats(allow_nan=False,
                                                              allow_infinity=False),
                        st.text(max_size=5),
                        st.booleans(), st.none()), max_size=3),
          after=st.lists(st.integers(1, 20), max_size=2))
    def submit(self, token: str, options: dict[str, Any], after: list[int]) -> tuple[str, int]:
        self._call("PUT", f"/api/blobs/{sha(FAKE_BLEND)}", token, content=FAKE_BLEND)
        r = self._call("POST", "/api/jobs", token, json={
            "main": "s.blend", "files": {"s.blend": sha(FAKE_BLEND)}, "options": options,
            "depends_on": after})
        if r.status_code != 201:  # the options were refused: a plain job, to go on with
            r = self._call("POST", "/api/jobs", token, json={
                "main": "s.blend", "files": {"s.blend": sha(FAKE_BLEND)}})
        return token, int(r.json()["id"]) if r.status_code == 201 else 1

    @rule(job=jobs, verb=st.sampled_from(["cancel", "retry", "pause", "resume", "cancel"]))
    def control(self, job: tuple[str, int], verb: str) -> None:
        token, job_id = job
        self._call("POST", f"/api/jobs/{job_id}/{verb}", token)

    @rule(job=jobs)
    def cancel_then_retry(self, job: tuple[str, int]) -> None:
        token, job_id = job
        self._call("POST", f"/api/jobs/{job_id}/cancel", token)
        self._call("POST", f"/api/jobs/{job_id}/retry", token)

    @rule(job=jobs, body=st.one_of(
        st.fixed_dictionaries({"priority": st.one_of(
            st.integers(-10, 200), st.booleans(), st.text(max_size=3),
            st.floats(allow_nan=False, allow_infinity=False))}),
        st.dictionaries(st.text(max_size=5), st.integers(), max_size=2)))
    def priority(self, job: tuple[str, int], body: dict[str, Any]) -> None:
        token, job_id = job
        self._call("PATCH", f"/api/jobs/{job_id}", token, json=body)

    @rule(job=jobs, data=st.data(), path=st.sampled_from([
        ("GET", "/api/jobs/{job_id}"), ("GET", "/api/jobs/{job_id}/tasks"),
        ("GET", "/api/jobs/{job_id}/logs"), ("POST", "/api/jobs/{job_id}/retry"),
        ("PATCH", "/api/jobs/{job_id}"), ("GET", "/api/report"),
        ("GET", "/api/usage/timeline"), ("GET", "/api/tokens"), ("POST", "/api/tokens"),
    ]))
    def fuzzed(self, job: tuple[str, int], data: st.DataObject, path: tuple[str, str]) -> None:
        """One request schemathesis makes up for the operation, aimed at a real job."""
        token, job_id = job
        method, template = path
        case = data.draw(self.schema[template][method].as_strategy())
        if case.path_parameters and "job_id" in case.path_parameters:
            case.path_parameters["job_id"] = job_id
        response = case.call(headers={"Authorization": f"Bearer {token}"})
        if response.status_code >= 500:
            self.failures.append(f"{case.method} {case.formatted_path} {case.query} "
                                 f"{case.body!r:.200} -> {response.status_code} "
                                 f"{response.text[:300]}")

    @rule(token=tokens, by=st.one_of(projects, tokens))
    def revoke(self, token: str, by: str) -> None:
        me = self._call("GET", "/api/me", token)
        if me.status_code == 200:
            self._call("DELETE", f"/api/tokens/{me.json()['token_id']}", by)

    @invariant()
    def no_server_errors(self) -> None:
        assert self.failures == []


STATE: dict[str, Any] = {}


def test_stateful_sequences_have_no_server_errors(
    api_schema: schemathesis.BaseSchema,
) -> None:
    STATE.update(client=STATE_APP["client"], schema=api_schema, failures=[], n=0, seen=set())
    began = time.monotonic()
    run_state_machine_as_test(FarmSequences, settings=settings(
        max_examples=25, stateful_step_count=10, deadline=None, derandomize=True,
        database=None, suppress_health_check=list(HealthCheck)))
    assert time.monotonic() - began < 120  # ~25 s on an idle 2-core machine
    assert STATE["failures"] == []
    # the sequences reached the states they are about, not only refusals
    for reached in [("POST", "/api/jobs", 201), ("POST", "cancel", 200),
                    ("POST", "retry", 200), ("POST", "/api/tokens", 201)]:
        assert reached in STATE["seen"], (reached, sorted(STATE["seen"]))
