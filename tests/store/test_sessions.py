"""How each backend keeps what the web sessions contract (contract_sessions.py) remembers bounded: the SQLite
journal prunes expired rows as it writes, and Redis keys expire by themselves at their `until`."""

from __future__ import annotations

import math
import sqlite3
import time

import redis.asyncio

from broadcaster.store.redis import RedisStore
from broadcaster.store.sqlite import SqliteStore

LINK = "login-link"


async def test_the_sqlite_journal_prunes_expired_sessions_and_links_as_it_writes(store: SqliteStore) -> None:
    now = time.time()
    await store.revoke_session("expired", until=now - 1)
    await store.revoke_session("current", until=now + 60)
    assert await store.redeem_once(LINK, "expired", now=now, until=now + 1)
    assert await store.redeem_once(LINK, "current", now=now + 2, until=now + 60)
    with sqlite3.connect(store.path) as conn:
        revoked = conn.execute("SELECT id FROM revoked_sessions").fetchall()
        redeemed = conn.execute("SELECT purpose, nonce FROM redeemed").fetchall()
    assert revoked == [("current",)]
    assert redeemed == [(LINK, "current")]


async def test_redis_keys_expire_at_their_until(redis_url: str) -> None:
    store = RedisStore(redis_url)
    await store.open()
    until = time.time() + 600
    try:
        await store.revoke_session("s-1", until=until)
        assert await store.redeem_once(LINK, "n-1", now=until - 600, until=until)
        await store.revoke_session("s-2", until=time.time() - 1)
    finally:
        await store.close()
    async with redis.asyncio.from_url(redis_url, decode_responses=True) as client:
        revoked = await client.pexpiretime(f"{store.prefix}revoked-session:s-1")
        redeemed = await client.pexpiretime(f"{store.prefix}redeemed:{LINK}\tn-1")
        assert not await client.exists(f"{store.prefix}revoked-session:s-2")
    assert revoked == redeemed == math.ceil(until * 1000)
