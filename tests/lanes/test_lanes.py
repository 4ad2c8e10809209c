"""Lanes against a real SQLite journal, with scripted channels standing in for the far end."""

from __future__ import annotations

import asyncio
import contextlib
import time
from pathlib import Path
from typing import Any

from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import HANDOFF_LIMIT, EventKind
from broadcaster.store import Handoff
from broadcaster.store.sqlite import SqliteStore
from channels.base import Job, Ordering, Receipt, TransientError
from config.settings import LanePolicy
from tests.lanes.support import FAST, running, settled, states, true_if
from tests.support.channels import (
    Script,
    deliver,
    fail_permanently,
    fail_transiently,
    hang,
)
from tests.support.helpers import eventually
from tests.support.journal import planned, post


async def test_a_delivery_is_recorded_with_its_receipt(store: SqliteStore) -> None:
    """Delivered, with the channel's detail and external id in the ledger, and events in order."""
    script = Script(deliver)
    async with running(store, script) as (_lane, events):
        accepted = await post(store, planned("t1"))
        await settled(store, accepted.update.id)
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert (delivery.state, delivery.detail, delivery.external_id) == (
        DeliveryState.DELIVERED,
        "ok attempt 1",
        "post-1",
    )
    assert [e.kind for e in events] == [EventKind.STARTED, EventKind.DELIVERED]


async def test_retries_back_off_and_stop_at_max_attempts(store: SqliteStore) -> None:
    """Four transient failures: three retries, each no earlier than its backoff, then failed."""
    script = Script(fail_transiently("503 from relay"))
    async with running(store, script) as (_lane, events):
        accepted = await post(store, planned("t1"))
        await settled(store, accepted.update.id)
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert delivery.state is DeliveryState.FAILED
    assert delivery.last_error == "gave up after 4 attempts: 503 from relay"
    assert [c.attempt for c in script.calls] == [1, 2, 3, 4]
    retries = [e for e in events if e.kind is EventKind.RETRYING]
    assert len(retries) == 3
    for attempt, (event, failed_call, next_call) in enumerate(
        zip(retries, script.calls, script.calls[1:], strict=False), start=1
    ):
        ceiling = min(FAST.max_delay, FAST.base_delay * 2 ** (attempt - 1))
        assert event.not_before is not None
        assert next_call.started >= event.not_before - 0.001  # never earlier than scheduled
        # ...and scheduled within its backoff ceiling (1 s of slack for the lane's bookkeeping on a shared box)
        assert event.not_before - failed_call.started <= ceiling + 1.0
    assert [a.outcome for a in await store.attempts(delivery.id)] == ["retry", "retry", "retry", "failed"]


async def test_a_requested_delay_is_honoured(store: SqliteStore) -> None:
    """Retry-After (or a rate-limit reset) replaces the backoff."""
    answers = iter([fail_transiently("429", retry_after=0.4), deliver])

    async def behave(job: Job) -> Receipt:
        return await next(answers)(job)

    script = Script(behave)
    async with running(store, script) as (_lane, events):
        accepted = await post(store, planned("t1"))
        await settled(store, accepted.update.id)
    retry = next(e for e in events if e.kind is EventKind.RETRYING)
    assert retry.not_before is not None
    assert script.calls[1].started >= script.calls[0].started + 0.4
    assert await states(store, accepted.update.id) == [DeliveryState.DELIVERED]


async def test_a_permanent_error_fails_at_once(store: SqliteStore) -> None:
    script = Script(fail_permanently("401 bad credentials"))
    async with running(store, script):
        accepted = await post(store, planned("t1"))
        await settled(store, accepted.update.id)
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert (delivery.state, delivery.attempts, delivery.last_error) == (DeliveryState.FAILED, 1, "401 bad credentials")


async def test_a_hanging_attempt_times_out_and_counts(store: SqliteStore) -> None:
    script = Script(hang)
    policy = LanePolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, ttl=60, timeout=0.1, concurrency=1)
    async with running(store, script, policy=policy):
        accepted = await post(store, planned("t1"))
        await settled(store, accepted.update.id)
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert delivery.state is DeliveryState.FAILED
    assert delivery.last_error == "gave up after 2 attempts: timed out after 0.1s"


async def test_one_worker_times_out_attempt_after_attempt(store: SqliteStore) -> None:
    """Attempts run back to back on one worker task. A channel that ignores the timeout's cancel must not
    leave that worker unable to time out its next attempt: both outcomes are recorded."""
    workers: list[asyncio.Task[Any] | None] = []

    async def behave(job: Job) -> Receipt:
        workers.append(asyncio.current_task())
        if job.target == "stubborn":
            with contextlib.suppress(asyncio.CancelledError):  # ignores the cancel and answers anyway
                await asyncio.sleep(3600)
            return await deliver(job)
        await asyncio.sleep(3600)  # "stuck": hangs until the watchdog gives up on it
        raise AssertionError("unreachable")

    script = Script(behave, targets=["stubborn", "stuck"])
    policy = LanePolicy(max_attempts=1, base_delay=0.01, max_delay=0.01, ttl=60, timeout=0.1, concurrency=1)
    async with running(store, script, policy=policy):
        accepted = await post(store, planned("stubborn", "stuck"))
        await settled(store, accepted.update.id)
    outcome = {d.target: (d.state, d.last_error) for d in await store.deliveries(update_id=accepted.update.id)}
    assert outcome == {
        "stubborn": (DeliveryState.DELIVERED, ""),
        "stuck": (DeliveryState.FAILED, "gave up after 1 attempt: timed out after 0.1s"),
    }
    assert len(workers) == 2 and workers[0] is workers[1]


async def test_a_bug_in_a_channel_parks_the_delivery_and_the_lane_lives_on(store: SqliteStore) -> None:
    """A poison delivery runs out of attempts; the worker survives and delivers the next one."""

    async def behave(job: Job) -> Receipt:
        if job.update.message == "poison":
            raise KeyError("boom")
        return await deliver(job)

    script = Script(behave)
    async with running(store, script):
        poison = await post(store, planned("t1"), message="poison")
        await settled(store, poison.update.id)
        healthy = await post(store, planned("t1"), message="fine")
        await settled(store, healthy.update.id)
    (parked,) = await store.deliveries(update_id=poison.update.id)
    assert parked.state is DeliveryState.FAILED and "internal error: KeyError" in parked.last_error
    assert await states(store, healthy.update.id) == [DeliveryState.DELIVERED]


async def test_an_update_past_its_ttl_is_expired_and_never_sent(store: SqliteStore) -> None:
    """Status news written early must not arrive hours late."""
    script = Script(deliver)
    async with running(store, script, paused=True) as (_lane, events):
        accepted = await post(store, planned("t1", ttl=0.2))
        await settled(store, accepted.update.id)
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert delivery.state is DeliveryState.EXPIRED
    assert "time-to-live" in delivery.last_error
    assert script.calls == []
    assert [e.kind for e in events] == [EventKind.EXPIRED]


async def test_a_retry_that_would_land_after_the_ttl_expires_now(store: SqliteStore) -> None:
    script = Script(fail_transiently("rate limited", retry_after=30))
    async with running(store, script):
        accepted = await post(store, planned("t1", ttl=5))
        await settled(store, accepted.update.id)
    (delivery,) = await store.deliveries(update_id=accepted.update.id)
    assert delivery.state is DeliveryState.EXPIRED and len(script.calls) == 1


async def test_a_newer_update_supersedes_queued_older_ones_on_latest_only_channels(store: SqliteStore) -> None:
    """Email and X send only the latest news of an incident; older queued updates are recorded as superseded."""
    script = Script(deliver)
    plan = planned("t1", ordering=Ordering.LATEST_ONLY)
    async with running(store, script, name="latest", paused=True):
        first = await post(store, plan)
        second = await post(store, plan, incident_id=first.incident.id, status="identified")
        third = await post(store, plan, incident_id=first.incident.id, status="monitoring")
        await store.set_paused("latest", "", paused=False, reason="", now=time.time())
        await settled(store, third.update.id)
    assert [c.update_id for c in script.calls] == [third.update.id]
    assert await states(store, first.update.id) == [DeliveryState.SUPERSEDED]
    assert await states(store, second.update.id) == [DeliveryState.SUPERSEDED]


async def test_in_order_channels_deliver_every_update_in_order(store: SqliteStore) -> None:
    script = Script(deliver)
    async with running(store, script, paused=True):
        first = await post(store, planned("t1"))
        updates = [first] + [
            await post(store, planned("t1"), incident_id=first.incident.id, status=s)
            for s in ("identified", "monitoring", "resolved")
        ]
        await store.set_paused("scripted", "", paused=False, reason="", now=time.time())
        await settled(store, updates[-1].update.id)
    assert [c.update_id for c in script.calls] == [a.update.id for a in updates]


async def test_later_updates_reply_to_the_previous_post(store: SqliteStore) -> None:
    script = Script(deliver)
    async with running(store, script):
        first = await post(store, planned("t1"))
        await settled(store, first.update.id)
        second = await post(store, planned("t1"), incident_id=first.incident.id, status="identified")
        await settled(store, second.update.id)
    assert [c.thread_parent for c in script.calls] == [None, "post-1"]


async def test_a_dead_target_opens_its_breaker_and_the_others_carry_on(store: SqliteStore) -> None:
    async def behave(job: Job) -> Receipt:
        if job.target == "dead":
            raise TransientError("connection refused")
        return await deliver(job)

    script = Script(behave, targets=["dead", "alive"])
    policy = LanePolicy(
        max_attempts=50,
        base_delay=0.01,
        max_delay=0.01,
        ttl=60,
        timeout=5,
        concurrency=4,
        breaker_threshold=3,
        breaker_cooldown=30,
    )
    async with running(store, script, policy=policy) as (lane, _events):
        accepted = await post(store, planned("dead", "alive", attempts=50))

        async def alive_done() -> bool:
            return any(
                d.target == "alive" and d.state is DeliveryState.DELIVERED
                for d in await store.deliveries(update_id=accepted.update.id)
            )

        await eventually(alive_done)
        await asyncio.sleep(0.4)  # without a breaker, ~40 more attempts would hit the dead target by now
        assert sum(c.target == "dead" for c in script.calls) == 3
        assert "dead" in lane.status().open_breakers
    dead = next(d for d in await store.deliveries(update_id=accepted.update.id) if d.target == "dead")
    assert dead.state is DeliveryState.PENDING and dead.attempts == 3  # waiting, not burning attempts


async def test_a_delivery_waiting_for_a_slot_past_its_ttl_expires_unsent(store: SqliteStore) -> None:
    """In-order lanes lease ahead of free slots; what waited there past its TTL must not go out late."""

    async def behave(job: Job) -> Receipt:
        if job.target == "slow":
            await asyncio.sleep(0.5)
        return await deliver(job)

    script = Script(behave, targets=["slow", "late"])
    policy = LanePolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, ttl=60, timeout=5, concurrency=1)
    async with running(store, script, policy=policy):
        slow = await post(store, planned("slow"))
        late = await post(store, planned("late", ttl=0.2))
        await settled(store, late.update.id)
        await settled(store, slow.update.id)
    assert [c.target for c in script.calls] == ["slow"]
    (expired,) = await store.deliveries(update_id=late.update.id)
    assert expired.state is DeliveryState.EXPIRED


class CountingStore(SqliteStore):
    """The SQLite journal, noting the size of each batch of outcomes a lane hands it."""

    batches: list[int]

    async def finish_and_claim(self, outcomes: Any, channel: str, **kwargs: Any) -> Any:
        if outcomes:
            self.batches.append(len(outcomes))
        return await super().finish_and_claim(outcomes, channel, **kwargs)


async def test_a_busy_lane_journals_outcomes_in_batches(tmp_path: Path) -> None:
    """While other attempts run, finished ones wait briefly to share one transaction, so a fan-out costs
    a few dozen journal writes rather than one per delivery; every outcome is still recorded."""
    store = CountingStore(tmp_path / "j.db", url="sqlite:///j.db")
    store.batches = []
    await store.open()
    targets = [f"t{i}" for i in range(200)]

    async def behave(job: Job) -> Receipt:
        await asyncio.sleep(0.001 * (int(job.target[1:]) % 17))  # finishing one by one, not in waves
        return await deliver(job)

    script = Script(behave, targets=targets)
    policy = LanePolicy(max_attempts=2, base_delay=0.01, max_delay=0.01, ttl=60, timeout=5, concurrency=16)
    try:
        async with running(store, script, policy=policy):
            accepted = await post(store, planned(*targets))
            await settled(store, accepted.update.id)
        assert set(await states(store, accepted.update.id)) == {DeliveryState.DELIVERED}
    finally:
        await store.close()
    assert sum(store.batches) == len(targets)
    # Journalling one by one took 123 transactions for these 200; batching takes 29-41 (about five outcomes
    # each: a batch closes once 8 wait, or sooner when the lease-ahead buffer runs low). The bound asks for
    # three a transaction, so a slow, shared CI machine does not fail it while the old behaviour still does.
    assert len(store.batches) <= len(targets) / 3, store.batches


async def test_only_an_in_order_lane_not_paused_takes_deliveries_as_they_are_accepted(store: SqliteStore) -> None:
    """A LATEST_ONLY lane is handed nothing (a delivery waiting in the lane could no longer be superseded),
    nor is a paused lane; an in-order lane takes up to HANDOFF_LIMIT, less what it already holds, and names
    its paused targets as ones to skip."""
    async with running(store, Script(deliver), name="latest") as (latest, _):
        assert latest.handoff_room() == 0
    async with running(store, Script(deliver), paused=True) as (paused, _):
        await eventually(lambda: true_if(paused.status().paused))
        assert paused.handoff_room() == 0
    await store.set_paused("scripted", "", paused=False, reason="", now=time.time())
    await store.set_paused("scripted", "held", paused=True, reason="test", now=time.time())
    async with running(store, Script(hang, targets=["a", "b"])) as (lane, _):
        await eventually(lambda: true_if(lane.status().paused_targets))
        assert lane.handoff_skips() == {"held"}
        assert lane.handoff_room() == HANDOFF_LIMIT
        accepted = await post(
            store,
            planned("a", "b"),
            handoff=Handoff(owner="test:1:lane", lease_until=time.time() + 60, room={"scripted": lane.handoff_room()}),
        )
        assert len(accepted.handed_off) == 2
        lane.take(accepted.handed_off)
        assert lane.handoff_room() == HANDOFF_LIMIT - 2
