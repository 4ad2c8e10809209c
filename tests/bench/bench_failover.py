"""The way back from a Redis outage: how long an instance takes, once Redis answers again, to hand Redis one
update it accepted alone (1,000 webhook deliveries, every one delivered from its replica, each with its
attempt), beside accepting the same update into Redis directly, in the same run.

    .venv/bin/python -m tests.bench.bench_failover            # 10 interleaved rounds of each
    .venv/bin/python -m tests.bench.bench_failover --quick    # 1 round, 100 deliveries

One redis-server (persistent, so it can be stopped and started again on its port), started and stopped by
PID; the failover store in this process. The way back is timed from the moment Redis answers to the store
being shared again (watch.way_back: drain, held records, adoption); the baseline is RedisStore.accept of
an update with the same plan. Then the replica's refresh (what an instance does a few seconds after each
change while Redis answers) on a journal of 1,000 incidents, beside one read of the whole site history (what
every mirror render reads). Prints the figures as JSON last."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store.failover import FailoverStore
from broadcaster.store.failover.watch import refresh, way_back
from broadcaster.store.redis import RedisStore
from tests.support.failover import returning
from tests.support.journal import first_attempt, planned, post
from tests.support.redis import RedisServer


def failover_store(server: RedisServer) -> FailoverStore:
    """A failover store on `server`, its replica in a new directory, refreshed only when the script asks."""
    return FailoverStore(
        RedisStore(server.url, socket_timeout=2),
        Path(tempfile.mkdtemp(prefix="bench-failover-")),
        orderings={"scripted": Ordering.IN_ORDER},
        publish_targets=(),
        refresh_every=3600,
    )


async def one_round(server: RedisServer, targets: int) -> tuple[float, float]:
    server.flush()
    plan = planned(*(f"t{n}" for n in range(targets)))
    direct = RedisStore(server.url)
    await direct.open()
    try:
        started = time.perf_counter()
        await post(direct, plan)
        accept = time.perf_counter() - started
    finally:
        await direct.close()

    store = failover_store(server)
    await store.open()
    try:
        server.stop()
        accepted = await post(store, plan)
        claimed = await store.claim(
            "scripted", ordering=Ordering.IN_ORDER, owner="bench", limit=targets, now=time.time(), lease=600
        )
        now = time.time()
        outcomes = [first_attempt(c.delivery.id, DeliveryState.DELIVERED, at=now) for c in claimed.claimed]
        await store.finish("bench", outcomes)
        assert len(outcomes) == targets, len(outcomes)
        server.start(again=True)
        started = time.perf_counter()
        await returning(store)
        assert await way_back(store)
        back = time.perf_counter() - started
        delivered = await store.primary.deliveries(update_id=accepted.update.id)
        assert sum(d.state is DeliveryState.DELIVERED for d in delivered) == targets
    finally:
        await store.close()
    return accept, back


async def refresh_cost(server: RedisServer, incidents: int, repeats: int) -> tuple[float, float]:
    """A replica refresh of a journal of `incidents` (three updates each, the first posted with an
    idempotency key, one delivery per update, every other incident resolved), beside one read of the whole
    site history (what every mirror render does)."""
    server.flush()
    store = failover_store(server)
    await store.open()
    try:
        for n in range(incidents):
            opened = await post(store.primary, planned("t"), title=f"Incident {n}", key=f"deploy-{n}")
            await post(store.primary, planned("t"), incident_id=opened.incident.id, status="identified")
            final = "resolved" if n % 2 else "monitoring"
            await post(store.primary, planned("t"), incident_id=opened.incident.id, status=final)
        refreshes, reads = [], []
        for _ in range(repeats):
            started = time.perf_counter()
            await refresh(store)
            refreshes.append(time.perf_counter() - started)
            started = time.perf_counter()
            await store.primary.site_history(recent=None)
            reads.append(time.perf_counter() - started)
    finally:
        await store.close()
    return statistics.median(refreshes), statistics.median(reads)


async def main(rounds: int, targets: int, incidents: int) -> dict[str, object]:
    server = RedisServer(persistent=True).start()
    accepts, backs = [], []
    try:
        for _ in range(rounds):
            accept, back = await one_round(server, targets)
            accepts.append(accept)
            backs.append(back)
        refresh_s, read_s = await refresh_cost(server, incidents, repeats=max(rounds, 3))
    finally:
        server.close()
    figures: dict[str, object] = {
        "targets": targets,
        "rounds": rounds,
        "accept_ms_median": round(statistics.median(accepts) * 1000, 1),
        "way_back_ms_median": round(statistics.median(backs) * 1000, 1),
        "way_back_vs_accept": round(statistics.median(b / a for a, b in zip(accepts, backs, strict=True)), 2),
        "incidents": incidents,
        "refresh_ms_median": round(refresh_s * 1000, 1),
        "site_history_ms_median": round(read_s * 1000, 1),
        "refresh_vs_site_history": round(refresh_s / read_s, 2),
    }
    return figures


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round of 100 deliveries")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args()
    rounds, targets, incidents = (1, 100, 30) if args.quick else (args.rounds, 1000, 1000)
    print(json.dumps(asyncio.run(main(rounds, targets, incidents))))
