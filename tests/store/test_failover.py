"""The failover store on a real redis-server (persistent, stopped and started again on its port) and its
SQLite replica: while Redis answers everything is Redis's; when it stops, updates are accepted and sent
from the replica and what was done with Redis's leases is held; when it is back, all of it goes to Redis
with its ids, and nothing sent is handed out again."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from broadcaster.domain.errors import NotFoundError, StoreUnreachable
from broadcaster.domain.subscriptions import Subscriber
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store.base import DeliveryCopy, KeyedRequest, UpdateCopy
from broadcaster.store.failover import FailoverStore, read_standings
from broadcaster.store.failover.replica import Replica
from broadcaster.store.failover.watch import refresh, watch
from broadcaster.store.redis import RedisStore
from broadcaster.store.sqlite import SqliteStore
from broadcaster.store.sqlite.importing import read_export
from tests.support.journal import claim, finish, first_attempt, planned, post
from tests.support.redis import RedisServer


@pytest.fixture
def redis_alone() -> Iterator[RedisServer]:
    """A redis-server of this test's own, persistent, so it can be stopped and started again."""
    server = RedisServer(persistent=True).start()
    yield server
    server.close()


def failover_on(server: RedisServer, data_dir: Path) -> FailoverStore:
    return FailoverStore(
        RedisStore(server.url, socket_timeout=2),
        data_dir,
        orderings={"scripted": Ordering.IN_ORDER, "latest": Ordering.LATEST_ONLY},
        publish_targets=(),
        refresh_every=60,
        probe_every=0.05,
    )


@pytest.fixture
async def store(redis_alone: RedisServer, tmp_path: Path) -> AsyncIterator[FailoverStore]:
    opened = failover_on(redis_alone, tmp_path)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def shared(redis_alone: RedisServer) -> AsyncIterator[RedisStore]:
    """Redis as another instance sees it (opened once it runs)."""
    journal = RedisStore(redis_alone.url)
    yield journal
    await journal.close()


async def back_again(store: FailoverStore, server: RedisServer, *, start: bool = True) -> None:
    """Start Redis again (unless started already), and let the store's loop take everything back."""
    if start:
        server.start(again=True)
    woken, stop = asyncio.Event(), asyncio.Event()
    watching = asyncio.create_task(watch(store, on_work=woken.set, stop=stop))
    try:
        await asyncio.wait_for(woken.wait(), timeout=30)
    finally:
        stop.set()
        await watching
    assert not store.standing().degraded


async def test_while_redis_answers_updates_go_to_it_and_the_replica_follows(
    store: FailoverStore, shared: RedisStore
) -> None:
    accepted = await post(store, planned("a"))
    await shared.open()
    assert (await shared.update(accepted.update.id)).message == accepted.update.message
    await refresh(store)
    assert (await store.local.history(accepted.incident.id)).incident == accepted.incident
    assert not store.standing().degraded


async def test_with_redis_stopped_updates_are_sent_from_the_replica_and_go_back_with_their_ids(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    first = await post(store, planned("a", "b"))
    await refresh(store)
    [leased_a] = await claim(store, "lane-1", limit=1)  # leased from Redis: in flight when it stops
    redis_alone.stop()

    assert await finish(store, leased_a, DeliveryState.DELIVERED, owner="lane-1", external_id="post-1") == 1
    second = await post(store, planned("a", "b"), incident_id=first.incident.id, status="identified")
    standing = store.standing()
    assert standing.degraded and "cannot reach Redis" in standing.reason
    assert (standing.accepted, standing.waiting) == (1, 1)  # the update accepted here, the outcome held
    assert [s.degraded for s in read_standings(store.data_dir).values()] == [True]
    # Only the update accepted here is sent from here: Redis's queued delivery to b waits for Redis.
    leased = await claim(store, "lane-1")
    assert sorted(leased) == sorted(d.id for d in second.deliveries)
    second_a, second_b = (d.id for d in second.deliveries)
    now = time.time()
    await store.finish(
        "lane-1",
        [
            first_attempt(second_a, DeliveryState.DELIVERED, at=now, external_id="post-2"),
            first_attempt(second_b, DeliveryState.PENDING, at=now, not_before=now + 600, error="HTTP 503"),
        ],
    )

    await back_again(store, redis_alone)
    await shared.open()
    history = await shared.history(first.incident.id)
    assert [(u.id, u.seq) for u in history.updates] == [(first.update.id, 1), (second.update.id, 2)]
    assert history.incident.status.value == "identified"
    ledger = {d.id: d for d in await shared.deliveries(incident_id=first.incident.id)}
    assert ledger[leased_a].state is DeliveryState.DELIVERED and ledger[leased_a].external_id == "post-1"
    assert ledger[second_a].state is DeliveryState.DELIVERED and ledger[second_a].attempts == 1
    assert ledger[second_b].state is DeliveryState.PENDING and ledger[second_b].attempts == 1
    assert ledger[second_b].not_before == pytest.approx(now + 600)
    # What another instance may take now: the first update's b, never a delivery that went out.
    taken = await claim(shared, "other", at=now + 1)
    assert taken == [next(d.id for d in first.deliveries if d.target == "b")]
    assert [a.outcome for a in await shared.attempts(second_b)] == ["retry"]


async def test_an_update_adopted_twice_is_adopted_once(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    redis_alone.stop()
    accepted = await post(store, planned("a"))
    redis_alone.start(again=True)
    await shared.open()
    copy = UpdateCopy(
        incident=accepted.incident,
        update=accepted.update,
        deliveries=tuple(
            DeliveryCopy(delivery=d, ordering=Ordering.IN_ORDER, attempts=()) for d in accepted.deliveries
        ),
    )
    assert await shared.adopt(copy, owner="adopter", now=time.time())
    assert not await shared.adopt(copy, owner="adopter", now=time.time())
    assert len(await shared.deliveries(update_id=accepted.update.id)) == 1
    assert len((await shared.history(accepted.incident.id)).updates) == 1


async def test_an_instance_restarted_while_degraded_takes_its_work_back(
    redis_alone: RedisServer, tmp_path: Path, shared: RedisStore
) -> None:
    before = failover_on(redis_alone, tmp_path)
    await before.open()
    redis_alone.stop()
    accepted = await post(before, planned("a"))
    await before.close()
    after = failover_on(redis_alone, tmp_path)
    await after.open()  # Redis is still down: degraded from the start, with the left work
    assert after.standing().degraded and after.standing().accepted == 1
    try:
        await back_again(after, redis_alone)
        assert after.standing().accepted == 0
    finally:
        await after.close()
    await shared.open()
    assert [d.id for d in await shared.deliveries(update_id=accepted.update.id)] == [accepted.deliveries[0].id]


async def test_two_instances_on_one_data_directory_keep_replicas_of_their_own(
    redis_alone: RedisServer, tmp_path: Path
) -> None:
    one, two = failover_on(redis_alone, tmp_path), failover_on(redis_alone, tmp_path)
    await one.open()
    await two.open()
    try:
        assert (one.local.path.name, two.local.path.name) == ("replica.db", "replica-2.db")
    finally:
        await one.close()
        await two.close()


async def test_what_only_makes_sense_shared_is_refused_while_degraded(
    store: FailoverStore, redis_alone: RedisServer
) -> None:
    redis_alone.stop()
    with pytest.raises(StoreUnreachable, match="a new subscription waits for the shared journal"):
        await store.save_subscribers([Subscriber(kind="email", address="a@example.com")])
    with pytest.raises(StoreUnreachable, match="removing a subscriber waits"):
        await store.remove_subscriber("email", "a@example.com")
    with pytest.raises(StoreUnreachable, match="lifting a suppression waits"):
        await store.unsuppress("a@example.com")
    # A pause is journaled here and held for Redis.
    await store.set_paused("scripted", "a", paused=True, reason="maintenance", now=time.time())
    assert [(c.target, c.paused) for c in await store.controls()] == [("a", True)]
    await back_again(store, redis_alone)
    assert [(c.target, c.paused) for c in await store.primary.controls()] == [("a", True)]


async def test_the_replica_is_not_overwritten_while_it_holds_work_of_its_own(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore
) -> None:
    redis_alone.stop()
    local = await post(store, planned("a"))
    redis_alone.start(again=True)
    await shared.open()
    await post(shared, planned("z"), title="Elsewhere")
    await refresh(store)  # refused: the local update has not gone back yet
    assert (await store.local.update(local.update.id)).id == local.update.id
    assert [i.name for i in await store.local.incidents()] == ["API errors"]


async def test_a_refresh_leaves_out_a_key_whose_update_the_copy_lacks(tmp_path: Path) -> None:
    """An export is not one atomic read: a key whose update was accepted after the updates were read comes
    without its update. The refresh keeps the keys it can, and the next one brings that key with its update."""
    source = SqliteStore(tmp_path / "source.db", url="sqlite:///source.db")
    replica = Replica(tmp_path / "replica.db", url="")
    await source.open()
    await replica.open()
    try:
        keyed = await post(source, planned("a"), key="deploy-1", digest="sha-1")
        exported = await read_export(source, publish_targets=())
        late = KeyedRequest(key="deploy-2", update_id="0123456789ab", request_digest="sha-2")
        assert await replica.refresh(dataclasses.replace(exported, keyed=[*exported.keyed, late]))
        assert await replica.keyed_requests() == [
            KeyedRequest(key="deploy-1", update_id=keyed.update.id, request_digest="sha-1")
        ]
    finally:
        await replica.close()
        await source.close()


async def test_redis_back_without_its_data_is_said_and_gets_what_the_outage_accepted(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis restarted with nothing persisted: the instance says so, and gives back what it accepted during the
    outage and in the minutes before it (what it still holds); the rest is for the appendonly file or a kit."""
    older = await post(store, planned("a"), title="Older", at=datetime.now(UTC) - timedelta(minutes=10))
    before = await post(store, planned("a"))
    await refresh(store)
    redis_alone.stop()
    during = await post(store, planned("a"), incident_id=before.incident.id, status="identified")
    redis_alone.wipe()
    with caplog.at_level(logging.ERROR, logger="broadcaster.failover"):
        await back_again(store, redis_alone)
    assert "the shared journal lost its data" in caplog.text
    await shared.open()
    assert [u.id for u in (await shared.history(before.incident.id)).updates] == [before.update.id, during.update.id]
    assert await shared.lost_its_data() is False  # marked anew: the next look says nothing
    assert older.incident.id not in {i.id for i in await shared.incidents()}  # older than those minutes: lost


async def test_an_incident_the_replica_lacks_is_said_to_be_perhaps_another_instances(
    store: FailoverStore, redis_alone: RedisServer
) -> None:
    redis_alone.stop()
    await post(store, planned("a"))  # runs on the replica from here on
    with pytest.raises(NotFoundError, match=r"no incident with id 0123456789ab: .* opened on another instance"):
        await post(store, planned("a"), incident_id="0123456789ab", status="identified")


async def test_a_flushed_redis_gets_back_the_recent_updates_the_replica_holds(
    store: FailoverStore, redis_alone: RedisServer, shared: RedisStore, caplog: pytest.LogCaptureFixture
) -> None:
    """Flushed while it answers (no outage): the replica is not refreshed from it, empty, but gives back its
    recent updates, as after an outage."""
    accepted = await post(store, planned("a"))
    await refresh(store)
    redis_alone.flush()
    with caplog.at_level(logging.ERROR, logger="broadcaster.failover"):
        await back_again(store, redis_alone, start=False)
    assert "the shared journal lost its data" in caplog.text
    await shared.open()
    assert [u.id for u in (await shared.history(accepted.incident.id)).updates] == [accepted.update.id]
