"""What waits in each lane, as the journal has it: the queue depth and the oldest waiting age per channel
that /readyz shows and /metrics exports. Read from the journal rather than from this process's lanes, so
work journaled by the CLI or by another instance counts too."""

from __future__ import annotations

from collections.abc import Iterable

from broadcaster.domain.records import record
from broadcaster.store import Store


@record
class Backlog:
    queue_depth: int
    """Open deliveries: pending (due now, or waiting for a retry) or in flight."""
    oldest_waiting_s: float
    """Seconds since the oldest open delivery was accepted; 0 when nothing waits."""


async def backlog_by_channel(store: Store, channels: Iterable[str], *, now: float) -> dict[str, Backlog]:
    """Every channel named, and any other with open deliveries, from one read of the journal's open
    deliveries (its index of open work, bounded by what is outstanding, not by the history)."""
    depth = dict.fromkeys(channels, 0)
    oldest: dict[str, float] = {}
    for delivery in await store.deliveries(open_only=True):
        depth[delivery.channel] = depth.get(delivery.channel, 0) + 1
        oldest[delivery.channel] = min(oldest.get(delivery.channel, delivery.created_at), delivery.created_at)
    return {
        channel: Backlog(
            queue_depth=count,
            # A clock that stepped back must not show a negative age.
            oldest_waiting_s=max(0.0, now - oldest[channel]) if channel in oldest else 0.0,
        )
        for channel, count in depth.items()
    }
