"""Web sessions in the SQLite journal: logged-out sessions and redeemed single-use tokens (login links), each
kept until it would have expired anyway. Cookies and links are signed, so the journal holds only what must be
refused. Every write of a table first prunes its expired rows: each stays as small as what is unexpired."""

from __future__ import annotations

import sqlite3
import time
from functools import partial

from broadcaster.store.sqlite.connection import Connections


class SessionRecords(Connections):
    """The web-session part of SqliteStore. Writes are durable: an acknowledged logout or redemption holds
    through a crash, or the cookie or link would work again after it."""

    async def revoke_session(self, session_id: str, *, until: float) -> None:
        # Pruned by this host's clock, as Redis expires its keys by its own: the caller's `now` is not given.
        revoke = partial(_revoke, session_id=session_id, until=until, now=time.time())
        await self._write(revoke, durable=True)

    async def session_revoked(self, session_id: str, *, now: float) -> bool:
        return await self._read(partial(_revoked, session_id=session_id, now=now))

    async def redeem_once(self, purpose: str, nonce: str, *, now: float, until: float) -> bool:
        return await self._write(partial(_redeem, purpose=purpose, nonce=nonce, now=now, until=until), durable=True)


def _revoke(conn: sqlite3.Connection, session_id: str, until: float, now: float) -> None:
    conn.execute("DELETE FROM revoked_sessions WHERE until <= ?", (now,))
    conn.execute(
        "INSERT INTO revoked_sessions (id, until) VALUES (?, ?) "
        "ON CONFLICT (id) DO UPDATE SET until = max(until, excluded.until)",
        (session_id, until),
    )


def _revoked(conn: sqlite3.Connection, session_id: str, now: float) -> bool:
    found = conn.execute("SELECT 1 FROM revoked_sessions WHERE id = ? AND until > ?", (session_id, now)).fetchone()
    return found is not None


def _redeem(conn: sqlite3.Connection, purpose: str, nonce: str, now: float, until: float) -> bool:
    """Expired redemptions go first, so a nonce past its `until` is redeemed anew, as on Redis."""
    conn.execute("DELETE FROM redeemed WHERE until <= ?", (now,))
    inserted = conn.execute(
        "INSERT OR IGNORE INTO redeemed (purpose, nonce, until) VALUES (?, ?, ?)", (purpose, nonce, until)
    )
    return inserted.rowcount == 1
