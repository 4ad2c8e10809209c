"""The store contract run against a real SQLite file, and what only the SQLite journal promises (schema
migrations, the loop connection never waiting, no statement reading the whole history)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import time
from pathlib import Path
from typing import Any, Self

import pytest

from broadcaster.domain.errors import StoreError
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store import Handoff, Outcome, Store
from broadcaster.store.sqlite.journal import CHECKPOINT_EVERY, SqliteStore
from broadcaster.store.sqlite.ops import LEASES
from broadcaster.store.sqlite.schema import SCHEMA_VERSION
from channels.base import Ordering
from tests.store.contract import StoreContract, claim
from tests.support.journal import planned, post


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
