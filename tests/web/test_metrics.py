"""`GET /metrics` over HTTP, scraped and parsed as Prometheus does: what was accepted and delivered, the
backlog as the journal has it, and nothing a label must not carry."""

from __future__ import annotations

import time
from typing import Any

import pytest
from prometheus_client import REGISTRY
from prometheus_client.parser import text_string_to_metric_families

from broadcaster.web import create_app
from broadcaster.web.keys import DISPATCHER
from broadcaster.web.metrics import METRICS
from tests.support.helpers import eventually
from tests.web.conftest import AUTH, TOKEN, Client, Service

UPDATE: dict[str, Any] = {"title": "Checkout errors", "status": "investigating", "message": "Some payments fail."}

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(client: Client) -> tuple[str, Samples]:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.content_type == "text/plain"
    text = await response.text()
    samples = {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }
    return text, samples


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples[(name, frozenset(labels.items()))]


async def post_and_deliver(service: Service, update: dict[str, Any], headers: dict[str, str] = AUTH) -> str:
    response = await service.client.post("/api/v1/updates", json=update, headers=headers)
    assert response.status == 202
    update_id = str((await response.json())["update_id"])

    async def delivered() -> bool:
        deliveries = await service.runtime.store.deliveries(update_id=update_id)
        return {d.state for d in deliveries} == {"delivered"}

    await eventually(delivered)
    return update_id


async def test_an_accepted_and_delivered_update_is_counted(service: Service) -> None:
    key = {**AUTH, "Idempotency-Key": "metrics-1"}
    await post_and_deliver(service, UPDATE, key)
    replayed = await service.client.post("/api/v1/updates", json=UPDATE, headers=key)
    assert replayed.headers["Idempotent-Replayed"] == "true"

    _text, samples = await scrape(service.client)
    assert value(samples, "broadcaster_updates_accepted_total") == 1  # the replay made no new update
    assert value(samples, "broadcaster_deliveries_total", channel="scripted", outcome="delivered") == 2
    assert value(samples, "broadcaster_deliveries_total", channel="mirror", outcome="delivered") == 1
    assert value(samples, "broadcaster_deliveries_total", channel="scripted", outcome="failed") == 0
    assert value(samples, "broadcaster_delivery_retries_total", channel="scripted") == 0
    assert value(samples, "broadcaster_delivery_latency_seconds_count", channel="scripted") == 2
    assert value(samples, "broadcaster_delivery_latency_seconds_bucket", channel="scripted", le="+Inf") == 2
    assert value(samples, "broadcaster_delivery_latency_seconds_count", channel="mirror") == 1
    for channel in ("scripted", "mirror"):
        assert value(samples, "broadcaster_lane_queue_depth", channel=channel) == 0
        assert value(samples, "broadcaster_lane_oldest_waiting_seconds", channel=channel) == 0


async def pause_scripted(service: Service, *, paused: bool) -> None:
    """Pause or resume the scripted lane, and wait until it has seen it."""
    await service.runtime.store.set_paused("scripted", "", paused=paused, reason="test", now=time.time())

    async def seen() -> bool:
        (status,) = [s for s in service.client.app[DISPATCHER].statuses() if s.channel == "scripted"]
        return status.paused is paused

    await eventually(seen)


async def test_the_latency_is_from_acceptance_to_delivery(service: Service) -> None:
    """On the runtime's clock: moved 50 minutes on once the update is accepted, both deliveries land
    between the 30-minute and the hour bucket."""
    await pause_scripted(service, paused=True)
    response = await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)
    update_id = (await response.json())["update_id"]
    service.runtime.clock = lambda: time.time() + 3000.0
    await pause_scripted(service, paused=False)

    async def delivered() -> bool:
        deliveries = await service.runtime.store.deliveries(update_id=update_id)
        return {d.state for d in deliveries if d.channel == "scripted"} == {"delivered"}

    await eventually(delivered)
    _text, samples = await scrape(service.client)
    assert value(samples, "broadcaster_delivery_latency_seconds_bucket", channel="scripted", le="1800.0") == 0
    assert value(samples, "broadcaster_delivery_latency_seconds_bucket", channel="scripted", le="3600.0") == 2
    assert value(samples, "broadcaster_delivery_latency_seconds_sum", channel="scripted") >= 6000


async def test_the_backlog_is_read_from_the_journal_at_scrape_time(service: Service) -> None:
    store = service.runtime.store
    await pause_scripted(service, paused=True)
    response = await service.client.post("/api/v1/updates", json=UPDATE, headers=AUTH)
    update_id = (await response.json())["update_id"]
    accepted_at = min(d.created_at for d in await store.deliveries(update_id=update_id))
    service.runtime.clock = lambda: accepted_at + 120.0

    _text, samples = await scrape(service.client)
    assert value(samples, "broadcaster_lane_queue_depth", channel="scripted") == 2
    assert value(samples, "broadcaster_lane_oldest_waiting_seconds", channel="scripted") == pytest.approx(120.0)


async def test_labels_are_channel_and_outcome_only_and_no_secret_shows(service: Service) -> None:
    await post_and_deliver(service, UPDATE)
    text, samples = await scrape(service.client)
    label_names = {name for _metric, labels in samples for name, _value in labels}
    assert label_names == {"channel", "outcome", "le"}
    channels = {value for _metric, labels in samples for name, value in labels if name == "channel"}
    assert channels == {"scripted", "mirror"}  # never a target ("a", "b") or an id
    assert TOKEN not in text


async def test_each_application_has_a_registry_of_its_own(service: Service) -> None:
    await post_and_deliver(service, UPDATE)
    other = create_app(service.runtime, service.client.app[DISPATCHER])
    assert other[METRICS].registry is not service.client.app[METRICS].registry
    assert not [name for name in REGISTRY._names_to_collectors if name.startswith("broadcaster_")]
    _text, samples = await scrape(service.client)
    assert value(samples, "broadcaster_updates_accepted_total") == 1
