"""The way back from a Redis outage, case by case (tests/store/test_failover.py has the whole path): what was
accepted while Redis answered again, latest-only updates that crossed, saved progress, idempotency keys, and
what the replica must not answer for Redis."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from broadcaster.domain.errors import ConflictError, StoreUnreachable
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store import Accepted, Handoff, Outcome
from broadcaster.store.failover import FailoverStore
from broadcaster.store.failover.store import RETURN_GRACE
from broadcaster.store.failover.watch import refresh, way_back
from broadcaster.store.redis import RedisStore
from tests.store.test_failover import back_again, failover_on, redis_alone, shared, store
from tests.support.failover import returning
from tests.support.journal import claim, first_attempt, planned, post
from tests.support.redis import RedisServer

__all__ = ["redis_alone", "shared", "store"]  # the fixtures, shared with test_failover


async def test_an_update_accepted_while_returning_is_left_to_redis_unleased(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    redis_alone.stop()
    await post(store, planned("a"))  # degraded now
    redis_alone.start(again=True)
    await returning(store)
    handoff = Handoff(owner="lane-1", lease_until=time.time() + 60, room={"scripted": 10})
    late = await post(store, planned("b"), handoff=handoff)
    assert late.handed_off == ()  # not leased here: it goes back to Redis with the rest
    await back_again(store, redis_alone, start=False)
    await shared.open()
    assert late.deliveries[0].id in await claim(shared, "other")
    assert await store.local.deliveries(open_only=True) == []  # nothing left for the replica to send


async def older_accepted_in_an_outage(store: FailoverStore, server: RedisServer) -> tuple[Accepted, Accepted]:
    """An incident opened on Redis with a latest-only delivery to x, and an update of it to x accepted into the
    replica while Redis was down; Redis answers again, the way back not begun."""
    opened = await post(store, planned("x", ordering=Ordering.LATEST_ONLY))
    await refresh(store)
    server.stop()
    older = await post(
        store, planned("x", ordering=Ordering.LATEST_ONLY), incident_id=opened.incident.id, status="identified"
    )
    server.start(again=True)
    return opened, older


async def test_an_older_update_adopted_never_supersedes_a_newer_one_queued_in_redis(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    opened, older = await older_accepted_in_an_outage(store, redis_alone)
    await shared.open()
    newer = await post(
        shared,
        planned("x", ordering=Ordering.LATEST_ONLY),
        incident_id=opened.incident.id,
        status="monitoring",
        at=datetime.now(UTC) + timedelta(seconds=1),
    )
    await back_again(store, redis_alone, start=False)
    [newer_x] = await shared.deliveries(update_id=newer.update.id)
    [older_x] = await shared.deliveries(update_id=older.update.id)
    assert newer_x.state is DeliveryState.PENDING
    assert older_x.state is DeliveryState.SUPERSEDED  # never to go out after the newer word
    history = await shared.history(opened.incident.id)
    assert history.incident.status.value == "monitoring"
    assert [u.id for u in history.updates] == [opened.update.id, newer.update.id, older.update.id]


async def test_what_an_attempt_saved_goes_back_with_its_delivery(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    redis_alone.stop()
    accepted = await post(store, planned("list"))
    [leased] = await claim(store, "lane-1")
    await store.save_progress("lane-1", leased, {"a@example.com": "", "b@example.com": ""})
    now = time.time()
    await store.finish(
        "lane-1",
        [first_attempt(leased, DeliveryState.PENDING, at=now, not_before=now, error="421")],
    )
    await back_again(store, redis_alone)
    await shared.open()
    result = await shared.claim(
        "scripted", ordering=Ordering.IN_ORDER, owner="other", limit=5, now=time.time() + 1, lease=60
    )
    [resumed] = result.claimed
    assert resumed.delivery.id == accepted.deliveries[0].id and resumed.delivery.attempts == 2
    assert dict(resumed.progress) == {"a@example.com": "", "b@example.com": ""}


async def test_an_idempotency_key_used_in_the_outage_answers_the_same_update_after_it(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    redis_alone.stop()
    first = await post(store, planned("a"), key="deploy-42", digest="sha-1")
    await back_again(store, redis_alone)
    await shared.open()
    again = await post(shared, planned("a"), key="deploy-42", digest="sha-1")
    assert again.duplicate and again.update.id == first.update.id


async def test_an_idempotency_key_redis_answered_before_the_outage_answers_during_it(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    """A script sending its request again while Redis is down gets the update Redis made of it (the replica
    copied the key), not a second update that the way back would then bring to Redis as well."""
    first = await post(store, planned("a"), key="deploy-43", digest="sha-1")
    await refresh(store)
    redis_alone.stop()
    again = await post(store, planned("a"), key="deploy-43", digest="sha-1")
    assert store.standing().degraded
    assert again.duplicate and again.update.id == first.update.id
    with pytest.raises(ConflictError, match="used for update"):
        await post(store, planned("a"), key="deploy-43", digest="sha-2", message="Another request.")
    await back_again(store, redis_alone)
    await shared.open()
    assert [u.id for u in (await shared.history(first.incident.id)).updates] == [first.update.id]
    assert len(await shared.incidents()) == 1


async def test_a_key_answered_by_the_same_content_in_the_outage_goes_back_with_its_own_request(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    """Chat posts an update while Redis is down, the form the same content with a key a moment later: the key
    goes back with the form's request, so Redis too refuses it for another request."""
    redis_alone.stop()
    chat = await post(store, planned("a"), same_within=60)
    form = await post(store, planned("a"), same_within=60, key="form:7", digest="sha-form")
    assert form.duplicate and form.update.id == chat.update.id
    await back_again(store, redis_alone)
    await shared.open()
    again = await post(shared, planned("a"), key="form:7", digest="sha-form")
    assert again.duplicate and again.update.id == chat.update.id
    with pytest.raises(ConflictError, match="used for update"):
        await post(shared, planned("a"), key="form:7", digest="sha-other", message="Another request.")


async def outage_with_a_lease_running_out(
    store: FailoverStore, other: FailoverStore, redis_alone: RedisServer
) -> tuple[str, float]:
    """`store` leases a delivery from Redis and, with Redis down, delivers it (the outcome held); `other` runs
    degraded too; both leases' time passes. Then Redis is back and `other` takes its way back first. The
    delivery's id, and a time past its lease."""
    await post(store, planned("a"))
    [leased] = await claim(store, "lane-a", lease=1)
    redis_alone.stop()
    await store.finish("lane-a", [first_attempt(leased, DeliveryState.DELIVERED, at=time.time())])
    await other.incidents()  # finds Redis gone: runs on its replica
    assert store.standing().degraded and other.standing().degraded
    await back_again(other, redis_alone)
    return leased, time.time() + 5


async def test_leases_that_ran_out_in_an_outage_wait_for_their_holders_outcomes(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore, tmp_path: Path
) -> None:
    """Back first, another instance does not take back what the holder sent while Redis was down: the holder's
    outcomes arrive first, and the delivery is not sent twice."""
    other = failover_on(redis_alone, tmp_path / "other")
    await other.open()
    try:
        leased, later = await outage_with_a_lease_running_out(store, other, redis_alone)
        assert await other.recover(now=later, owner_is_dead=lambda owner: False) == []
        await back_again(store, redis_alone, start=False)
        await shared.open()
        [delivery] = await shared.deliveries()
        assert (delivery.id, delivery.state, delivery.attempts) == (leased, DeliveryState.DELIVERED, 1)
        assert await other.recover(now=later, owner_is_dead=lambda owner: False) == []
    finally:
        await other.close()


async def test_leases_whose_holder_never_comes_back_are_taken_back_after_the_grace(
    store: FailoverStore, redis_alone: RedisServer, tmp_path: Path
) -> None:
    other = failover_on(redis_alone, tmp_path / "other")
    await other.open()
    try:
        leased, later = await outage_with_a_lease_running_out(store, other, redis_alone)
        assert other.back_at is not None
        other.back_at -= RETURN_GRACE  # the grace has passed, and `store` is still cut off
        [recovered] = await other.recover(now=later, owner_is_dead=lambda owner: False)
        assert (recovered.id, recovered.state) == (leased, DeliveryState.PENDING)
    finally:
        await other.close()


async def test_the_replica_never_answers_for_redis_on_requeues_logouts_or_login_links(
    store: FailoverStore, redis_alone: RedisServer
) -> None:
    redis_alone.stop()
    await post(store, planned("a"))
    with pytest.raises(StoreUnreachable, match="requeueing failed deliveries waits"):
        await store.requeue_failed(now=time.time())
    with pytest.raises(StoreUnreachable, match="checking a logout waits"):
        await store.session_revoked("session-1", now=time.time())
    with pytest.raises(StoreUnreachable, match="signing in with a login link waits"):
        await store.redeem_once("login-link", "nonce-1", now=time.time(), until=time.time() + 60)


async def test_an_adopt_whose_answer_is_lost_is_neither_sent_here_nor_lost(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Redis commits the adopt and goes before answering: the replica must stop sending the update (Redis
    has it), and the next way back must find it there, once."""
    redis_alone.stop()
    accepted = await post(store, planned("a"))
    adopt = store.primary.adopt

    async def committed_then_lost(*args: Any, **kwargs: Any) -> bool:
        await adopt(*args, **kwargs)
        raise StoreUnreachable("journal write failed: cannot reach Redis (a test: the answer was lost)")

    monkeypatch.setattr(store.primary, "adopt", committed_then_lost)
    redis_alone.start(again=True)
    await returning(store)
    with pytest.raises(StoreUnreachable):
        await way_back(store)
    await store.went_down(StoreUnreachable("the answer was lost"))
    assert await claim(store, "lane-1") == []  # not sent from here: Redis has it
    monkeypatch.setattr(store.primary, "adopt", adopt)
    await back_again(store, redis_alone, start=False)
    await shared.open()
    assert await claim(shared, "other") == [accepted.deliveries[0].id]
    assert len((await shared.history(accepted.incident.id)).updates) == 1


async def test_what_waits_for_the_way_back_s_last_look_goes_where_the_work_is_after_it(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An accept and a lane's claim that reach the lock while the way back takes its last look (under it)
    run once the store is shared again: the update goes to Redis, and nothing is leased from the replica."""
    first = await post(store, planned("a", "b"))
    await refresh(store)
    [leased] = await claim(store, "lane-1", limit=1)  # from Redis, in flight when it stops
    redis_alone.stop()
    await post(store, planned("c"), incident_id=first.incident.id, status="identified")  # degraded
    redis_alone.start(again=True)
    await returning(store)
    racing: list[asyncio.Task[Any]] = []
    look = store.local.held
    now = time.time()

    async def last_look_with_racers() -> Any:
        if store.local_writes.locked() and not racing:  # the last look: the way back holds the lock
            racing.append(asyncio.create_task(post(store, planned("late"))))
            outcome = first_attempt(leased, DeliveryState.DELIVERED, at=now)
            racing.append(asyncio.create_task(claim_recording(store, outcome)))
            await asyncio.sleep(0.05)  # both reach the lock
        return await look()

    monkeypatch.setattr(store.local, "held", last_look_with_racers)
    assert await way_back(store)
    late, result = await racing[0], await racing[1]
    assert not any(c.delivery.id in store.local_ids for c in result.claimed)
    await shared.open()
    assert [d.target for d in await shared.deliveries(update_id=late.update.id)] == ["late"]
    assert (await shared.deliveries(update_id=first.update.id))[0].state is DeliveryState.DELIVERED


async def claim_recording(store: FailoverStore, outcome: Outcome) -> Any:
    return await store.finish_and_claim(
        [outcome], "scripted", ordering=Ordering.IN_ORDER, owner="lane-1", limit=5, now=time.time() + 1, lease=60
    )


async def test_an_older_update_keeps_its_word_to_a_target_nothing_newer_goes_to(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    """Latest-only is per target: a newer update posted meanwhile to other channels only leaves the older
    update's delivery to x to go out."""
    opened, older = await older_accepted_in_an_outage(store, redis_alone)
    await shared.open()
    later = datetime.now(UTC) + timedelta(seconds=1)
    await post(shared, planned("mail-1"), incident_id=opened.incident.id, status="monitoring", at=later)
    await back_again(store, redis_alone, start=False)
    [older_x] = await shared.deliveries(update_id=older.update.id)
    assert older_x.state is DeliveryState.PENDING
