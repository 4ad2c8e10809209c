"""What /readyz and /metrics read from the journal: each lane's backlog (the queue depth and the oldest
waiting age per channel) and the overdue incidents. Read from the journal rather than from this process's
lanes, so work journaled by the CLI or by another instance counts too; read at most once a second whoever
asks, so polling /readyz and /metrics (which need no token) never competes with intake for the journal."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Final, Generic, TypeVar

from broadcaster.domain.models import Incident
from broadcaster.domain.records import record
from broadcaster.store import Store
from broadcaster.web.overdue import overdue_incidents

FRESH_FOR: Final = 1.0
"""Seconds one read serves every caller."""

Value = TypeVar("Value")


class SharedRead(Generic[Value]):
    """One read, shared by every caller within FRESH_FOR seconds (concurrent callers wait for the same read)."""

    def __init__(self, read: Callable[[], Awaitable[Value]], clock: Callable[[], float]) -> None:
        self._read = read
        self._clock = clock
        self._value: Value | None = None
        self._read_at = 0.0
        self._lock = asyncio.Lock()

    async def get(self) -> Value:
        async with self._lock:
            # Read again when stale, and when the clock stepped back (else the value would stay until the
            # clock caught up again).
            if self._value is None or not 0 <= self._clock() - self._read_at < FRESH_FOR:
                self._value = await self._read()
                self._read_at = self._clock()
            return self._value


@record
class Backlog:
    queue_depth: int
    """Open deliveries: pending (due now, or waiting for a retry) or in flight."""
    oldest_waiting_s: float
    """Seconds since the oldest open delivery was accepted; 0 when nothing waits."""


class JournalFigures:
    """The backlog and the overdue incidents, each read at most once per FRESH_FOR seconds."""

    def __init__(self, store: Store, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._backlog = SharedRead(store.backlog, clock)
        self._overdue = SharedRead(lambda: overdue_incidents(store, now=datetime.fromtimestamp(clock(), UTC)), clock)

    async def backlog(self, channels: Iterable[str]) -> dict[str, Backlog]:
        """Every channel named, and any other with open deliveries."""
        read = await self._backlog.get()
        now = self._clock()
        found = {channel: Backlog(queue_depth=0, oldest_waiting_s=0.0) for channel in channels}
        for channel, (count, oldest) in read.items():
            # A clock that stepped back must not show a negative age.
            found[channel] = Backlog(queue_depth=count, oldest_waiting_s=max(0.0, now - oldest))
        return found

    async def overdue(self) -> list[Incident]:
        """Open incidents whose next update is late, the longest overdue first."""
        return await self._overdue.get()
