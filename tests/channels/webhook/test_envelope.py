"""The json format: the Statuspage webhook envelope, and what travels with it."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from broadcaster.domain.models import IncidentHistory
from broadcaster.domain.statuspage import INCIDENT_LIMIT, build_site, incident_json, iso
from broadcaster.domain.vocabulary import DeliveryState
from channels.webhook.payloads import SentAt
from tests.channels.webhook.conftest import Configure, broadcasting, post, settle, target
from tests.channels.webhook.receiver import Receiver


async def test_envelope_is_statuspage_shaped(configure: Configure, receiver: Receiver) -> None:
    """meta/page/incident carry the event, the page status and the incident as of the update, in Statuspage's shape."""
    settings = configure(target(receiver.url("/sp")))
    async with broadcasting(settings) as (runtime, dispatcher):
        first = await post(runtime, dispatcher, impact="major", components={"API": "partial_outage"})
        await settle(dispatcher, first)
        second = await post(
            runtime,
            dispatcher,
            incident_id=first.incident.id,
            status="identified",
            message="A bad deploy; rolling back.",
        )
        await settle(dispatcher, second)
        site = build_site(
            await runtime.store.site_history(recent=INCIDENT_LIMIT),
            page_name="Example status",
            public_url="https://status.example.com",
            configured_components=["API"],
        )
        history = await runtime.store.history(first.incident.id)
    first_body, second_body = (json.loads(r.body) for r in receiver.at("/sp"))

    assert set(second_body) == {"meta", "page", "incident"}
    meta = second_body["meta"]
    assert (meta["event"], meta["update_id"]) == ("incident.update", second.update.id)
    sent_at = datetime.fromisoformat(meta["sent_at"].replace("Z", "+00:00"))
    assert abs((datetime.now(UTC) - sent_at).total_seconds()) < 60
    assert second_body["page"] == {
        "id": site.page_id,
        "status_indicator": "major",
        "status_description": "Partial System Outage",
    }
    assert second_body["incident"] == incident_json(site, IncidentHistory(history.incident, history.updates))

    incident = second_body["incident"]
    assert (incident["id"], incident["name"], incident["status"], incident["impact"]) == (
        first.incident.id,
        "API errors",
        "identified",
        "major",
    )
    assert incident["shortlink"] == f"https://status.example.com/incidents/{first.incident.id}.html"
    assert [u["status"] for u in incident["incident_updates"]] == ["identified", "investigating"]  # newest first
    assert [c["name"] for c in incident["components"]] == ["API"]
    # The first delivery described the incident as it stood after the first update only.
    assert [u["id"] for u in first_body["incident"]["incident_updates"]] == [first.update.id]
    assert first_body["incident"]["status"] == "investigating"


async def test_headers_travel_with_every_request(configure: Configure, receiver: Receiver) -> None:
    """Configured extra headers, JSON content type and the user agent are sent; the receipt quotes the status."""
    settings = configure(target(receiver.url("/h"), headers={"Authorization": "Bearer t0k3n", "X-Team": "sre"}))
    async with broadcasting(settings) as (runtime, dispatcher):
        (delivery,) = (await settle(dispatcher, await post(runtime, dispatcher))).values()
    (request,) = receiver.at("/h")
    assert (request.headers["authorization"], request.headers["x-team"]) == ("Bearer t0k3n", "sre")
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("broadcaster-webhook/")
    assert delivery.state is DeliveryState.DELIVERED
    assert delivery.detail.startswith("HTTP 204 in ")


async def test_maintenance_goes_out_as_an_incident_update(configure: Configure, receiver: Receiver) -> None:
    """A scheduled maintenance is sent under "incident" with impact maintenance and its schedule."""
    settings = configure(target(receiver.url("/m")))
    async with broadcasting(settings) as (runtime, dispatcher):
        accepted = await post(
            runtime,
            dispatcher,
            title="DB upgrade",
            status="scheduled",
            message="Planned.",
            scheduled_for="2030-01-01T10:00:00Z",
            scheduled_until="2030-01-01T11:00:00Z",
        )
        await settle(dispatcher, accepted)
    body = json.loads(receiver.at("/m")[0].body)
    assert body["meta"]["event"] == "incident.update"
    assert (body["incident"]["impact"], body["incident"]["status"]) == ("maintenance", "scheduled")
    assert body["incident"]["scheduled_for"] == "2030-01-01T10:00:00.000Z"
    assert body["page"]["status_indicator"] == "none"  # scheduled, not yet under way


def test_sent_at_is_written_as_statuspage_writes_times() -> None:
    """The per-request stamp (formatted once a second, milliseconds per call) matches statuspage.iso, across
    second, minute and day boundaries and whichever second it last formatted."""
    stamp = SentAt()
    base = datetime(2026, 11, 23, 23, 59, 58, tzinfo=UTC).timestamp()
    for offset in (0.0, 0.0004, 0.5, 0.999, 1.0, 1.25, 2.001, 1.9999996, 61.75, 0.75, 86_400.123):
        epoch = base + offset
        assert stamp(epoch).decode() == iso(datetime.fromtimestamp(epoch, UTC)), offset
