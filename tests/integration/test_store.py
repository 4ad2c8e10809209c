"""The journal contract, run against a real SQLite file. A Redis backend subclasses StoreContract."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, Self

import pytest

from broadcaster.errors import InputError, NotFoundError, StoreError
from broadcaster.store import Handoff, Outcome, Store
from broadcaster.store.sqlite import CHECKPOINT_EVERY, SqliteStore
from broadcaster.store.sqlite_ops import LEASES
from broadcaster.store.sqlite_schema import SCHEMA_VERSION
from broadcaster.vocabulary import DeliveryState
from channels.base import Ordering
from tests.support.journal import planned, post


async def claim(journal: Store, owner: str = "me", *, ordering: Ordering = Ordering.IN_ORDER, limit: int = 10,
                at: float | None = None, lease: float = 60.0, skip: tuple[str, ...] = ()) -> list[str]:  # fmt: skip
    result = await journal.claim(
        "scripted", ordering=ordering, owner=owner, limit=limit, now=at or time.time(), lease=lease, skip_targets=skip
    )
    return [c.delivery.id for c in result.claimed]


async def finish(journal: Store, delivery_id: str, state: DeliveryState, owner: str = "me", **extra: Any) -> int:
    now = time.time()
    outcome = Outcome(delivery_id=delivery_id, state=state, attempt=1, started_at=now, finished_at=now, **extra)
    return await journal.finish(owner, [outcome])


class StoreContract:
    """What every journal backend must do. Subclasses provide the `journal` fixture."""

    async def test_accepting_plans_one_pending_delivery_per_target(self, journal: Store) -> None:
        accepted = await post(journal, planned("a", "b"))
        assert [(d.target, d.state) for d in accepted.deliveries] == [("a", DeliveryState.PENDING),
                                                                      ("b", DeliveryState.PENDING)]  # fmt: skip
        history = await journal.history(accepted.incident.id)
        assert [u.id for u in history.updates] == [accepted.update.id]

    async def test_a_refused_update_journals_nothing(self, journal: Store) -> None:
        first = await post(journal, planned(), status="resolved")
        with pytest.raises(InputError, match="reopen"):
            await post(journal, planned(), incident_id=first.incident.id)
        assert len((await journal.history(first.incident.id)).updates) == 1
        assert len(await journal.deliveries(incident_id=first.incident.id)) == 1

    async def test_unknown_incident_is_not_found(self, journal: Store) -> None:
        with pytest.raises(NotFoundError, match="no incident with id"):
            await post(journal, planned(), incident_id="0123456789ab")

    async def test_idempotency_key_returns_the_original(self, journal: Store) -> None:
        first = await post(journal, planned(), key="k-1")
        again = await post(journal, planned(), key="k-1", message="A different body.")
        assert again.duplicate and again.update.id == first.update.id
        assert [d.id for d in again.deliveries] == [d.id for d in first.deliveries]
        assert len(await journal.incidents()) == 1

    async def test_claims_are_leases_one_owner_at_a_time(self, journal: Store) -> None:
        await post(journal, planned("a", "b"))
        mine = await claim(journal, "me")
        assert len(mine) == 2
        assert await claim(journal, "someone else") == []
        assert await finish(journal, mine[0], DeliveryState.DELIVERED, owner="someone else") == 0
        assert await finish(journal, mine[0], DeliveryState.DELIVERED) == 1
        (attempt,) = await journal.attempts(mine[0])
        assert attempt.outcome == "delivered" and attempt.number == 1

    async def test_in_order_targets_take_one_update_at_a_time(self, journal: Store) -> None:
        first = await post(journal, planned("a", "b"))
        second = await post(journal, planned("a", "b"), incident_id=first.incident.id, status="identified")
        claimed = await claim(journal)
        assert set(claimed) == {d.id for d in first.deliveries}
        a_first = next(d.id for d in first.deliveries if d.target == "a")
        await finish(journal, a_first, DeliveryState.DELIVERED)
        assert await claim(journal) == [next(d.id for d in second.deliveries if d.target == "a")]

    async def test_an_update_waiting_for_retry_holds_back_later_ones_on_its_target(self, journal: Store) -> None:
        first = await post(journal, planned())
        await post(journal, planned(), incident_id=first.incident.id, status="identified")
        (delivery_id,) = await claim(journal)
        await finish(journal, delivery_id, DeliveryState.PENDING, not_before=time.time() + 60)
        assert await claim(journal) == []  # the retry is not due, and nothing may overtake it

    async def test_latest_only_supersedes_queued_older_updates(self, journal: Store) -> None:
        plan = planned(ordering=Ordering.LATEST_ONLY, name="scripted")
        first = await post(journal, plan)
        second = await post(journal, plan, incident_id=first.incident.id, status="identified")
        assert [d.id for d in second.superseded] == [first.deliveries[0].id]
        (state,) = [d.state for d in await journal.deliveries(update_id=first.update.id)]
        assert state is DeliveryState.SUPERSEDED
        assert await claim(journal, ordering=Ordering.LATEST_ONLY) == [second.deliveries[0].id]

    async def test_latest_only_in_flight_update_is_superseded_if_it_comes_back(self, journal: Store) -> None:
        plan = planned(ordering=Ordering.LATEST_ONLY, name="scripted")
        first = await post(journal, plan)
        (in_flight,) = await claim(journal, ordering=Ordering.LATEST_ONLY)
        second = await post(journal, plan, incident_id=first.incident.id, status="identified")
        assert second.superseded == ()  # in flight: it may be going out right now
        assert await claim(journal, ordering=Ordering.LATEST_ONLY) == []  # one at a time per incident
        await finish(journal, in_flight, DeliveryState.PENDING, not_before=0.0)
        result = await journal.claim("scripted", ordering=Ordering.LATEST_ONLY, owner="me", limit=10,
                                     now=time.time(), lease=60)  # fmt: skip
        assert [d.id for d in result.superseded] == [in_flight]
        assert [c.delivery.id for c in result.claimed] == [second.deliveries[0].id]

    async def test_latest_only_keeps_other_incidents_apart(self, journal: Store) -> None:
        plan = planned(ordering=Ordering.LATEST_ONLY, name="scripted")
        await post(journal, plan, title="One")
        await post(journal, plan, title="Two")
        assert len(await claim(journal, ordering=Ordering.LATEST_ONLY)) == 2

    async def test_skipped_targets_are_not_claimed(self, journal: Store) -> None:
        accepted = await post(journal, planned("a", "b"))
        assert await claim(journal, skip=("a",)) == [d.id for d in accepted.deliveries if d.target == "b"]

    async def test_deliveries_past_their_ttl_expire_instead_of_being_claimed(self, journal: Store) -> None:
        accepted = await post(journal, planned(ttl=5))
        result = await journal.claim("scripted", ordering=Ordering.IN_ORDER, owner="me", limit=5,
                                     now=time.time() + 10, lease=60)  # fmt: skip
        assert result.claimed == [] and [d.id for d in result.expired] == [accepted.deliveries[0].id]
        assert result.expired[0].state is DeliveryState.EXPIRED

    async def test_an_expired_delivery_is_never_claimed_even_between_sweeps(self, journal: Store) -> None:
        """Expiry sweeps run once per poll interval; the claim itself must still refuse what is past its TTL."""
        await post(journal, planned(ttl=5))
        result = await journal.claim("scripted", ordering=Ordering.IN_ORDER, owner="me", limit=5,
                                     now=time.time() + 10, lease=60, sweep=False)  # fmt: skip
        assert (result.claimed, result.expired) == ([], [])
        (waiting,) = await journal.deliveries(open_only=True)
        assert waiting.state is DeliveryState.PENDING  # left for the next sweep to record as expired

    async def test_outcomes_recorded_with_a_claim_are_recorded_first(self, journal: Store) -> None:
        """A lane records what finished and claims what is next in one transaction."""
        first = await post(journal, planned("a"))
        (delivery_id,) = await claim(journal)
        second = await post(journal, planned("a"), incident_id=first.incident.id, status="identified")
        now = time.time()
        result = await journal.claim(
            "scripted", ordering=Ordering.IN_ORDER, owner="me", limit=5, now=now, lease=60,
            record=[Outcome(delivery_id, DeliveryState.DELIVERED, 1, now, now, detail="ok")],
        )  # fmt: skip
        assert [c.delivery.id for c in result.claimed] == [second.deliveries[0].id]  # its turn came at once
        assert [d.state for d in await journal.deliveries(update_id=first.update.id)] == [DeliveryState.DELIVERED]

    async def test_lapsed_leases_and_dead_owners_are_recovered(self, journal: Store) -> None:
        await post(journal, planned("a"))
        await post(journal, planned("b"))
        await post(journal, planned("c"))
        short, dead, alive = (await claim(journal, "short", limit=1, lease=0.01), await claim(journal, "dead", limit=1),
                              await claim(journal, "alive", limit=1))  # fmt: skip
        await asyncio.sleep(0.05)
        recovered = await journal.recover(now=time.time(), owner_is_dead=lambda owner: owner == "dead")
        assert {d.id for d in recovered} == {*short, *dead}
        assert {d.state for d in recovered} == {DeliveryState.PENDING}
        assert set(await claim(journal, "new")) == {*short, *dead}
        outcomes = [a.outcome for a in await journal.attempts(dead[0])]
        assert outcomes == ["interrupted"]
        assert alive

    async def test_released_leases_do_not_count_the_attempt(self, journal: Store) -> None:
        await post(journal, planned())
        (delivery_id,) = await claim(journal)
        assert await journal.release("me", None) == 1
        (delivery,) = await journal.deliveries(open_only=True)
        assert (delivery.id, delivery.state, delivery.attempts) == (delivery_id, DeliveryState.PENDING, 0)

    async def test_thread_parent_is_the_last_delivered_external_id(self, journal: Store) -> None:
        first = await post(journal, planned())
        (delivery_id,) = await claim(journal)
        await finish(journal, delivery_id, DeliveryState.DELIVERED, external_id="post-1")
        await post(journal, planned(), incident_id=first.incident.id, status="identified")
        result = await journal.claim("scripted", ordering=Ordering.IN_ORDER, owner="me", limit=1, now=time.time(),
                                     lease=60)  # fmt: skip
        (claimed,) = result.claimed
        assert claimed.thread_parent == "post-1"
        assert [u.seq for u in claimed.history] == [1, 2] and claimed.incident.update_count == 2

    async def test_a_handoff_leases_deliveries_to_its_owner_as_they_are_accepted(self, journal: Store) -> None:
        """The accepting process's lane takes them in the accepting transaction, in plan order, as many
        as it has room for; the rest stay queued for any claim."""
        until = time.time() + 60
        accepted = await post(journal, planned("a", "b", "c"), handoff=Handoff("me", until, {"scripted": 2}))
        assert [(c.delivery.target, c.delivery.state, c.delivery.attempts) for c in accepted.handed_off] == [
            ("a", DeliveryState.IN_FLIGHT, 1), ("b", DeliveryState.IN_FLIGHT, 1)]  # fmt: skip
        first = accepted.handed_off[0]
        assert (first.incident, first.history, first.thread_parent, first.progress) == (
            accepted.incident, (accepted.update,), None, {})  # fmt: skip
        journaled = {d.target: (d.state, d.attempts) for d in await journal.deliveries(update_id=accepted.update.id)}
        assert journaled == {"a": (DeliveryState.IN_FLIGHT, 1), "b": (DeliveryState.IN_FLIGHT, 1),
                             "c": (DeliveryState.PENDING, 0)}  # fmt: skip
        assert [(d.target, d.state) for d in accepted.deliveries] == [
            ("a", DeliveryState.IN_FLIGHT), ("b", DeliveryState.IN_FLIGHT), ("c", DeliveryState.PENDING)]  # fmt: skip
        assert await claim(journal, "other") == [accepted.deliveries[2].id]  # the handed-off two are leased
        assert await finish(journal, first.delivery.id, DeliveryState.DELIVERED, owner="other") == 0
        assert await finish(journal, first.delivery.id, DeliveryState.DELIVERED) == 1

    async def test_a_handoff_leaves_targets_that_must_wait_in_the_queue(self, journal: Store) -> None:
        """Skipped targets, paused ones, and targets with an earlier delivery still open (in flight or
        queued) are not handed off; nor is a second delivery to the same target in one plan."""
        earlier = await post(journal, planned("busy", "queued"))
        assert await claim(journal, "other", limit=1) == [earlier.deliveries[0].id]
        await journal.set_paused("scripted", "paused", paused=True, reason="test", now=time.time())
        handoff = Handoff("me", time.time() + 60, {"scripted": 10}, {"scripted": {"skipped"}})
        accepted = await post(journal, planned("busy", "queued", "skipped", "paused", "free", "free"), handoff=handoff)
        assert [c.delivery.target for c in accepted.handed_off] == ["free"]
        assert [d.state for d in accepted.deliveries].count(DeliveryState.IN_FLIGHT) == 1
        second_free = accepted.deliveries[5]
        claimable = await claim(journal, "other")
        assert earlier.deliveries[1].id in claimable  # the queued one of the earlier update goes first
        assert second_free.id not in claimable  # its target's first delivery in this plan is still in flight

    async def test_nothing_is_handed_off_on_a_paused_channel(self, journal: Store) -> None:
        await journal.set_paused("scripted", "", paused=True, reason="test", now=time.time())
        accepted = await post(journal, planned("a"), handoff=Handoff("me", time.time() + 60, {"scripted": 10}))
        assert accepted.handed_off == ()
        assert [d.state for d in await journal.deliveries(update_id=accepted.update.id)] == [DeliveryState.PENDING]

    async def test_a_repeated_idempotency_key_hands_nothing_off(self, journal: Store) -> None:
        first = await post(journal, planned("a"), key="k-1")
        again = await post(journal, planned("a"), key="k-1", handoff=Handoff("me", time.time() + 60, {"scripted": 5}))
        assert (again.duplicate, again.handed_off, again.update.id) == (True, (), first.update.id)
        assert await claim(journal) == [first.deliveries[0].id]

    async def test_deliveries_handed_off_to_a_dead_process_are_recovered(self, journal: Store) -> None:
        """A crash right after accepting loses nothing: the leases come back to the queue, the
        interrupted attempt counted, as for any claim."""
        accepted = await post(journal, planned("a", "b"), handoff=Handoff("dead", time.time() + 60, {"scripted": 5}))
        recovered = await journal.recover(now=time.time(), owner_is_dead=lambda owner: owner == "dead")
        assert {d.id for d in recovered} == {d.id for d in accepted.deliveries}
        assert {d.attempts for d in await journal.deliveries(update_id=accepted.update.id)} == {1}
        assert set(await claim(journal, "new")) == {d.id for d in accepted.deliveries}
        assert {d.attempts for d in await journal.deliveries(update_id=accepted.update.id)} == {2}
        assert [a.outcome for a in await journal.attempts(accepted.deliveries[0].id)] == ["interrupted"]

    async def test_a_handed_off_delivery_of_a_later_update_gets_its_thread_parent(self, journal: Store) -> None:
        first = await post(journal, planned(), handoff=Handoff("me", time.time() + 60, {"scripted": 1}))
        (delivery,) = first.handed_off
        await finish(journal, delivery.delivery.id, DeliveryState.DELIVERED, external_id="post-1")
        later = await post(journal, planned(), incident_id=first.incident.id, status="identified",
                           handoff=Handoff("me", time.time() + 60, {"scripted": 1}))  # fmt: skip
        (claimed,) = later.handed_off
        assert claimed.thread_parent == "post-1"
        assert [u.seq for u in claimed.history] == [1, 2] and claimed.incident.update_count == 2

    async def test_checkpointed_progress_reaches_the_next_attempt(self, journal: Store) -> None:
        await post(journal, planned())
        (delivery_id,) = await claim(journal)
        await journal.checkpoint("me", delivery_id, {"done": ["a@example.com"]})
        await finish(journal, delivery_id, DeliveryState.PENDING, not_before=0.0)
        result = await journal.claim("scripted", ordering=Ordering.IN_ORDER, owner="me", limit=1, now=time.time(),
                                     lease=60)  # fmt: skip
        assert result.claimed[0].progress == {"done": ["a@example.com"]}
        assert result.claimed[0].delivery.attempts == 2

    async def test_failed_deliveries_can_be_requeued_within_their_ttl(self, journal: Store) -> None:
        await post(journal, planned("a"))
        await post(journal, planned("b", ttl=0.01))
        for delivery_id in await claim(journal):
            await finish(journal, delivery_id, DeliveryState.FAILED, error="refused")
        await asyncio.sleep(0.05)
        assert await journal.requeue_failed(now=time.time()) == (1, 1)
        (requeued,) = await journal.deliveries(open_only=True)
        assert (requeued.target, requeued.attempts) == ("a", 0)

    async def test_pauses_are_kept_per_channel_and_target(self, journal: Store) -> None:
        await journal.set_paused("email", "", paused=True, reason="bad template", now=1.0)
        await journal.set_paused("webhook", "https://a", paused=True, reason="", now=2.0)
        await journal.set_paused("email", "", paused=False, reason="", now=3.0)
        controls = {(c.channel, c.target): c.paused for c in await journal.controls()}
        assert controls == {("email", ""): False, ("webhook", "https://a"): True}


class TestSqliteStore(StoreContract):
    @pytest.fixture
    async def journal(self, store: SqliteStore) -> Store:
        return store

    async def test_an_accepted_update_survives_reopening(self, tmp_path: Path) -> None:
        """Acknowledged means on disk: a new connection (a new process) sees it."""
        path = tmp_path / "j.db"
        first = SqliteStore(path, url="sqlite:///j.db")
        await first.open()
        accepted = await post(first, planned())
        await first.close()
        second = SqliteStore(path, url="sqlite:///j.db")
        await second.open()
        try:
            assert (await second.update(accepted.update.id)).message == "An update."
            assert [d.state for d in await second.deliveries(update_id=accepted.update.id)] == [DeliveryState.PENDING]
        finally:
            await second.close()

    async def test_a_version_1_journal_is_migrated_in_place(self, tmp_path: Path) -> None:
        """An existing journal keeps its data and gets the current indexes."""
        path = tmp_path / "old.db"
        journal = SqliteStore(path, url="sqlite:///old.db")
        await journal.open()
        accepted = await post(journal, planned())
        await journal.close()
        with sqlite3.connect(path) as conn:  # make it look like a version 1 journal
            conn.executescript(
                "DROP INDEX deliveries_due; DROP INDEX deliveries_open;"
                "DROP INDEX deliveries_thread;"
                "CREATE INDEX deliveries_queue ON deliveries (channel, state, not_before);"
                "CREATE INDEX deliveries_order ON deliveries (channel, target, state, seq);"
                "CREATE INDEX deliveries_thread ON deliveries (incident_id, channel, target, state);"
                "PRAGMA user_version = 1;"
            )
        reopened = SqliteStore(path, url="sqlite:///old.db")
        await reopened.open()
        try:
            assert [d.id for d in await reopened.deliveries(open_only=True)] == [accepted.deliveries[0].id]
            assert await claim(reopened) == [accepted.deliveries[0].id]
        finally:
            await reopened.close()
        with sqlite3.connect(path) as conn:
            indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            version = conn.execute("PRAGMA user_version").fetchone()[0]
        assert {"deliveries_due", "deliveries_open", "deliveries_thread", "deliveries_failed"} <= indexes
        assert not {"deliveries_queue", "deliveries_order", "deliveries_leased"} & indexes
        assert version == SCHEMA_VERSION

    async def test_a_version_2_journal_loses_the_lease_index_and_keeps_its_leases(self, tmp_path: Path) -> None:
        """Version 3 drops the index on leases; a lease taken before the upgrade is still recovered, and
        recovery reads open deliveries through an index rather than scanning the whole history."""
        path = tmp_path / "v2.db"
        journal = SqliteStore(path, url="sqlite:///v2.db")
        await journal.open()
        accepted = await post(journal, planned())
        assert await claim(journal, owner="gone:1") == [accepted.deliveries[0].id]
        await journal.close()
        with sqlite3.connect(path) as conn:  # as version 2 left it
            conn.executescript(
                "CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'in_flight';"
                "PRAGMA user_version = 2;"
            )
        reopened = SqliteStore(path, url="sqlite:///v2.db")
        await reopened.open()
        try:
            recovered = await reopened.recover(now=time.time(), owner_is_dead=lambda owner: owner == "gone:1")
            assert [d.id for d in recovered] == [accepted.deliveries[0].id]
        finally:
            await reopened.close()
        with sqlite3.connect(path) as conn:
            indexes = {row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'index'")}
            plan = conn.execute(f"EXPLAIN QUERY PLAN {LEASES}").fetchall()
        assert "deliveries_leased" not in indexes
        assert "USING INDEX deliveries_open" in plan[0][-1]

    async def test_no_statement_reads_the_whole_delivery_history(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """Every statement the journal runs, in a workload that calls every operation, is planned by SQLite
        to find its rows through an index. A scan is allowed only over what is bounded by outstanding work
        (the open, due and failed indexes) or over the small tables (incidents, controls): the history of
        deliveries grows with every update, and a status poll or a lane sweep reading all of it slows as
        the journal ages. Plans are taken with the statement's own parameters, as SQLite plans before it
        sees their values."""
        statements = record_statements(monkeypatch)
        journal = SqliteStore(tmp_path / "plans.db", url="sqlite:///plans.db")
        await journal.open()
        try:
            await every_operation(journal)
        finally:
            await journal.close()
        # The workload ran through the recording connections, down every path that writes or reads
        # deliveries by something other than their own row: outcomes of each kind, thread parents,
        # supersession, recovery and expiry.
        markers = ("INSERT INTO attempts", "SET state = 'delivered'", "SET state = ?1", "json_group_object",
                   "AS d SET state = 'superseded'", "lease_owner IS ?", "SET state = 'expired'")  # fmt: skip
        assert [marker for marker in markers if not any(marker in sql for sql in statements)] == []
        reader = sqlite3.connect(tmp_path / "plans.db")
        try:
            scans = {
                sql: steps
                for sql, params in statements.items()
                if (steps := [step for *_, step in reader.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                              if step.startswith("SCAN") and not BOUNDED_SCAN.search(step)])
            }  # fmt: skip
        finally:
            reader.close()
        assert scans == {}

    async def test_lane_bookkeeping_waits_for_a_lock_off_the_event_loop(self, store: SqliteStore) -> None:
        """When another process holds the write lock, a claim waits on the journal thread: the event loop
        keeps running meanwhile, and the claim goes through once the lock is released."""
        accepted = await post(store, planned())
        other = sqlite3.connect(store.path, isolation_level=None)
        other.execute("BEGIN IMMEDIATE")  # another writer, mid-transaction
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.01)
                ticks += 1

        ticker = asyncio.create_task(tick())
        claiming = asyncio.create_task(claim(store))
        try:
            await asyncio.sleep(0.3)
            assert not claiming.done()
            assert ticks >= 10  # the loop was not held by the waiting claim
            other.execute("ROLLBACK")
            assert await asyncio.wait_for(claiming, 10) == [accepted.deliveries[0].id]
        finally:
            ticker.cancel()
            other.close()

    async def test_the_wal_is_checkpointed_while_lanes_write(self, store: SqliteStore) -> None:
        """The lanes' connection never checkpoints (that would sync the file on the event loop): the
        journal thread does, every CHECKPOINT_EVERY of its transactions, so the WAL stops growing."""
        accepted = await post(store, planned(*(f"t{i}" for i in range(20))))
        leased = await claim(store, limit=20)
        renewals = CHECKPOINT_EVERY * 4
        for round_ in range(renewals):
            await store.renew("me", leased, until=time.time() + round_)
        # The WAL file keeps its largest size (a checkpointed WAL is rewritten from its start, not shrunk).
        # Each renewal appends at least one page (two, here) to it: without checkpoints it would hold at
        # least `renewals` pages; with them, about two per renewal since the last checkpoint.
        page, header, frame_header = 4096, 32, 24
        frames = (store.path.with_name(store.path.name + "-wal").stat().st_size - header) // (page + frame_header)
        assert frames < 3 * CHECKPOINT_EVERY < renewals
        assert len(accepted.deliveries) == 20

    async def test_a_long_reader_in_another_process_never_stalls_lane_bookkeeping(self, store: SqliteStore) -> None:
        """A `broadcaster status` (or any reader) holding an old snapshot must not hold the lanes up: the
        periodic checkpoint copies what it can and returns, instead of waiting out the busy timeout (10 s)
        for the reader, with every lane write queued behind it."""
        await post(store, planned(*(f"t{i}" for i in range(20))))
        leased = await claim(store, limit=20)
        reader = sqlite3.connect(store.path, isolation_level=None)
        try:
            reader.execute("BEGIN")
            reader.execute("SELECT COUNT(*) FROM deliveries").fetchone()  # holds its snapshot until ROLLBACK
            await store.renew("me", leased, until=time.time() + 60)  # the reader's snapshot is now old

            async def renew_past_a_checkpoint() -> None:
                for round_ in range(CHECKPOINT_EVERY + 5):
                    await store.renew("me", leased, until=time.time() + round_)

            # Well inside the busy timeout: a checkpoint that waits for the reader cannot finish in time.
            await asyncio.wait_for(renew_past_a_checkpoint(), timeout=5)
            assert reader.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0] == 20  # still readable
        finally:
            reader.execute("ROLLBACK")
            reader.close()
        assert {d.id for d in await store.deliveries(open_only=True)} == set(leased)

    async def test_a_journal_from_a_newer_build_is_refused(self, tmp_path: Path) -> None:
        path = tmp_path / "new.db"
        with sqlite3.connect(path) as conn:
            conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
        journal = SqliteStore(path, url="sqlite:///new.db")
        with pytest.raises(StoreError, match=f"schema version {SCHEMA_VERSION + 1}; this build knows"):
            await journal.open()

    async def test_a_journal_that_cannot_be_created_is_a_clear_error(self, tmp_path: Path) -> None:
        (tmp_path / "file").write_text("not a directory")
        journal = SqliteStore(tmp_path / "file" / "j.db", url="sqlite:///file/j.db")
        with pytest.raises(StoreError, match="cannot open the journal at"):
            await journal.open()


BOUNDED_SCAN = re.compile(
    r"SCAN (controls|incidents)\b|VIRTUAL TABLE|CONSTANT ROW|USING (COVERING )?INDEX deliveries_(open|due|failed)\b"
)
"""Scans that do not grow with the deliveries: the controls (one row per pause), the incidents (one row
per incident, not per delivery), json_each's values, and the partial indexes of open, due and failed
deliveries. Only SCAN steps are judged: a range SEARCH over the history would pass unnoticed."""


def record_statements(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """Make every SQLite connection opened from now on record its statements (each with the parameters it
    was first run with): a connection class whose cursors note what they execute."""
    statements: dict[str, Any] = {}

    def note(sql: str, params: Any) -> None:
        if sql.lstrip().split(None, 1)[0].upper() in {"SELECT", "INSERT", "UPDATE", "DELETE", "WITH"}:
            statements.setdefault(sql, params)

    class RecordingCursor(sqlite3.Cursor):
        def execute(self, sql: str, parameters: Any = (), /) -> Self:
            note(sql, parameters)
            return super().execute(sql, parameters)

        def executemany(self, sql: str, seq_of_parameters: Any, /) -> Self:
            rows = list(seq_of_parameters)
            if rows:
                note(sql, rows[0])
            return super().executemany(sql, rows)

    class RecordingConnection(sqlite3.Connection):
        def cursor(self, factory: Any = RecordingCursor) -> RecordingCursor:  # type: ignore[override] # records all
            cursor: RecordingCursor = super().cursor(factory)
            return cursor

        def execute(self, sql: str, parameters: Any = (), /) -> RecordingCursor:
            return self.cursor().execute(sql, parameters)

        def executemany(self, sql: str, seq_of_parameters: Any, /) -> RecordingCursor:
            return self.cursor().executemany(sql, seq_of_parameters)

    connect = sqlite3.connect

    def recording(*args: Any, **kwargs: Any) -> sqlite3.Connection:
        return connect(*args, factory=RecordingConnection, **kwargs)

    monkeypatch.setattr(sqlite3, "connect", recording)
    return statements


async def every_operation(journal: SqliteStore) -> None:
    """Each journal operation at least once, each filter with and without its optional arguments: accepts
    (a new incident, a later update handed off in part, a repeated idempotency key), claims of both
    orderings with sweeps, supersession and thread parents, outcomes of every kind, leases renewed,
    released and recovered, expiry, requeues, every read, and pauses. It checks that each step did what
    it is there for, so the statements it exists to run are really run."""
    first = await post(journal, planned("t1", "t2") + planned("x1", ordering=Ordering.LATEST_ONLY), key="k")
    await post(journal, planned("t1"), key="k")
    now = time.time() + 1  # after every accepted delivery's not_before
    in_order = await journal.claim("scripted", ordering=Ordering.IN_ORDER, owner="me", limit=10, now=now, lease=60,
                                   skip_targets=["t9"])  # fmt: skip
    latest = await journal.claim("latest", ordering=Ordering.LATEST_ONLY, owner="me", limit=10, now=now, lease=60)
    assert (len(in_order.claimed), len(latest.claimed)) == (2, 1)
    # A later update of the incident: t1's first delivery is still in flight, so only t3 is handed off,
    # with its thread parents looked up by id.
    later = await post(
        journal,
        planned("t1", "t3") + planned("x1", ordering=Ordering.LATEST_ONLY),
        incident_id=first.incident.id,
        handoff=Handoff(owner="me", lease_until=now + 60, room={"scripted": 5}, skip_targets={}),
    )
    assert [c.delivery.target for c in later.handed_off] == ["t3"]
    outcomes = [Outcome(c.delivery.id, DeliveryState.DELIVERED, 1, now, now, detail="ok", external_id="e")
                for c in in_order.claimed]  # fmt: skip
    outcomes += [Outcome(c.delivery.id, DeliveryState.FAILED, 1, now, now, error="refused") for c in latest.claimed]
    outcomes += [Outcome(c.delivery.id, DeliveryState.PENDING, 1, now, now, error="busy", not_before=now + 1)
                 for c in later.handed_off]  # fmt: skip
    await journal.claim("scripted", ordering=Ordering.IN_ORDER, owner="me", limit=0, now=now, lease=60,
                        record=outcomes)  # fmt: skip
    await journal.claim("latest", ordering=Ordering.LATEST_ONLY, owner="me", limit=10, now=now + 2, lease=60)
    leased = await claim(journal, owner="me", at=now + 2)  # t1 of the later update (parents by seq), t3's retry
    assert len(leased) == 2
    await journal.renew("me", leased, until=now + 90)
    await journal.checkpoint("me", leased[0], {"sent": 1})
    await journal.release("me", leased[:1])
    await journal.release("me", None)
    await claim(journal, owner="gone:1", at=now + 3)
    await journal.recover(now=now + 4, owner_is_dead=lambda owner: owner == "gone:1")
    await journal.expire_due(now=now + 10**6)
    await journal.requeue_failed(now=now, update_id=first.update.id)
    await journal.requeue_failed(now=now, channel="latest")
    await journal.requeue_failed(now=now, update_id=first.update.id, channel="latest")
    await journal.requeue_failed(now=now)
    await journal.deliveries(update_id=first.update.id)
    await journal.deliveries(update_id=first.update.id, open_only=True)
    await journal.deliveries(incident_id=first.incident.id)
    await journal.deliveries(incident_id=first.incident.id, open_only=True)
    await journal.deliveries(open_only=True)
    await journal.attempts(first.deliveries[0].id)
    await journal.history(first.incident.id)
    await journal.site_history(recent=5)
    await journal.site_history(recent=None)
    await journal.incidents(limit=5)
    await journal.incidents(limit=5, open_only=True)
    await journal.update(first.update.id)
    await journal.incident(first.incident.id)
    await journal.set_paused("scripted", "t1", paused=True, reason="maintenance", now=now)
    await journal.controls()
