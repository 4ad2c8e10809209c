"""A lane that stops: what it runs finishes or is handed back, what it leased is never left behind, and
every attempt it made shows in the ledger."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import EventKind, Lane
from broadcaster.runtime import open_runtime
from broadcaster.store import Handoff
from broadcaster.store.sqlite import SqliteStore
from channels.base import Interrupted, Job, Ordering, Receipt
from config import load_settings
from config.settings import LanePolicy
from tests.lanes.support import running, true_if
from tests.support.channels import SCRIPTS, Script, ScriptedChannel, hang
from tests.support.helpers import eventually
from tests.support.journal import planned, post


async def test_stopping_interrupts_what_outlasts_the_drain_and_hands_it_back(store: SqliteStore) -> None:
    """A hanging attempt is cut off once the drain is over: back in the queue, not counted, and in the
    ledger as an interrupted attempt."""
    script = Script(hang)
    async with running(store, script, policy=LanePolicy(timeout=60), drain=0.1) as (_lane, events):
        accepted = await post(store, planned("t1"))
        await eventually(lambda: true_if(script.calls))
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 0)
    assert [(a.outcome, a.error) for a in await store.attempts(delivery.id)] == [
        ("interrupted", "the process stopped before the attempt finished")
    ]
    assert events[-1].kind is EventKind.INTERRUPTED


async def test_stopping_lets_a_running_attempt_finish_and_records_it(store: SqliteStore) -> None:
    """An attempt that needs a moment more (a POST already sent, waiting for its answer) is not cut off:
    cutting it off could repeat a delivery the far end already has."""

    async def slow_but_fine(job: Job) -> Receipt:
        await asyncio.sleep(0.3)
        return Receipt(detail="took a while")

    script = Script(slow_but_fine)
    async with running(store, script, drain=5):
        accepted = await post(store, planned("t1"))
        await eventually(lambda: true_if(script.calls))
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert (delivery.state, delivery.detail) == (DeliveryState.DELIVERED, "took a while")
    assert len(script.calls) == 1


async def test_a_fan_out_asked_to_stop_ends_at_a_safe_point_and_is_handed_back(store: SqliteStore) -> None:
    """A long attempt sees Job.stop_requested, saves what it did and raises Interrupted: back in the queue,
    its attempt not counted, its progress kept for whoever resumes it, the ledger saying why."""
    sent: list[int] = []

    async def fan_out(job: Job) -> Receipt:
        for step in range(1000):
            if job.stop_requested():
                raise Interrupted(f"stopped with {1000 - step} left")
            await job.save_progress({f"r{step}": ""})
            sent.append(step)
            await asyncio.sleep(0.01)
        return Receipt(detail="all done")

    script = Script(fan_out)
    async with running(store, script, drain=5):
        accepted = await post(store, planned("t1"))
        await eventually(lambda: true_if(len(sent) >= 5))
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert (delivery.state, delivery.attempts) == (DeliveryState.PENDING, 0)
    (attempt,) = await store.attempts(delivery.id)
    assert attempt.outcome == "interrupted"
    assert attempt.error == f"interrupted: stopped with {1000 - len(sent)} left"
    leased = await store.claim("scripted", ordering=Ordering.IN_ORDER, owner="next", limit=1, now=time.time(), lease=60)
    assert leased.claimed[0].progress == {f"r{step}": "" for step in sent}


async def test_a_claim_waiting_for_the_lock_when_the_lane_stops_leaves_no_lease(store: SqliteStore) -> None:
    """Another process holds the journal's write lock, so the lane's claim waits on the journal thread;
    the lane is stopped meanwhile. The claim still commits once the lock is free, and what it leased is
    handed back: no delivery stays in flight under the lease of a lane that has stopped."""
    SCRIPTS["scripted"] = script = Script(hang, targets=["a", "b", "c"])
    accepted = await post(store, planned("a", "b", "c"))
    released: list[int] = []
    release = store.release

    async def counting_release(owner: str, delivery_ids: Any, **kwargs: Any) -> int:
        released.append(count := await release(owner, delivery_ids, **kwargs))
        return count

    store.release = counting_release  # type: ignore[method-assign]
    other = sqlite3.connect(store.path, isolation_level=None)
    policy = LanePolicy(timeout=5, concurrency=1)
    lane = Lane(
        name="scripted",
        channel=ScriptedChannel(script),
        ordering=Ordering.IN_ORDER,
        policy=policy,
        store=store,
        owner="test:1:lane",
        poll_interval=0.05,
    )
    try:
        other.execute("BEGIN IMMEDIATE")
        lane.start()
        await asyncio.sleep(0.2)  # the first claim finds the lock held and waits for it on the journal thread
        stopping = asyncio.create_task(lane.stop(drain=0.1))
        await asyncio.sleep(0.2)
        assert not stopping.done()  # it waits for the claim in hand rather than cutting it off
        other.execute("COMMIT")
        await asyncio.wait_for(stopping, timeout=10)
    finally:
        other.close()
    states = {d.target: d.state for d in await store.deliveries(update_id=accepted.update.id)}
    assert states == {"a": DeliveryState.PENDING, "b": DeliveryState.PENDING, "c": DeliveryState.PENDING}
    assert script.calls == []
    assert sum(released) == 2  # the claim did lease two (one for the slot, one ahead of it); both came back
    assert {d.attempts for d in await store.deliveries(update_id=accepted.update.id)} == {0}


async def test_closing_the_runtime_hands_back_what_this_process_still_holds(workdir: Path) -> None:
    """The last guarantee that no lease outlives its process: whatever it still holds when it closes (a
    lane that could not hand back, say) goes back to the queue."""
    runtime = await open_runtime(load_settings(None))
    accepted = await post(runtime.store, planned("a", "b"))
    leased = await runtime.store.claim(
        "scripted", ordering=Ordering.IN_ORDER, owner=runtime.owner, limit=5, now=time.time(), lease=600
    )
    assert len(leased.claimed) == 2
    await runtime.close()
    reopened = await open_runtime(load_settings(None))
    try:
        deliveries = await reopened.store.deliveries(update_id=accepted.update.id)
    finally:
        await reopened.close()
    assert {(d.state, d.attempts) for d in deliveries} == {(DeliveryState.PENDING, 0)}


async def test_the_heartbeat_renews_the_leases_of_handed_off_deliveries(store: SqliteStore) -> None:
    """A handed-off delivery waiting for a slot, or running, keeps its lease for as long as the lane holds
    it, as a claimed one does: its lease is renewed, so no sweep takes it back while it runs."""
    SCRIPTS["scripted"] = script = Script(hang, targets=["a", "b"])
    policy = LanePolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, ttl=60, timeout=30, concurrency=1)
    lane = Lane(
        name="scripted",
        channel=ScriptedChannel(script),
        ordering=Ordering.IN_ORDER,
        policy=policy,
        store=store,
        owner="test:1:lane",
        poll_interval=0.05,
        lease=0.3,
    )
    lane.start()
    try:
        accepted = await post(
            store,
            planned("a", "b"),
            handoff=Handoff(owner="test:1:lane", lease_until=time.time() + 0.3, room={"scripted": 2}),
        )
        lane.take(accepted.handed_off)
        await asyncio.sleep(0.8)  # past the first lease, with renewals every 0.1 s
        recovered = await store.recover(now=time.time(), owner_is_dead=lambda _owner: False)
        assert recovered == []
        assert {d.state for d in await store.deliveries(update_id=accepted.update.id)} == {DeliveryState.IN_FLIGHT}
        assert len(script.calls) == 1  # one slot: the other waits, still leased
    finally:
        await lane.stop(drain=0.1)
