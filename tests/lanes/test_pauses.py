"""Pauses, the operator's control rods: a paused channel or target holds its deliveries (spending no attempt)
until resumed, a target that is gone (410) pauses itself, and a pause also hands back what was leased ahead."""

from __future__ import annotations

import asyncio
import time

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store.sqlite import SqliteStore
from channels.base import Job, Receipt
from config.settings import LanePolicy
from tests.lanes.support import running, settled, states, true_if
from tests.support.channels import (
    Script,
    deliver,
    target_gone,
)
from tests.support.helpers import eventually
from tests.support.journal import planned, post


async def test_pause_holds_deliveries_and_resume_releases_them(store: SqliteStore) -> None:
    script = Script(deliver)
    async with running(store, script, paused=True):
        accepted = await post(store, planned("t1"))
        await asyncio.sleep(0.3)  # several polls: a paused lane must not touch it
        assert script.calls == []
        assert await states(store, accepted.update.id) == [DeliveryState.PENDING]
        await store.set_paused("scripted", "", paused=False, reason="", now=time.time())
        await settled(store, accepted.update.id)
    assert await states(store, accepted.update.id) == [DeliveryState.DELIVERED]


async def test_pausing_one_target_holds_only_that_target(store: SqliteStore) -> None:
    script = Script(deliver, targets=["a", "b"])
    await store.set_paused("scripted", "a", paused=True, reason="", now=time.time())
    async with running(store, script):
        accepted = await post(store, planned("a", "b"))

        async def b_delivered() -> bool:
            return any(
                d.target == "b" and d.state is DeliveryState.DELIVERED
                for d in await store.deliveries(update_id=accepted.update.id)
            )

        await eventually(b_delivered)
        await asyncio.sleep(0.2)
        assert [c.target for c in script.calls] == ["b"]
        await store.set_paused("scripted", "a", paused=False, reason="", now=time.time())
        await settled(store, accepted.update.id)
    assert sorted(c.target for c in script.calls) == ["a", "b"]


async def test_a_gone_target_is_paused_until_resumed(store: SqliteStore) -> None:
    """A 410 fails that delivery and pauses the target; later updates wait; resuming lets them through."""
    script = Script(target_gone("410 Gone"), targets=["gone", "fine"])
    async with running(store, script) as (lane, _events):
        first = await post(store, planned("gone"))
        await settled(store, first.update.id)
        assert lane.status().paused_targets == {"gone"}
        controls = [(c.target, c.paused, c.reason) for c in await store.controls()]
        assert controls == [("gone", True, "410 Gone")]
        script.behave = deliver
        second = await post(store, planned("gone", "fine"), incident_id=first.incident.id, status="identified")

        async def fine_delivered() -> bool:
            return any(
                d.target == "fine" and d.state is DeliveryState.DELIVERED
                for d in await store.deliveries(update_id=second.update.id)
            )

        await eventually(fine_delivered)
        assert [c.target for c in script.calls] == ["gone", "fine"]
        await store.set_paused("scripted", "gone", paused=False, reason="", now=time.time())
        await settled(store, second.update.id)
    assert await states(store, first.update.id) == [DeliveryState.FAILED]
    assert await states(store, second.update.id) == [DeliveryState.DELIVERED, DeliveryState.DELIVERED]


async def test_pausing_hands_back_what_was_leased_ahead(store: SqliteStore) -> None:
    """A pause must hold every queued delivery, including those already leased ahead of a free slot."""
    gate = asyncio.Event()

    async def behave(job: Job) -> Receipt:
        if job.target == "busy":
            await gate.wait()
        return await deliver(job)

    script = Script(behave, targets=["busy", "queued"])
    policy = LanePolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, ttl=60, timeout=30, concurrency=1)
    async with running(store, script, policy=policy) as (lane, _events):
        busy = await post(store, planned("busy"))
        queued = await post(store, planned("queued"))
        await eventually(lambda: true_if(script.calls))
        await eventually(lambda: true_if(lane.status().in_flight == 2))  # one running, one leased ahead
        await store.set_paused("scripted", "", paused=True, reason="hold", now=time.time())

        async def handed_back() -> bool:
            (delivery,) = await store.deliveries(update_id=queued.update.id)
            return delivery.state is DeliveryState.PENDING

        await eventually(handed_back)
        gate.set()
        await settled(store, busy.update.id)
        await asyncio.sleep(0.2)
        assert [c.target for c in script.calls] == ["busy"]
    (held,) = await store.deliveries(update_id=queued.update.id)
    assert (held.state, held.attempts) == (DeliveryState.PENDING, 0)
