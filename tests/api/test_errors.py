"""The API's refusals (`wanhe.api.errors`): a submission's options are checked by its job type
the same way for a submit and for an estimate, so both answer 422 at the same field."""

from __future__ import annotations

from tests.api.conftest import FAKE_BLEND, Farm


def test_a_submit_and_an_estimate_refuse_bad_options_at_the_same_field(farm: Farm) -> None:
    token = farm.project("a")
    files = farm.upload(token, {"s.blend": FAKE_BLEND})
    body = {"main": "s.blend", "files": files, "options": {"frames": "x-y"}}
    for route in ("/api/jobs", "/api/estimate"):
        r = farm.client.post(route, json=body, headers=farm.auth(token))
        assert r.status_code == 422, (route, r.text)
        (refusal,) = r.json()["detail"]
        assert refusal["loc"] == ["body", "options", "frames"], (route, refusal)
        assert "malformed frame range 'x-y'" in refusal["msg"], (route, refusal)
