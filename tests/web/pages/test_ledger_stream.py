"""The ledger's event stream over its lifetime, served as `broadcaster serve` serves it (handlers are not
cancelled when their client goes): a client that left is found while deliveries are still pending, a
journal that fails a read does not end the stream, logging out ends it, and a delivery a lane reported is
not sent again by the next journal read."""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import pytest
from aiohttp import ClientResponse

from broadcaster.domain.errors import StoreError
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store import Delivery
from broadcaster.web.pages import ledger_events
from broadcaster.web.pages.ledger_events import OPEN_STREAMS
from channels.base import Job, Receipt
from tests.support.channels import deliver
from tests.support.helpers import eventually
from tests.support.journal import first_attempt
from tests.web.pages.conftest import Commander
from tests.web.pages.test_ledger import next_event, post_update, stop_lanes_here

HEARTBEAT = 0.2
POLL = 0.05


@pytest.fixture(autouse=True)
def _quick_stream(monkeypatch: pytest.MonkeyPatch) -> None:
    """Heartbeats and journal reads a few times a second, so what they do shows within a short test."""
    monkeypatch.setattr(ledger_events, "HEARTBEAT_SECONDS", HEARTBEAT)
    monkeypatch.setattr(ledger_events, "JOURNAL_POLL_SECONDS", POLL)


async def pause_scripted(commander: Commander) -> None:
    """Nothing in this process delivers the scripted channel: its deliveries stay pending (and polled)."""
    await commander.runtime.store.set_paused("scripted", "", paused=True, reason="held by the test", now=time.time())


async def open_events(commander: Commander, update_id: str) -> tuple[ClientResponse, list[dict[str, Any]]]:
    """The stream, and its first events: the journal's state of every delivery."""
    stream = await commander.client.get(f"/updates/{update_id}/events")
    assert stream.status == 200
    deliveries = await commander.runtime.store.deliveries(update_id=update_id)
    return stream, [await next_event(stream) for _ in deliveries]


async def events_within(stream: ClientResponse, seconds: float) -> list[dict[str, Any]]:
    """Every delivery event the stream sends in the next `seconds`."""
    events: list[dict[str, Any]] = []
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while True:  # until the timeout: next_event waits for the next one
                events.append(await next_event(stream))
    return events


async def test_a_client_that_left_is_found_while_deliveries_are_still_pending(commander: Commander) -> None:
    await pause_scripted(commander)
    update_id = await post_update(commander)
    await commander.log_in()
    streams = commander.client.app[OPEN_STREAMS].streams
    stream, first = await open_events(commander, update_id)
    assert any(not event["final"] for event in first)  # so the journal is being polled
    assert len(streams) == 1
    stream.close()  # the page is closed: the server is not told, until it writes

    async def stream_ended() -> bool:
        return not streams

    await eventually(stream_ended, within=10 * HEARTBEAT)


async def test_the_stream_outlives_journal_reads_that_failed(
    commander: Commander, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reads fail for a while; then the deliveries are made without this process's lanes (so only the
    journal tells): the stream, still open, reads and sends them."""
    await stop_lanes_here(commander)
    update_id = await post_update(commander)
    await commander.log_in()
    store = commander.runtime.store
    stream, _ = await open_events(commander, update_id)
    reads = store.deliveries
    failures = 0

    async def failing_reads(**filters: Any) -> list[Delivery]:
        nonlocal failures
        if failures < 3:
            failures += 1
            raise StoreError("database is locked")
        return await reads(**filters)

    monkeypatch.setattr(store, "deliveries", failing_reads)

    async def failed_thrice() -> bool:
        return failures == 3

    await eventually(failed_thrice)
    leased = await store.claim(
        "scripted", ordering=Ordering.IN_ORDER, owner="another-process", limit=10, now=time.time(), lease=60
    )
    now = time.time()
    outcomes = [first_attempt(c.delivery.id, DeliveryState.DELIVERED, at=now) for c in leased.claimed]
    assert await store.finish("another-process", outcomes) == len(outcomes) == 2
    made_elsewhere = {outcome.delivery_id for outcome in outcomes}
    delivered: set[str] = set()
    # Other channels' deliveries may end while this runs: their events come too, and are not what is awaited.
    while not made_elsewhere <= delivered:
        event = await next_event(stream)
        if event["state"] == "delivered":
            delivered.add(event["id"])


async def test_logging_out_ends_the_stream(commander: Commander) -> None:
    await pause_scripted(commander)
    update_id = await post_update(commander)
    await commander.log_in()
    csrf = (await commander.form_tokens())["csrf"]
    stream, _ = await open_events(commander, update_id)
    assert (await commander.client.post("/logout", data={"csrf": csrf}, allow_redirects=False)).status == 303
    async with asyncio.timeout(10 * HEARTBEAT):
        await stream.content.read()  # to the end: the server closed the stream
    assert not commander.client.app[OPEN_STREAMS].streams


async def test_a_delivery_a_lane_reported_is_not_sent_again_by_the_journals_next_read(commander: Commander) -> None:
    """Target a is delivered at once, b is held: the stream keeps reading the journal for b, and must not
    send a's delivery again each time it reads it."""
    release_b = asyncio.Event()

    async def a_now_b_later(job: Job) -> Receipt:
        if job.target == "b":
            await release_b.wait()
        return await deliver(job)

    commander.script.behave = a_now_b_later
    await pause_scripted(commander)
    update_id = await post_update(commander)
    await commander.log_in()
    stream, _ = await open_events(commander, update_id)
    deliveries = await commander.runtime.store.deliveries(update_id=update_id)
    target_a = next(d.id for d in deliveries if d.channel == "scripted" and d.target == "a")
    await commander.runtime.store.set_paused("scripted", "", paused=False, reason="", now=time.time())

    async def a_delivered() -> bool:
        found = await commander.runtime.store.deliveries(update_id=update_id)
        return any(d.id == target_a and d.state is DeliveryState.DELIVERED for d in found)

    await eventually(a_delivered)
    seen = await events_within(stream, 20 * POLL)  # a's lane events, then many journal reads for b
    release_b.set()
    delivered_a = [event for event in seen if event["id"] == target_a and event["state"] == "delivered"]
    assert len(delivered_a) == 1, delivered_a
