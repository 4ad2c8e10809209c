"""The store contract run against a real redis-server, and what only the Redis journal promises: several
processes (here, several stores on one server) share one queue, one set of idempotency keys and one set of
pauses, and hear of each other's work; finished work leaves no index behind; a store URL's password never
shows in an error. Operation for operation, it answers as the SQLite journal does: test_redis_against_sqlite.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime

import pytest
import redis.asyncio

from broadcaster.domain.drafts import SAME_UPDATE_WITHIN
from broadcaster.domain.errors import ConflictError, JournalWriteError, LeaseLost, StoreError
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store import Handoff, Store, open_store
from broadcaster.store.base import KeyedRequest
from broadcaster.store.redis import RedisStore, accepting, notices
from broadcaster.store.redis.accepting import CONTENT_KEPT
from broadcaster.store.redis.connection import masked, optional_text, text
from tests.store.contract import StoreContract
from tests.support.journal import claim, finish, planned, post
from tests.support.redis import RedisServer


class TestRedisStore(StoreContract):
    @pytest.fixture
    async def journal(self, redis_url: str) -> AsyncIterator[Store]:
        store = RedisStore(redis_url)
        await store.open()
        yield store
        await store.close()

    async def progress_of(self, journal: Store, delivery_id: str) -> dict[str, str]:
        assert isinstance(journal, RedisStore)
        async with redis.asyncio.from_url(journal.url, decode_responses=True) as client:
            saved = await client.hgetall(f"{journal.prefix}progress:{delivery_id}")
        return {str(key): str(note) for key, note in saved.items()}

    def another(self, journal: Store) -> Store:
        assert isinstance(journal, RedisStore)
        return RedisStore(journal.url, prefix=journal.prefix)


@pytest.fixture
async def two(redis_url: str) -> AsyncIterator[tuple[RedisStore, RedisStore]]:
    """Two stores on one server, as two processes (on one host or two) would have."""
    first, second = RedisStore(redis_url), RedisStore(redis_url)
    await first.open()
    await second.open()
    yield first, second
    await first.close()
    await second.close()


async def test_a_lease_taken_by_one_process_is_not_another_processes(two: tuple[RedisStore, RedisStore]) -> None:
    one, other = two
    accepted = await post(one, planned("a", "b"))
    (mine,) = await claim(one, "one", limit=1)
    assert await claim(other, "other") == [accepted.deliveries[1].id]
    assert await finish(other, mine, DeliveryState.DELIVERED, owner="other") == 0
    with pytest.raises(LeaseLost):
        await other.save_progress("other", mine, {"x@example.com": ""})
    assert await finish(other, mine, DeliveryState.DELIVERED, owner="one") == 1  # the lease, not the client, counts


async def test_an_idempotency_key_seen_by_one_process_answers_the_other(two: tuple[RedisStore, RedisStore]) -> None:
    one, other = two
    first = await post(one, planned(), key="form:7", digest="a")
    again = await post(other, planned(), key="form:7", digest="a")
    assert again.duplicate and again.update.id == first.update.id
    with pytest.raises(ConflictError):
        await post(other, planned(), key="form:7", digest="b", message="Other.")


async def test_updates_racing_to_one_incident_each_get_their_own_turn(two: tuple[RedisStore, RedisStore]) -> None:
    """Accepting reads the incident and commits only if it is unchanged: racing writers retry (as many as
    accepting.ATTEMPTS at once), none is lost and no seq is given twice."""
    one, other = two
    first = await post(one, planned())
    racing = [
        post(store, planned(), incident_id=first.incident.id, status="identified", message=f"Update {n}.")
        for n, store in enumerate([one, other] * (accepting.ATTEMPTS // 2))
    ]
    accepted = await asyncio.gather(*racing)
    assert sorted(a.update.seq for a in accepted) == list(range(2, accepting.ATTEMPTS + 2))
    history = await other.history(first.incident.id)
    assert [u.seq for u in history.updates] == list(range(1, accepting.ATTEMPTS + 2))


async def test_the_same_new_incident_posted_at_once_is_one_update(two: tuple[RedisStore, RedisStore]) -> None:
    one, other = two
    at = datetime.now(UTC)
    answers = await asyncio.gather(
        *[post(store, planned(), same_within=60, at=at, title="Checkout down") for store in [one, other] * 3]
    )
    assert len({a.update.id for a in answers}) == 1
    assert sum(not a.duplicate for a in answers) == 1
    assert len(await one.incidents()) == 1


async def test_a_follower_hears_other_processes_work_and_pauses(two: tuple[RedisStore, RedisStore]) -> None:
    """Its own process's notices it skips: its lanes know already."""
    one, other = two
    heard: list[str] = []
    work, controls = asyncio.Event(), asyncio.Event()

    def on(kind: str, event: asyncio.Event) -> Callable[[], None]:
        def hear() -> None:
            heard.append(kind)
            event.set()

        return hear

    async with one.follow(on_work=on("work", work), on_controls=on("controls", controls), on_holder_gone=lambda: None):
        await post(one, planned())  # its own: not heard
        await post(other, planned())
        await asyncio.wait_for(work.wait(), 5)
        await other.set_paused("scripted", "", paused=True, reason="test", now=time.time())
        await asyncio.wait_for(controls.wait(), 5)
    assert heard == ["work", "controls"]


async def test_a_follower_whose_connection_drops_subscribes_again(
    two: tuple[RedisStore, RedisStore], redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """What was said while it was away is lost: back, it wakes its lanes to look, and hears on."""
    monkeypatch.setattr(notices, "RECONNECT_AFTER", 0.01)
    one, other = two
    woken = asyncio.Event()
    async with one.follow(on_work=woken.set, on_controls=lambda: None, on_holder_gone=lambda: None):
        async with redis.asyncio.from_url(redis_url) as admin:
            await admin.client_kill_filter(_type="pubsub")
        await asyncio.wait_for(woken.wait(), 5)  # back, it looks for what it missed
        woken.clear()
        await post(other, planned())
        await asyncio.wait_for(woken.wait(), 5)


async def test_another_process_takes_back_a_lease_that_ran_out(two: tuple[RedisStore, RedisStore]) -> None:
    one, other = two
    await post(one, planned())
    (delivery_id,) = await claim(one, "crashed", lease=0.01)
    await asyncio.sleep(0.05)
    recovered = await other.recover(now=time.time(), owner_is_dead=lambda owner: False)
    assert [d.id for d in recovered] == [delivery_id]
    assert await claim(other, "other") == [delivery_id]
    assert [a.outcome for a in await other.attempts(delivery_id)] == ["interrupted"]


async def test_journals_under_other_prefixes_are_apart(redis_url: str) -> None:
    one, other = RedisStore(redis_url), RedisStore(redis_url, prefix="other-broadcaster:")
    await one.open()
    await other.open()
    try:
        await post(one, planned())
        assert await other.incidents() == [] and await other.deliveries(open_only=True) == []
    finally:
        await one.close()
        await other.close()


async def test_finished_work_leaves_no_index_behind(redis_url: str) -> None:
    """What claims, sweeps and the backlog read holds open work only, however long the history grows."""
    store = RedisStore(redis_url)
    await store.open()
    try:
        first = await post(
            store,
            planned("a", "b", "c"),
            handoff=Handoff(owner="me", lease_until=time.time() + 60, room={"scripted": 1}),
        )
        await post(store, planned("a", "b", ttl=0.01), incident_id=first.incident.id, status="identified")
        await post(store, planned("a", ordering=Ordering.LATEST_ONLY))
        for delivery_id in await claim(store):
            await finish(store, delivery_id, DeliveryState.DELIVERED, external_id="post-1")
        await finish(store, first.handed_off[0].delivery.id, DeliveryState.DELIVERED)
        await asyncio.sleep(0.05)
        await store.expire_due(now=time.time())  # the second update's deliveries, queued past their time
        latest = await store.claim(
            "latest", ordering=Ordering.LATEST_ONLY, owner="me", limit=5, now=time.time(), lease=60
        )
        await finish(store, latest.claimed[0].delivery.id, DeliveryState.FAILED, error="refused")
        assert await store.deliveries(open_only=True) == [] and await store.backlog() == {}
        async with redis.asyncio.from_url(redis_url, decode_responses=True) as client:
            left = {str(key) async for key in client.scan_iter("broadcaster:*")}
        transient = ("broadcaster:queue:", "broadcaster:leases", "broadcaster:owner")
        by_channel = (":ready", ":waiting", ":open", ":expiry", ":stale")

        def indexes_open_work(key: str) -> bool:
            return key.startswith(transient) or (key.startswith("broadcaster:channel:") and key.endswith(by_channel))

        assert sorted(filter(indexes_open_work, left)) == []
    finally:
        await store.close()


async def test_content_digests_are_forgotten_after_the_longest_window(redis_url: str) -> None:
    """Each update's content digest (what "the same update within a minute" is judged by) expires: the
    journal does not keep a key per update for ever."""
    store = RedisStore(redis_url)
    await store.open()
    try:
        await post(store, planned("a"))
        async with redis.asyncio.from_url(redis_url, decode_responses=True) as client:
            keys = [str(key) async for key in client.scan_iter("broadcaster:content:*")]
            ttls = [await client.ttl(key) for key in keys]
        assert len(keys) == 1
        assert 0 < ttls[0] <= CONTENT_KEPT
        assert SAME_UPDATE_WITHIN < CONTENT_KEPT
    finally:
        await store.close()


async def test_failures_are_journal_errors_that_never_show_the_password() -> None:
    """A refused login, and a server gone: a write is not journaled (JournalWriteError), a read is a StoreError,
    and the store URL in their messages is masked."""
    assert masked("rediss://ops:s3cret%2F@cache.example:6380/2") == "rediss://ops:***@cache.example:6380/2"
    assert masked("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"
    server = RedisServer().start()
    try:
        async with redis.asyncio.from_url(server.url) as admin:
            await admin.config_set("requirepass", "right-pw")
        with pytest.raises(StoreError) as refused:
            await RedisStore(f"redis://:wrong-pw@127.0.0.1:{server.port}/0").open()
        store = open_store(f"redis://:right-pw@127.0.0.1:{server.port}/0")
        assert isinstance(store, RedisStore)
        await store.open()
        await post(store, planned())
        server.stop()
        with pytest.raises(JournalWriteError, match="nothing was acknowledged") as write:
            await post(store, planned())
        with pytest.raises(StoreError, match="nothing was read") as read:
            await store.incidents()
        assert not isinstance(read.value, JournalWriteError)
        await store.close()
    finally:
        server.close()
    for failure in (refused, write, read):
        assert "-pw" not in str(failure.value) and ":***@" in str(failure.value)


async def test_a_journal_of_another_key_layout_is_refused(redis_url: str) -> None:
    async with redis.asyncio.from_url(redis_url) as client:
        await client.set("broadcaster:layout", "0")
    with pytest.raises(StoreError, match="key layout '0'"):
        await RedisStore(redis_url).open()


async def test_a_journal_of_the_first_key_layout_is_brought_up_to_this_ones(redis_url: str) -> None:
    """Layout 1 kept no set of idempotency keys: this build's first open makes it from the keys' hashes, under
    its own prefix matched as it is (here one a glob would read as a character class, matching another's)."""
    prefix = "ops[1]:"
    store = RedisStore(redis_url, prefix=prefix)
    await store.open()
    keyed = await post(store, planned(), key="deploy-4711", digest="sha-a")
    await store.close()
    async with redis.asyncio.from_url(redis_url) as client:
        await client.delete(prefix + "idempotency-keys")
        await client.set(prefix + "layout", "1")
        await client.hset("ops1:idempotency:another-journals", mapping={"update_id": "x", "request_digest": ""})
    upgraded = RedisStore(redis_url, prefix=prefix)
    await upgraded.open()
    try:
        assert await upgraded.keyed_requests() == [
            KeyedRequest(key="deploy-4711", update_id=keyed.update.id, request_digest="sha-a")
        ]
        indexed = await upgraded.link.client.smembers(prefix + "idempotency-keys")
        assert {text(key) for key in indexed} == {"deploy-4711"}
        assert optional_text(await upgraded.link.client.get(prefix + "layout")) == "2"
    finally:
        await upgraded.close()
