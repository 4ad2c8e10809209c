"""The embedded journal: one SQLite file in WAL mode, safe for several processes at once.

Two connections serve it. The journal thread's connection takes every call that may wait: accepting an
update (synchronous=FULL, so it is on disk before it is acknowledged), reads, and any write that finds
another connection holding the write lock, which it waits for up to the busy timeout. The lanes' own
bookkeeping (claims, outcomes, progress, lease renewals and releases) runs first on a second connection,
directly on the event loop, with no busy wait and no fsync: WAL with synchronous=NORMAL survives the
process being killed, and on power loss at worst repeats what was sent since the last WAL checkpoint
(delivery is at-least-once anyway). A transaction there costs the loop a millisecond at most; handing it to
the thread cost more, in handoffs of the GIL between the thread and a busy loop, than the SQL itself. Only
the thread's connection checkpoints the WAL, since a checkpoint syncs the file.

The SQL lives in accepting.py, queue.py and reading.py, as plain functions on a connection."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import TypeVar

from broadcaster.domain.errors import LeaseLost, StoreError
from broadcaster.domain.models import Incident, IncidentHistory, Update, UpdateDraft
from broadcaster.domain.vocabulary import Ordering
from broadcaster.store.base import (
    Accepted,
    Attempt,
    ClaimResult,
    Delivery,
    Handoff,
    LaneControl,
    Outcome,
    PlannedDelivery,
    Store,
)
from broadcaster.store.sqlite import accepting, queue, reading
from broadcaster.store.sqlite.failures import journal_error
from broadcaster.store.sqlite.grouping import GroupCommit
from broadcaster.store.sqlite.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]

log = logging.getLogger("broadcaster.journal")

CHECKPOINT_EVERY = 200
"""Lane writes on the loop's connection between two WAL checkpoints on the journal thread."""


KNOWN_UPDATES = 32
"""Recent updates whose incident and history claims keep decoded."""


class _Busy(Exception):
    """Another connection holds the write lock: the loop's connection never waits for it."""


class SqliteStore(Store):
    def __init__(self, path: Path, *, url: str, busy_timeout: float = 10.0) -> None:
        self.path = path
        self.url = url
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._inline: sqlite3.Connection | None = None
        """The loop's connection, for the lanes' bookkeeping; used only from the event loop's thread."""
        self._inline_writes = 0
        self._checkpointing = False
        self._progress: GroupCommit[queue.ProgressSave, bool] = GroupCommit(
            lambda saves: self._lane_write(partial(queue.save_progress, saves=saves))
        )
        self._with_progress: set[str] = set()
        """Deliveries leased here that hold saved progress: when one of them ends, its progress is pruned in
        the same transaction (any other is pruned by the next sweep, in expire_due or a lane's claim)."""
        self._known_updates: dict[str, queue.UpdateView] = {}
        """What claims read of recent updates (immutable once written), oldest first. A claim that falls
        back to the thread may fill it while the loop runs another: the worst a race costs is a read."""

    # --- plumbing

    async def open(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="broadcaster-journal")
        try:
            await self._call(self._connect)
        except BaseException:
            self._executor.shutdown(wait=False)
            self._executor = None
            raise

    async def close(self) -> None:
        if self._executor is None:
            return
        if self._inline is not None:
            inline, self._inline = self._inline, None
            inline.close()
        await self._call(self._disconnect)
        self._executor.shutdown(wait=True)
        self._executor = None

    def _connect(self, _conn: sqlite3.Connection | None) -> None:
        opened: list[sqlite3.Connection] = []
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = self._connection(timeout=self._busy_timeout, opened=opened)
            conn.execute("PRAGMA journal_mode=WAL")
            version = conn.execute("PRAGMA user_version").fetchone()[0]
            if version > SCHEMA_VERSION:
                raise StoreError(f"journal {self.path} has schema version {version}; this build knows {SCHEMA_VERSION}")
            if version < SCHEMA_VERSION:
                # One script, one transaction: executescript would commit a transaction opened outside it.
                steps = (
                    SCHEMA if version == 0 else "\n".join(MIGRATIONS[v] for v in range(version + 1, SCHEMA_VERSION + 1))
                )
                conn.executescript(f"BEGIN IMMEDIATE;\n{steps}\nPRAGMA user_version={SCHEMA_VERSION};\nCOMMIT;")
            # The loop's connection: fails at once instead of waiting for a lock, and leaves checkpoints
            # (which sync the file) to this thread.
            inline = self._connection(timeout=0, opened=opened)
            inline.execute("PRAGMA wal_autocheckpoint=0")
        except BaseException as exc:
            for connection in opened:
                connection.close()
            if isinstance(exc, (sqlite3.Error, OSError)):
                raise journal_error(f"cannot open the journal at {self.path}: {exc}", exc) from None
            raise
        self._conn, self._inline = conn, inline

    def _connection(self, *, timeout: float, opened: list[sqlite3.Connection]) -> sqlite3.Connection:
        conn = sqlite3.connect(self.path, isolation_level=None, timeout=timeout, check_same_thread=False)
        opened.append(conn)
        conn.row_factory = sqlite3.Row
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("PRAGMA foreign_keys=ON")
        return conn

    def _disconnect(self, conn: sqlite3.Connection | None) -> None:
        if conn is not None:
            conn.close()
        self._conn = None

    async def _call(self, fn: Callable[[sqlite3.Connection | None], T]) -> T:
        if self._executor is None:
            raise StoreError("the journal is not open")
        return await asyncio.get_running_loop().run_in_executor(self._executor, lambda: fn(self._conn))

    async def _write(self, operation: Operation[T], *, durable: bool = False, checkpoint: bool = False) -> T:
        def transaction(conn: sqlite3.Connection | None) -> T:
            if conn is None:
                raise StoreError("the journal is not open")
            if durable:
                conn.execute("PRAGMA synchronous=FULL")
            try:
                result = _transaction(conn, operation)
            finally:
                if durable:
                    conn.execute("PRAGMA synchronous=NORMAL")
            if checkpoint:
                _checkpoint(conn)
            return result

        return await self._call(transaction)

    async def _lane_write(self, operation: Operation[T]) -> T:
        """A lane's bookkeeping: on the loop's connection at once, or on the journal thread when another
        connection holds the write lock (it waits there, and the loop goes on). Every CHECKPOINT_EVERY
        writes, one goes to the thread and checkpoints the WAL after it; writes meanwhile queue behind it."""
        if self._inline is not None and not self._checkpointing and self._inline_writes < CHECKPOINT_EVERY:
            try:
                result = _transaction(self._inline, operation, wait=False)
            except _Busy:
                pass
            else:
                self._inline_writes += 1
                return result
        if self._checkpointing or self._inline_writes < CHECKPOINT_EVERY:
            return await self._write(operation)
        self._inline_writes, self._checkpointing = 0, True
        try:
            return await self._write(operation, checkpoint=True)
        finally:
            self._checkpointing = False

    async def _read(self, operation: Operation[T]) -> T:
        def read(conn: sqlite3.Connection | None) -> T:
            if conn is None:
                raise StoreError("the journal is not open")
            try:
                return operation(conn)
            except sqlite3.Error as exc:
                raise StoreError(f"journal read failed: {exc}") from None

        return await self._call(read)

    # --- writing updates

    async def accept(
        self,
        draft: UpdateDraft,
        plan: Sequence[PlannedDelivery],
        *,
        now: datetime,
        idempotency_key: str | None = None,
        request_digest: str | None = None,
        handoff: Handoff | None = None,
        same_within: float | None = None,
    ) -> Accepted:
        accepted = await self._write(
            partial(
                accepting.accept,
                draft=draft,
                plan=plan,
                now=now,
                idempotency_key=idempotency_key,
                request_digest=request_digest,
                handoff=handoff,
                same_within=same_within,
            ),
            durable=True,
        )
        if accepted.handed_off:  # later claims of this update's other deliveries need not read it again
            first = accepted.handed_off[0]
            self._known_updates[accepted.update.id] = (first.incident, first.history)
        return accepted

    # --- the delivery queue

    async def claim(
        self,
        channel: str,
        *,
        ordering: Ordering,
        owner: str,
        limit: int,
        now: float,
        lease: float,
        skip_targets: Collection[str] = (),
        sweep: bool = True,
        record: Sequence[Outcome] = (),
        updates: Collection[str] | None = None,
    ) -> ClaimResult:
        known = self._known_updates
        claim = partial(
            queue.claim,
            channel=channel,
            ordering=ordering,
            owner=owner,
            limit=limit,
            now=now,
            lease=lease,
            skip_targets=skip_targets,
            sweep=sweep,
            record=record,
            prune=bool(ending := self._ending_with_progress(record)),
            updates_only=updates,
            known=known,
        )
        result = await self._lane_write(claim)
        self._with_progress -= ending
        self._with_progress.update(c.delivery.id for c in result.claimed if c.progress)
        for update_id in list(known)[: max(0, len(known) - KNOWN_UPDATES)]:
            del known[update_id]
        return result

    async def finish(self, owner: str, outcomes: Sequence[Outcome]) -> int:
        ending = self._ending_with_progress(outcomes)
        recorded = await self._lane_write(
            partial(queue.finish, owner=owner, outcomes=outcomes, now=time.time(), prune=bool(ending))
        )
        self._with_progress -= ending
        return recorded

    def _ending_with_progress(self, outcomes: Sequence[Outcome]) -> set[str]:
        """The deliveries among `outcomes` that end and saved progress here: their outcome's transaction
        prunes it (once written, they are forgotten here)."""
        if not self._with_progress:
            return set()
        return {o.delivery_id for o in outcomes if o.state.is_final} & self._with_progress

    async def release(self, owner: str, delivery_ids: Collection[str] | None, *, interrupted: str = "") -> int:
        release = partial(
            queue.release, owner=owner, delivery_ids=delivery_ids, now=time.time(), interrupted=interrupted
        )
        released = await self._lane_write(release)
        if delivery_ids is None:
            self._with_progress.clear()
        else:
            self._with_progress.difference_update(delivery_ids)
        return released

    async def renew(self, owner: str, delivery_ids: Collection[str], *, until: float) -> None:
        await self._lane_write(partial(queue.renew, owner=owner, delivery_ids=delivery_ids, until=until))

    async def save_progress(self, owner: str, delivery_id: str, entries: Mapping[str, str]) -> None:
        """Saved in a group commit with every other save made in the same turn of the event loop (an email
        fan-out's connections each wait for their recipient to be saved before the next transaction)."""
        self._with_progress.add(delivery_id)
        if not await self._progress.save((owner, delivery_id, entries)):
            raise LeaseLost(f"delivery {delivery_id} is no longer leased to this process; its progress was not saved")

    async def recover(self, *, now: float, owner_is_dead: Callable[[str], bool]) -> list[Delivery]:
        return await self._write(partial(queue.recover, now=now, owner_is_dead=owner_is_dead))

    async def expire_due(self, *, now: float) -> list[Delivery]:
        return await self._write(partial(queue.expire, now=now, channel=None))

    async def requeue_failed(
        self, *, now: float, update_id: str | None = None, channel: str | None = None
    ) -> tuple[int, int]:
        return await self._write(partial(queue.requeue_failed, now=now, update_id=update_id, channel=channel))

    # --- reading

    async def incident(self, incident_id: str) -> Incident:
        return await self._read(partial(reading.incident, incident_id=incident_id))

    async def incidents(self, *, limit: int = 50, open_only: bool = False) -> list[Incident]:
        return await self._read(partial(reading.incidents, limit=limit, open_only=open_only))

    async def history(self, incident_id: str) -> IncidentHistory:
        return await self._read(partial(reading.history, incident_id=incident_id))

    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
        return await self._read(partial(reading.site_history, recent=recent))

    async def update(self, update_id: str) -> Update:
        return await self._read(partial(reading.update, update_id=update_id))

    async def deliveries(
        self, *, update_id: str | None = None, incident_id: str | None = None, open_only: bool = False
    ) -> list[Delivery]:
        reader = partial(reading.deliveries, update_id=update_id, incident_id=incident_id, open_only=open_only)
        return await self._read(reader)

    async def attempts(self, delivery_id: str) -> list[Attempt]:
        return await self._read(partial(reading.attempts, delivery_id=delivery_id))

    async def backlog(self) -> dict[str, tuple[int, float]]:
        return await self._read(reading.backlog)

    async def overdue(self, *, now: datetime, limit: int) -> list[Incident]:
        return await self._read(partial(reading.overdue, now=now.timestamp(), limit=limit))

    # --- suppressions

    async def suppress(self, entries: Mapping[str, str], *, source: str, now: float) -> int:
        # Durable: an acknowledged unsubscribe must hold through a crash.
        return await self._write(partial(queue.suppress, entries=entries, source=source, now=now), durable=True)

    async def suppressed(self) -> frozenset[str]:
        return await self._read(reading.suppressed)

    # --- lane controls

    async def set_paused(self, channel: str, target: str, *, paused: bool, reason: str, now: float) -> None:
        change = partial(queue.set_paused, channel=channel, target=target, paused=paused, reason=reason, now=now)
        await self._write(change, durable=True)

    async def controls(self) -> list[LaneControl]:
        return await self._read(reading.controls)


def _transaction(conn: sqlite3.Connection, operation: Operation[T], *, wait: bool = True) -> T:
    """Run `operation` in one write transaction. With wait=False, a lock held by another connection
    raises _Busy, with nothing done."""
    try:
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = operation(conn)
            conn.execute("COMMIT")
        except BaseException:
            # Also after a failed COMMIT (a full disk, an I/O error): SQLite may leave the transaction
            # open, and the connection must be usable for the next one.
            if conn.in_transaction:
                with contextlib.suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
            raise
        return result
    except sqlite3.OperationalError as exc:
        if not wait and exc.sqlite_errorcode & 0xFF == sqlite3.SQLITE_BUSY:
            raise _Busy from None
        raise journal_error(f"journal write failed: {exc}", exc) from None
    except sqlite3.Error as exc:
        raise journal_error(f"journal write failed: {exc}", exc) from None


def _checkpoint(conn: sqlite3.Connection) -> None:
    """Copy the WAL back into the journal file. PASSIVE mode copies what no reader still needs and returns
    at once: once everything is copied, the next write starts the WAL over instead of making it longer.
    A stronger mode would wait, up to the busy timeout, for another process's long read to end, and every
    lane write would queue behind it meanwhile. A failure only delays the copy to the next turn."""
    try:
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
    except sqlite3.Error as exc:
        log.warning("journal checkpoint failed, will retry: %s", exc)
