"""The JSON API over HTTP: tokens, posting an update (durable before it is acknowledged), idempotency, the
ledger, incidents, operator actions, and every refusal in the contract's shape. Each answer is checked
against the OpenAPI document."""

from __future__ import annotations

import asyncio
import sqlite3
from typing import Any

import pytest

from broadcaster.web import errors
from broadcaster.web.api import scoped_idempotency_key
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, OTHER_TOKEN, Service, conforms

UPDATE: dict[str, Any] = {
    "title": "Checkout errors",
    "status": "investigating",
    "message": "Some card payments fail.",
    "components": {"Checkout": "partial_outage"},
}


async def test_no_token_or_a_wrong_one_is_401(service: Service) -> None:
    for headers in ({}, {"Authorization": "Bearer nope"}, {"Authorization": "Basic dXNlcjpwYXNz"}):
        response = await service.client.post("/api/v1/updates", json=UPDATE, headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        body = await response.json()
        conforms(body, "Problem")
        assert "API token" in body["error"]
    assert (await service.client.get("/api/v1/incidents")).status == 401
    assert service.script.calls == []


async def test_an_update_is_journaled_before_it_is_acknowledged(service: Service) -> None:
    response = await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)
    assert response.status == 202
    body = await response.json()
    conforms(body, "UpdateAccepted")
    assert sorted((d["channel"], d["target"]) for d in body["deliveries"]) == [
        ("mirror", "public"),
        ("scripted", "a"),
        ("scripted", "b"),
    ]
    # Another connection (another process, as it were) reads it back at once.
    with sqlite3.connect(service.runtime.settings.service.data_dir / "broadcaster.db") as journal:
        row = journal.execute("SELECT author, message FROM updates WHERE id = ?", (body["update_id"],)).fetchone()
    assert row == ("deploy-bot", "Some card payments fail.")  # the token's name is the author


async def test_the_ledger_shows_every_delivery_as_the_lanes_record_it(service: Service) -> None:
    posted = await (await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)).json()

    async def delivered() -> bool:
        ledger = await (await service.client.get(f"/api/v1/updates/{posted['update_id']}", headers=AUTH)).json()
        return {d["state"] for d in ledger["deliveries"]} == {"delivered"}

    await eventually(delivered)
    response = await service.client.get(f"/api/v1/updates/{posted['update_id']}", headers=AUTH)
    ledger = await response.json()
    conforms(ledger, "UpdateView")
    assert (ledger["author"], ledger["status"], ledger["components"]) == (
        "deploy-bot",
        "investigating",
        {"Checkout": "partial_outage"},
    )
    assert all(d["attempt_log"][0]["outcome"] == "delivered" for d in ledger["deliveries"])
    missing = await service.client.get("/api/v1/updates/0123456789ab", headers=AUTH)
    assert missing.status == 404
    conforms(await missing.json(), "Problem")


async def test_the_same_idempotency_key_makes_one_update_and_other_content_is_a_conflict(service: Service) -> None:
    headers = {**AUTH, "Idempotency-Key": "deploy-2026-12-04-1"}
    first = await service.client.post("/api/v1/updates", json=UPDATE, headers=headers)
    again = await service.client.post("/api/v1/updates", json=dict(reversed(UPDATE.items())), headers=headers)
    assert (first.status, again.status) == (202, 202)
    assert (await again.json())["update_id"] == (await first.json())["update_id"]
    assert again.headers["Idempotent-Replayed"] == "true"
    other = await service.client.post("/api/v1/updates", json={**UPDATE, "message": "Other news."}, headers=headers)
    assert other.status == 409
    body = await other.json()
    conforms(body, "Problem")
    assert "deploy-2026-12-04-1" in body["error"]
    incidents = await (await service.client.get("/api/v1/incidents", headers=AUTH)).json()
    assert len(incidents["incidents"]) == 1


async def test_idempotency_keys_are_each_token_s_own(service: Service) -> None:
    """Two scripts that happen to pick the same key, under different tokens, post two updates."""
    key = {"Idempotency-Key": "deploy-1"}
    mine = await service.client.post("/api/v1/updates", json=UPDATE, headers={**AUTH, **key})
    theirs = await service.client.post(
        "/api/v1/updates", json=UPDATE, headers={"Authorization": f"Bearer {OTHER_TOKEN}", **key}
    )
    assert (mine.status, theirs.status) == (202, 202)
    assert "Idempotent-Replayed" not in theirs.headers
    assert (await mine.json())["update_id"] != (await theirs.json())["update_id"]


def test_no_token_name_and_key_can_stand_for_another_pair() -> None:
    assert scoped_idempotency_key("a", "b:c") != scoped_idempotency_key("a:b", "c")
    assert scoped_idempotency_key("a", "b") == scoped_idempotency_key("a", "b")


async def test_bad_requests_say_what_is_wrong(service: Service) -> None:
    client = service.client
    not_json = await client.post("/api/v1/updates", data=b"{not json", headers=AUTH)
    assert not_json.status == 400
    conforms(await not_json.json(), "Problem")
    assert (await client.post("/api/v1/updates", json=[UPDATE], headers=AUTH)).status == 400
    nested = await client.post("/api/v1/updates", data=b"[" * 30_000 + b"]" * 30_000, headers=AUTH)
    assert (nested.status, (await nested.json())["error"]) == (400, "the body is not an update: JSON nested too deeply")
    wrong = await client.post("/api/v1/updates", json={**UPDATE, "status": "investigatin"}, headers=AUTH)
    assert wrong.status == 422
    body = await wrong.json()
    conforms(body, "Problem")
    assert "status" in body["fields"]
    author = await client.post("/api/v1/updates", json={**UPDATE, "author": "someone else"}, headers=AUTH)
    assert author.status == 422
    assert "set by the service" in (await author.json())["fields"]["author"]
    flag_named = await client.post(
        "/api/v1/updates", json={"incident": "0123456789ab", "status": "identified"}, headers=AUTH
    )
    assert flag_named.status == 422  # `send --incident`, but incident_id here
    assert (await flag_named.json())["error"] == "unknown field 'incident' (did you mean 'incident_id'?)"
    both = await client.post("/api/v1/updates", json={**UPDATE, "incident_id": "0123456789ab"}, headers=AUTH)
    assert both.status == 422
    unknown = await client.post(
        "/api/v1/updates", json={"incident_id": "0123456789ab", "status": "identified", "message": "x"}, headers=AUTH
    )
    assert unknown.status == 404
    assert service.script.calls == []


async def test_an_oversized_body_is_413(service: Service) -> None:
    response = await service.client.post("/api/v1/updates", json={**UPDATE, "message": "x" * 100_000}, headers=AUTH)
    assert response.status == 413
    conforms(await response.json(), "Problem")


async def test_incidents_are_listed_and_read(service: Service) -> None:
    posted = await (await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)).json()
    later = {"incident_id": posted["incident_id"], "status": "identified", "message": "A bad deploy."}
    headers = {"Authorization": f"Bearer {OTHER_TOKEN}"}
    assert (await service.client.post("/api/v1/updates", json=later, headers=headers)).status == 202
    listed = await (await service.client.get("/api/v1/incidents", headers=AUTH)).json()
    conforms(listed, "IncidentList")
    assert [(i["incident_id"], i["status"]) for i in listed["incidents"]] == [(posted["incident_id"], "identified")]
    one = await (await service.client.get(f"/api/v1/incidents/{posted['incident_id']}", headers=AUTH)).json()
    conforms(one, "IncidentView")
    authors = [(u["status"], u["author"]) for u in one["updates"]]
    assert authors == [("investigating", "deploy-bot"), ("identified", "pager")]


async def test_pause_resume_and_retry_act_as_the_cli_does(service: Service) -> None:
    client, store = service.client, service.runtime.store
    paused = await client.post("/api/v1/channels/scripted/pause", json={"target": "a"}, headers=AUTH)
    assert paused.status == 200
    conforms(await paused.json(), "PauseView")
    controls = {(c.channel, c.target): (c.paused, c.reason) for c in await store.controls()}
    assert controls == {("scripted", "a"): (True, "by deploy-bot through the API")}
    assert (await client.post("/api/v1/channels/scripted/resume", json={"target": "a"}, headers=AUTH)).status == 200
    assert [c.paused for c in await store.controls()] == [False]
    unknown = await client.post("/api/v1/channels/carrier-pigeon/pause", headers=AUTH)
    assert unknown.status == 404
    no_target = await client.post("/api/v1/channels/scripted/pause", json={"target": "zz"}, headers=AUTH)
    assert no_target.status == 404
    retried = await client.post("/api/v1/retry", json={}, headers=AUTH)
    assert retried.status == 202
    conforms(await retried.json(), "Requeued")


async def test_the_openapi_document_describes_every_route(service: Service) -> None:
    response = await service.client.get("/api/v1/openapi.json")
    assert response.status == 200
    body = await response.json()
    assert body["openapi"] == "3.1.0"
    described = {f"/api/v1{path}" for path in body["paths"]}
    routed = {
        resource.canonical
        for resource in service.client.app.router.resources()
        if resource.canonical.startswith("/api/v1/") and resource.canonical != "/api/v1/openapi.json"
    }
    assert routed == described
    assert "author" not in body["components"]["schemas"]["UpdateRequest"]["properties"]


async def test_a_post_that_times_out_says_it_may_have_been_done(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Given up waiting for the journal, the service cannot know whether the write landed (it runs on in
    the journal's thread), so it says so; repeating the update with the same key is then safe."""
    monkeypatch.setattr(errors, "HANDLER_TIMEOUT", 0.3)
    headers = {**AUTH, "Idempotency-Key": "slow-1"}
    other_writer = sqlite3.connect(service.runtime.settings.service.data_dir / "broadcaster.db", isolation_level=None)
    other_writer.execute("BEGIN IMMEDIATE")  # another process holds the journal's write lock
    try:
        posting = asyncio.ensure_future(service.client.post("/api/v1/updates", json=UPDATE, headers=headers))
        await asyncio.sleep(0.6)  # past the time limit, still within the journal's wait for the lock
    finally:
        other_writer.execute("ROLLBACK")
        other_writer.close()
    response = await posting
    assert response.status == 503
    body = await response.json()
    conforms(body, "Problem")
    assert "may or may not have been done" in body["error"]
    assert "same Idempotency-Key" in body["error"]

    again = await service.client.post("/api/v1/updates", json=UPDATE, headers=headers)
    assert (again.status, again.headers.get("Idempotent-Replayed")) == (202, "true")  # it had landed
