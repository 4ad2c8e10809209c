"""The replica's own bookkeeping, beside the SQLite journal in the same file: whether this instance runs
degraded (and since when), the records it holds for the shared journal (outcomes of deliveries leased
there, pauses, suppressions: `held`), and bringing the copy up to date from the shared journal while it is
reachable (`refresh`).

These tables are this process's own: the replica belongs to one instance (`serve`), which is the only one
writing into it while it runs degraded."""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import sqlite3
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from broadcaster.domain.errors import StoreError
from broadcaster.store.base import Standing
from broadcaster.store.sqlite.importing import Exported, write_exported
from broadcaster.store.sqlite.journal import SqliteStore

SIDE_TABLES: Final = (
    "CREATE TABLE IF NOT EXISTS failover_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;",
    "CREATE TABLE IF NOT EXISTS failover_held (n INTEGER PRIMARY KEY AUTOINCREMENT, record TEXT NOT NULL);",
    "CREATE TABLE IF NOT EXISTS failover_adopting (update_id TEXT PRIMARY KEY, incident_id TEXT NOT NULL) "
    "WITHOUT ROWID;",
    "CREATE TABLE IF NOT EXISTS failover_accepted (update_id TEXT PRIMARY KEY) WITHOUT ROWID;",
)
COPIED_TABLES: Final = (
    "attempts",
    "progress",
    "idempotency_keys",
    "deliveries",
    "updates",
    "incidents",
    "suppressions",
    "subscribers",
    "controls",
    "publish_manifests",
)
"""What a refresh replaces with the shared journal's content, children before parents."""
HANDED_OVER: Final = "handed to the shared journal when it came back"


class Replica(SqliteStore):
    """The replica: a SQLite journal like any, with side tables of its own (created by `open`). Their reads and
    writes go through the journal's connection, writes durably (held records and the mark are acknowledged
    work)."""

    async def open(self) -> None:
        await super().open()
        await self._write(lambda conn: [conn.execute(table) for table in SIDE_TABLES], durable=True)

    # --- degraded or not

    async def marked(self) -> Standing:
        """What the mark says: degraded since when and why, and the records held (or never degraded)."""
        return await self._read(_standing)

    async def mark_degraded(self, *, since: float, reason: str) -> None:
        """Durably, before anything is written locally: a restart then knows there is work to take back."""

        def mark(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR IGNORE INTO failover_meta VALUES ('degraded_since', ?)", (repr(since),))
            conn.execute("INSERT OR REPLACE INTO failover_meta VALUES ('reason', ?)", (reason,))

        await self._write(mark, durable=True)

    async def mark_back(self) -> None:
        def unmark(conn: sqlite3.Connection) -> None:
            conn.execute("DELETE FROM failover_meta")
            conn.execute("DELETE FROM failover_accepted")

        await self._write(unmark, durable=True)

    async def note_accepted(self, update_id: str) -> None:
        """An update accepted here while degraded: counted until the way back ends (Standing.accepted)."""
        await self._write(
            lambda conn: conn.execute("INSERT OR IGNORE INTO failover_accepted VALUES (?)", (update_id,)), durable=True
        )

    # --- what goes back to the shared journal

    async def hold(self, record: dict[str, Any]) -> None:
        """Keep `record` (an operation meant for the shared journal) until it can be written there."""
        text = json.dumps(record)
        await self._write(
            lambda conn: conn.execute("INSERT INTO failover_held (record) VALUES (?)", (text,)), durable=True
        )

    async def held(self) -> list[tuple[int, dict[str, Any]]]:
        rows = await self._read(lambda conn: conn.execute("SELECT n, record FROM failover_held ORDER BY n").fetchall())
        return [(n, json.loads(text)) for n, text in rows]

    async def drop_held(self, n: int) -> None:
        await self._write(lambda conn: conn.execute("DELETE FROM failover_held WHERE n = ?", (n,)), durable=True)

    async def local_updates(self, *, since: float) -> list[tuple[str, str]]:
        """(incident id, update id) of every update journaled here since `since`, in the order accepted."""
        rows = await self._read(
            lambda conn: conn.execute(
                "SELECT incident_id, id FROM updates WHERE created_at >= ? ORDER BY created_at, seq", (since,)
            ).fetchall()
        )
        return [(incident_id, update_id) for incident_id, update_id in rows]

    async def progress(self, delivery_ids: Sequence[str]) -> dict[str, dict[str, str]]:
        """What the attempts of these deliveries saved, by delivery (those with none left out)."""

        def read(conn: sqlite3.Connection) -> dict[str, dict[str, str]]:
            found: dict[str, dict[str, str]] = {}
            for start in range(0, len(delivery_ids), 500):
                chunk = delivery_ids[start : start + 500]
                marks = ", ".join("?" * len(chunk))
                query = f"SELECT delivery_id, key, note FROM progress WHERE delivery_id IN ({marks})"
                for delivery_id, key, note in conn.execute(query, chunk):
                    found.setdefault(delivery_id, {})[key] = note
            return found

        return await self._read(read)

    async def request_of(self, update_id: str) -> tuple[str | None, str | None]:
        """The idempotency key an update was accepted with here, and the digest of the request that key came
        with (None, None without)."""
        # The key is the update's own, or (for a request answered with an update accepted before, or a key
        # copied from the shared journal) one beside it: key and digest from the same row.
        row = await self._read(
            lambda conn: conn.execute(
                "SELECT idempotency_key, request_digest FROM updates WHERE id = ?1 AND idempotency_key IS NOT NULL "
                "UNION ALL SELECT key, request_digest FROM idempotency_keys WHERE update_id = ?1 LIMIT 1",
                (update_id,),
            ).fetchone()
        )
        return (row[0], row[1]) if row else (None, None)

    async def in_flight(self) -> int:
        """Attempts running from the replica now."""
        return int(
            await self._read(
                lambda conn: conn.execute("SELECT COUNT(*) FROM deliveries WHERE state = 'in_flight'").fetchone()[0]
            )
        )

    async def begin_adopting(self, incident_id: str, update_id: str) -> None:
        """Before an update goes to the shared journal: note it (until `adopted`), and hand its deliveries still
        pending here over to the shared journal, in one transaction. Should the adopt's answer be lost (Redis
        gone mid-command), the replica has stopped sending them, and the next way back adopts the update
        again, its handed-over deliveries read as pending (adopting twice is adopting once)."""

        def begin(conn: sqlite3.Connection) -> None:
            conn.execute("INSERT OR REPLACE INTO failover_adopting VALUES (?, ?)", (update_id, incident_id))
            conn.execute(
                "UPDATE deliveries SET state = 'superseded', last_error = ?, finished_at = ? "
                "WHERE update_id = ? AND state = 'pending'",
                (HANDED_OVER, time.time(), update_id),
            )

        await self._write(begin, durable=True)

    async def adopting(self) -> list[tuple[str, str]]:
        """(incident id, update id) of updates whose adopt did not answer: they go again first."""
        rows = await self._read(
            lambda conn: conn.execute("SELECT incident_id, update_id FROM failover_adopting").fetchall()
        )
        return [(incident_id, update_id) for incident_id, update_id in rows]

    async def adopted(self, update_id: str) -> None:
        await self._write(
            lambda conn: conn.execute("DELETE FROM failover_adopting WHERE update_id = ?", (update_id,)), durable=True
        )

    # --- keeping the copy current

    async def refresh(self, exported: Exported) -> bool:
        """Replace the copy's content with `exported`, in one transaction; False (nothing changed) while the
        replica holds work of its own that has not gone back yet."""

        def replace(conn: sqlite3.Connection) -> bool:
            if conn.execute("SELECT 1 FROM failover_meta WHERE key = 'degraded_since'").fetchone():
                return False
            if conn.execute("SELECT 1 FROM failover_held UNION ALL SELECT 1 FROM failover_adopting LIMIT 1").fetchone():
                return False
            for table in COPIED_TABLES:
                conn.execute(f"DELETE FROM {table}")  # names from COPIED_TABLES, not input
            write_exported(conn, exported, now=time.time())
            return True

        return await self._write(replace, durable=True)


MAX_REPLICAS: Final = 16
"""Instances that may share one data directory, each with a replica of its own."""


def claim_replica(data_dir: Path) -> tuple[Path, int]:
    """The first replica in `data_dir` no running instance holds (replica.db, replica-2.db, ...), and the
    descriptor whose lock holds it for this process (released when the process ends, however it ends). A
    replica left by an instance that stopped is taken over with whatever it had not taken back yet."""
    data_dir.mkdir(parents=True, mode=0o700, exist_ok=True)
    for number in range(1, MAX_REPLICAS + 1):
        path = data_dir / ("replica.db" if number == 1 else f"replica-{number}.db")
        descriptor = os.open(f"{path}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(descriptor)
            continue
        return path, descriptor
    raise StoreError(f"{MAX_REPLICAS} instances already keep replicas in {data_dir}: give this one its own data_dir")


def _standing(conn: sqlite3.Connection) -> Standing:
    meta = dict(conn.execute("SELECT key, value FROM failover_meta").fetchall())
    if "degraded_since" not in meta:
        return Standing()
    since = float(meta["degraded_since"])
    held = conn.execute("SELECT COUNT(*) FROM failover_held").fetchone()[0]
    accepted = conn.execute("SELECT COUNT(*) FROM failover_accepted").fetchone()[0]
    return Standing(
        degraded=True, since=since, reason=meta.get("reason", ""), waiting=int(held), accepted=int(accepted)
    )


def read_standings(data_dir: Path) -> dict[str, Standing]:
    """What each replica in `data_dir` says of the instance that keeps it (for `broadcaster status`, which
    runs in another process), by file name; those that cannot be read yet (being created) are left out."""
    found = {}
    for path in sorted(data_dir.glob("replica*.db")):
        try:
            with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5.0)) as conn:
                found[path.name] = _standing(conn)
        except sqlite3.Error:
            continue
    return found
