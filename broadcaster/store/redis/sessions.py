"""Web sessions in the Redis journal: logged-out sessions and redeemed single-use tokens (login links), one key
each, holding its `until`. Each key expires by itself at its `until` (PXAT, by the server's clock), so nothing
needs pruning; reads compare the stored `until` with the caller's `now`, as the SQLite journal does.

    P revoked-session:<id>         until (epoch seconds) a logged-out session is refused
    P redeemed:<purpose><TAB><nonce>  until (epoch seconds) a redeemed single-use token is remembered"""

from __future__ import annotations

import math
from typing import Final

from broadcaster.store.redis.connection import Failures, Link, optional_text
from broadcaster.store.redis.records import number

# Both keep the later `until` of two writes, and compare in the script, so two instances racing on one key
# never both win. EVAL rather than the journal's registered scripts: each runs once per logout or login link.
REVOKE: Final = """
local stored = tonumber(redis.call('GET', KEYS[1]) or '0')
if stored < tonumber(ARGV[1]) then
    redis.call('SET', KEYS[1], ARGV[1], 'PXAT', ARGV[2])
end
return 1
"""
REDEEM: Final = """
local stored = redis.call('GET', KEYS[1])
if stored and tonumber(stored) > tonumber(ARGV[1]) then
    return 0
end
redis.call('SET', KEYS[1], ARGV[2], 'PXAT', ARGV[3])
return 1
"""


class SessionRecords:
    """The web-session part of RedisStore, which provides `link` and `_failures`."""

    _failures: Failures

    @property
    def link(self) -> Link:
        raise NotImplementedError

    async def revoke_session(self, session_id: str, *, until: float) -> None:
        link = self.link
        key = f"{link.prefix}revoked-session:{session_id}"
        with self._failures.guard("write", write=True):
            await link.client.eval(REVOKE, 1, key, number(until), _milliseconds(until))

    async def session_revoked(self, session_id: str, *, now: float) -> bool:
        link = self.link
        with self._failures.guard("read", write=False):
            stored = optional_text(await link.client.get(f"{link.prefix}revoked-session:{session_id}"))
        return stored is not None and float(stored) > now

    async def redeem_once(self, purpose: str, nonce: str, *, now: float, until: float) -> bool:
        link = self.link
        key = f"{link.prefix}redeemed:{purpose}\t{nonce}"
        with self._failures.guard("write", write=True):
            redeemed = await link.client.eval(REDEEM, 1, key, number(now), number(until), _milliseconds(until))
        return bool(redeemed)


def _milliseconds(moment: float) -> int:
    """An epoch time as PXAT takes it: whole milliseconds, rounded up so a key never expires before `moment`,
    and at least 1 (PXAT refuses 0; any moment in the past expires the key at once)."""
    return max(1, math.ceil(moment * 1000))
