"""Subscribers in the SQLite journal: one row per (kind, address), the rest of the record as JSON; and
lifting a suppression when an address subscribes again."""

from __future__ import annotations

import sqlite3
from collections.abc import Sequence

from broadcaster.domain.subscriptions import Subscriber, SubscriberKind, from_state, state_of


def save(conn: sqlite3.Connection, subscribers: Sequence[Subscriber]) -> int:
    rows = [(s.kind, s.address, state_of(s)) for s in subscribers]
    new = conn.executemany("INSERT OR IGNORE INTO subscribers (kind, address, state) VALUES (?, ?, ?)", rows).rowcount
    conn.executemany("UPDATE subscribers SET state = ?3 WHERE kind = ?1 AND address = ?2", rows)
    return new


def remove(conn: sqlite3.Connection, kind: SubscriberKind, address: str) -> bool:
    return conn.execute("DELETE FROM subscribers WHERE kind = ? AND address = ?", (kind, address)).rowcount > 0


def one(conn: sqlite3.Connection, kind: SubscriberKind, address: str) -> Subscriber | None:
    row = conn.execute("SELECT state FROM subscribers WHERE kind = ? AND address = ?", (kind, address)).fetchone()
    return None if row is None else from_state(kind, address, row[0])


def every(conn: sqlite3.Connection, kind: SubscriberKind) -> list[Subscriber]:
    rows = conn.execute("SELECT address, state FROM subscribers WHERE kind = ? ORDER BY address", (kind,))
    return [from_state(kind, address, state) for address, state in rows]


def unsuppress(conn: sqlite3.Connection, address: str) -> bool:
    return conn.execute("DELETE FROM suppressions WHERE address = ?", (address.lower(),)).rowcount > 0


def is_suppressed(conn: sqlite3.Connection, address: str) -> bool:
    found = conn.execute("SELECT 1 FROM suppressions WHERE address = ?", (address.lower(),)).fetchone()
    return found is not None
