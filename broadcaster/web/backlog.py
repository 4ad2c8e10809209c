"""What waits in each lane, as the journal has it: the queue depth and the oldest waiting age per channel
that /readyz shows and /metrics exports. Read from the journal rather than from this process's lanes, so
work journaled by the CLI or by another instance counts too; read at most once a second whoever asks, so
polling /readyz and /metrics (which need no token) never competes with intake for the journal."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterable
from typing import Final

from broadcaster.domain.records import record
from broadcaster.store import Store

FRESH_FOR: Final = 1.0
"""Seconds a read of the backlog serves every caller."""


@record
class Backlog:
    queue_depth: int
    """Open deliveries: pending (due now, or waiting for a retry) or in flight."""
    oldest_waiting_s: float
    """Seconds since the oldest open delivery was accepted; 0 when nothing waits."""


class BacklogReader:
    """One aggregate read of the journal's open work, shared by every caller within FRESH_FOR seconds
    (concurrent callers wait for the same read)."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._store = store
        self._clock = clock
        self._read: dict[str, tuple[int, float]] = {}
        self._read_at = float("-inf")
        self._lock = asyncio.Lock()

    async def by_channel(self, channels: Iterable[str]) -> dict[str, Backlog]:
        """Every channel named, and any other with open deliveries."""
        async with self._lock:
            if self._clock() - self._read_at >= FRESH_FOR:
                self._read = await self._store.backlog()
                self._read_at = self._clock()
            read = self._read
        now = self._clock()
        found = {channel: Backlog(queue_depth=0, oldest_waiting_s=0.0) for channel in channels}
        for channel, (count, oldest) in read.items():
            # A clock that stepped back must not show a negative age.
            found[channel] = Backlog(queue_depth=count, oldest_waiting_s=max(0.0, now - oldest))
        return found
