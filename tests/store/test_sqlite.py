"""The store contract run against a real SQLite file, and what only the SQLite journal promises (schema
migrations, the loop connection never waiting, no statement reading the whole history)."""

from __future__ import annotations

import asyncio
import re
import sqlite3
import stat
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Self

import pytest

from broadcaster.domain.errors import StoreError
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store import Handoff, Store
from broadcaster.store.sqlite.connection import CHECKPOINT_EVERY
from broadcaster.store.sqlite.journal import SqliteStore
from broadcaster.store.sqlite.schema import SCHEMA_VERSION
from channels.base import Ordering
from tests.store.contract import StoreContract
from tests.support.journal import claim, first_attempt, planned, post


class TestSqliteStore(StoreContract):
    @pytest.fixture
    async def journal(self, store: SqliteStore) -> Store:
        return store

    async def progress_of(self, journal: Store, delivery_id: str) -> dict[str, str]:
        assert isinstance(journal, SqliteStore)
        with sqlite3.connect(journal.path) as conn:
            rows = conn.execute("SELECT key, note FROM progress WHERE delivery_id = ?", (delivery_id,))
            return dict(rows.fetchall())

    def another(self, journal: Store) -> Store:
        assert isinstance(journal, SqliteStore)
        return SqliteStore(journal.path, url=journal.url)

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
        # supersession, recovery, expiry, progress saved and pruned, and claims scoped to some updates.
        markers = (
            "INSERT INTO attempts",
            "SET state = ?1",
            "json_group_object",
            "AS d SET state = 'superseded'",
            "lease_owner IS ?",
            "SET state = 'expired'",
            "INSERT INTO progress",
            "DELETE FROM progress",
            "s.update_id IN",
            "content_digest = ?",
        )
        assert [marker for marker in markers if not any(marker in sql for sql in statements)] == []
        reader = sqlite3.connect(tmp_path / "plans.db")
        try:
            scans = {
                sql: steps
                for sql, params in statements.items()
                if (
                    steps := [
                        step
                        for *_, step in reader.execute(f"EXPLAIN QUERY PLAN {sql}", params)
                        if step.startswith("SCAN") and not BOUNDED_SCAN.search(step)
                    ]
                )
            }
        finally:
            reader.close()
        assert scans == {}

    async def test_overdue_incidents_are_found_through_their_index(
        self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        """The overdue check runs every 15 s and for /readyz: it reads the open incidents' index by their
        next update, never every incident the journal has had (which the scan rule above lets pass)."""
        statements = record_statements(monkeypatch)
        journal = SqliteStore(tmp_path / "due.db", url="sqlite:///due.db")
        await journal.open()
        try:
            await journal.overdue(now=datetime.now(UTC), limit=5)
        finally:
            await journal.close()
        reader = sqlite3.connect(tmp_path / "due.db")
        try:
            [(sql, params)] = [(sql, params) for sql, params in statements.items() if "FROM incidents" in sql]
            plan = [step for *_, step in reader.execute(f"EXPLAIN QUERY PLAN {sql}", params)]
        finally:
            reader.close()
        assert plan == ["SEARCH incidents USING INDEX incidents_due (<expr><?)"]

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
    r"SCAN (controls|incidents)\b|VIRTUAL TABLE|CONSTANT ROW"
    r"|USING (COVERING )?INDEX deliveries_(open|due|failed|progress)\b"
)
"""Scans that do not grow with the deliveries: the controls (one row per pause), the incidents (one row
per incident, not per delivery), json_each's values, and the partial indexes of open, due and failed
deliveries and of those still holding progress to prune. Only SCAN steps are judged: a range SEARCH over
the history would pass unnoticed."""


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
    (a new incident, a later update handed off in part, a repeated idempotency key, the same content again),
    claims of both orderings with sweeps, supersession and thread parents, outcomes of every kind, leases renewed,
    released and recovered, expiry, requeues, every read, and pauses. It checks that each step did what
    it is there for, so the statements it exists to run are really run."""
    plan = planned("t1", "t2") + planned("x1", ordering=Ordering.LATEST_ONLY)
    first = await post(journal, plan, key="k")
    await post(journal, planned("t1"), key="k")
    assert (await post(journal, plan, same_within=60)).duplicate  # the same content as `first`
    now = time.time() + 1  # after every accepted delivery's not_before
    in_order = await journal.claim(
        "scripted", ordering=Ordering.IN_ORDER, owner="me", limit=10, now=now, lease=60, skip_targets=["t9"]
    )
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
    outcomes = [
        first_attempt(c.delivery.id, DeliveryState.DELIVERED, at=now, detail="ok", external_id="e")
        for c in in_order.claimed
    ]
    outcomes += [first_attempt(c.delivery.id, DeliveryState.FAILED, at=now, error="refused") for c in latest.claimed]
    outcomes += [
        first_attempt(c.delivery.id, DeliveryState.PENDING, at=now, error="busy", not_before=now + 1)
        for c in later.handed_off
    ]
    await journal.finish_and_claim(
        outcomes, "scripted", ordering=Ordering.IN_ORDER, owner="me", limit=0, now=now, lease=60
    )
    await journal.claim("latest", ordering=Ordering.LATEST_ONLY, owner="me", limit=10, now=now + 2, lease=60)
    leased = await claim(journal, owner="me", at=now + 2)  # t1 of the later update (parents by seq), t3's retry
    assert len(leased) == 2
    await journal.renew("me", leased, until=now + 90)
    await journal.save_progress("me", leased[0], {"a@example.com": "", "b@example.com": "550 no such user"})
    await journal.release("me", leased[:1])
    await journal.release("me", None, interrupted="the process stopped")
    await journal.claim(
        "scripted", ordering=Ordering.IN_ORDER, owner="me", limit=1, now=now + 2, lease=60, updates={first.update.id}
    )
    await journal.claim(
        "latest", ordering=Ordering.LATEST_ONLY, owner="me", limit=1, now=now + 2, lease=60, updates={first.update.id}
    )
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
    assert "latest" in await journal.backlog()
    await journal.overdue(now=datetime.now(UTC), limit=5)


async def test_a_new_journal_is_readable_by_its_owner_alone(tmp_path: Path) -> None:
    """It holds subscribers' addresses and their webhooks' signing secrets."""
    path = tmp_path / "var" / "broadcaster.db"
    journal = SqliteStore(path, url=f"sqlite:///{path}")
    await journal.open()
    try:
        await post(journal, planned("a"))
        modes = {p.name: stat.S_IMODE(p.stat().st_mode) for p in path.parent.iterdir()}
    finally:
        await journal.close()
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert modes["broadcaster.db"] == 0o600 and modes["broadcaster.db-wal"] == 0o600
