"""Driving the failover store's way back by hand (tests and bench_failover)."""

from __future__ import annotations

from broadcaster.domain.errors import StoreUnreachable
from broadcaster.store.failover import FailoverStore
from broadcaster.store.failover.watch import probe


async def returning(store: FailoverStore) -> None:
    """Probe as the watch loop does until Redis answers (the first probe may meet the connection it closed)."""
    for _ in range(50):
        try:
            await probe(store)
            return
        except StoreUnreachable:
            continue
    raise AssertionError("Redis did not answer the probes")
