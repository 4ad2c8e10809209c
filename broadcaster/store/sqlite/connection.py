"""The SQLite journal's connections: opening and migrating the file, and running operations on it.

Two connections serve it. The journal thread's connection takes every call that may wait: accepting an
update (synchronous=FULL, so it is on disk before it is acknowledged), reads, and any write that finds
another connection holding the write lock, which it waits for up to the busy timeout. The lanes' own
bookkeeping (claims, outcomes, progress, lease renewals and releases) runs first on a second connection,
directly on the event loop, with no busy wait and no fsync: WAL with synchronous=NORMAL survives the
process being killed, and on power loss at worst repeats what was sent since the last WAL checkpoint
(delivery is at-least-once anyway). A transaction there costs the loop a millisecond at most; handing it to
the thread cost more, in handoffs of the GIL between the thread and a busy loop, than the SQL itself. Only
the thread's connection checkpoints the WAL, since a checkpoint syncs the file."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

from broadcaster.domain.errors import StoreError
from broadcaster.store.sqlite.failures import journal_error
from broadcaster.store.sqlite.schema import MIGRATIONS, SCHEMA, SCHEMA_VERSION

T = TypeVar("T")
Operation = Callable[[sqlite3.Connection], T]

log = logging.getLogger("broadcaster.journal")

CHECKPOINT_EVERY = 200
"""Lane writes on the loop's connection between two WAL checkpoints on the journal thread."""


class _Busy(Exception):
    """Another connection holds the write lock: the loop's connection never waits for it."""


class Connections:
    """The journal file's two connections, and the ways an operation runs on them."""

    def __init__(self, path: Path, *, busy_timeout: float) -> None:
        self.path = path
        self._busy_timeout = busy_timeout
        self._executor: ThreadPoolExecutor | None = None
        self._conn: sqlite3.Connection | None = None
        self._inline: sqlite3.Connection | None = None
        """The loop's connection, for the lanes' bookkeeping; used only from the event loop's thread."""
        self._inline_writes = 0
        self._checkpointing = False

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
            private_file(self.path)
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


def private_file(path: Path) -> None:
    """Make the journal's directory (0700) and file (0600) if they are new: the journal holds subscribers'
    addresses and their webhooks' URLs and signing secrets. SQLite gives its -wal and -shm files the
    journal's own permissions. An existing file or directory keeps whatever its owner chose."""
    path.parent.mkdir(parents=True, mode=0o700, exist_ok=True)
    with contextlib.suppress(FileExistsError):
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
