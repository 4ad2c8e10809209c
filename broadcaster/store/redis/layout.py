"""The Redis journal's key layout version (kept under P "layout"), and bringing a journal an earlier build
wrote up to this build's layout when this build first opens it.

    2  P idempotency-keys: the set of every idempotency key (what a copy of the journal carries, so that a
       request sent again to the copy answers its update: store.sqlite.importing). A journal of layout 1
       gets it from a scan of its P idempotency:<key> hashes. A key that an instance of the earlier build,
       still running, writes after the upgrade answers its requests here but stays out of the set: copies
       never carry it (the README says to upgrade every instance together).
    1  the first layout.

Beside the version, P "journal" holds the journal's identity, drawn when it is first marked: a store that
finds another one (or none) knows the server lost what it held (RedisStore.lost_its_data)."""

from __future__ import annotations

import re
from typing import Final

import redis.asyncio

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import new_id
from broadcaster.store.redis.connection import optional_text, text

LAYOUT_VERSION: Final = "2"
_SCAN_BATCH: Final = 1000


async def settle_layout(client: redis.asyncio.Redis, prefix: str) -> str:
    """Mark a new journal with this build's layout, bring a journal of layout 1 up to it; StoreError for any
    other layout (a later build's: this one would misread it). Upgrading twice at once is harmless. Returns
    the journal's identity (P "journal"): drawn by whoever marks it first, gone with the journal's data."""
    await client.set(prefix + "journal", new_id(), nx=True)
    await client.set(prefix + "layout", LAYOUT_VERSION, nx=True)
    layout = optional_text(await client.get(prefix + "layout"))
    if layout == "1":
        await _index_idempotency_keys(client, prefix)
        await client.set(prefix + "layout", LAYOUT_VERSION)
        layout = LAYOUT_VERSION
    if layout != LAYOUT_VERSION:
        raise StoreError(
            f"the Redis journal under {prefix!r} has key layout {layout!r}; this build knows {LAYOUT_VERSION!r}"
        )
    return optional_text(await client.get(prefix + "journal")) or ""


async def _index_idempotency_keys(client: redis.asyncio.Redis, prefix: str) -> None:
    hashes = prefix + "idempotency:"
    pattern = re.sub(r"([*?\[\]\\])", r"\\\1", hashes) + "*"  # the prefix matched as it is, not as a glob
    batch: list[str] = []
    async for found in client.scan_iter(match=pattern, count=_SCAN_BATCH, _type="hash"):
        batch.append(text(found).removeprefix(hashes))
        if len(batch) == _SCAN_BATCH:
            await client.sadd(prefix + "idempotency-keys", *batch)
            batch.clear()
    if batch:
        await client.sadd(prefix + "idempotency-keys", *batch)
