"""The lane and journal alone: what broadcaster's own bookkeeping costs per delivery, with nothing sent.

    .venv/bin/python -m tests.bench.bench_lane             # 7 updates to 1,000 targets each
    .venv/bin/python -m tests.bench.bench_lane --quick     # 2 updates to 50 targets: a smoke run

One SQLite journal and one in-order lane at concurrency 64 whose channel answers at once. Each update is
accepted (one durable transaction) with its deliveries handed off to the lane, as Dispatcher.submit does,
then "sent" and recorded by the lane; timed from accept until the lane has journaled the last delivery as
delivered. With `--claims`, nothing is handed off: the lane claims every delivery, as it does for updates
accepted by another process. The webhook benchmark's end-to-end figure is this
plus the channel's own work.

Wall time on a shared machine swings by a quarter from run to run. Instructions do not: under valgrind
the difference between two update counts is one update's cost, repeatable to within 1-2%:

    for n in 2 7; do valgrind --tool=cachegrind --cache-sim=no --cachegrind-out-file=/dev/null \\
        .venv/bin/python -m tests.bench.bench_lane --updates $n 2>&1 | grep 'I *refs'; done
    # (I(7) - I(2)) / 5 = instructions per 1,000-delivery update"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Self

from broadcaster.domain.models import UpdateDraft
from broadcaster.lanes import EventKind, Lane, LaneEvent
from broadcaster.store.base import Handoff, PlannedDelivery
from broadcaster.store.sqlite import SqliteStore
from channels.base import Channel, ChannelContext, CheckResult, Job, Ordering, Receipt
from config.settings import LanePolicy

NAME = "null"
OWNER = "bench:1:lane"
RUN_LIMIT = 120.0  # seconds one update may take before the benchmark gives up


class NullChannel(Channel):
    """Answers every delivery at once, after one trip through the event loop (as any real send makes)."""

    name = NAME

    @classmethod
    def create(cls, context: ChannelContext) -> Self:
        return cls()

    async def send(self, job: Job) -> Receipt:
        await asyncio.sleep(0)
        return Receipt(detail="HTTP 200 in 0 ms", external_id="msg_" + job.delivery_id)

    async def check(self) -> list[CheckResult]:
        return []


async def bench(updates: int, targets: int, concurrency: int, *, hand_off: bool) -> list[float]:
    plan = [PlannedDelivery(NAME, f"https://hooks.example/{i}", Ordering.IN_ORDER, 5, 3600) for i in range(targets)]
    delivered = 0
    done = asyncio.Event()

    def observe(event: LaneEvent) -> None:
        nonlocal delivered
        if event.kind is EventKind.DELIVERED:
            delivered += 1
            if delivered == targets:
                done.set()

    seconds: list[float] = []
    with tempfile.TemporaryDirectory(prefix="bench-lane-") as tmp:
        store = SqliteStore(Path(tmp) / "journal.db", url="sqlite:///journal.db")
        await store.open()
        policy = LanePolicy(concurrency=concurrency, timeout=30)
        lane = Lane(
            name=NAME,
            channel=NullChannel(),
            ordering=Ordering.IN_ORDER,
            policy=policy,
            store=store,
            owner=OWNER,
            observe=observe,
        )
        lane.start()
        try:
            for number in range(updates):
                delivered = 0
                done.clear()
                draft = UpdateDraft(
                    title=f"Bench update {number}", status="investigating", message="Looking.", impact="minor"
                )
                started = time.perf_counter()
                room = {NAME: lane.handoff_room() if hand_off else 0}
                handoff = Handoff(
                    owner=OWNER,
                    lease_until=time.time() + lane.lease,
                    room=room,
                    skip_targets={NAME: lane.handoff_skips()},
                )
                accepted = await store.accept_handing_off(draft, plan, handoff, now=datetime.now(UTC))
                lane.take(accepted.handed_off)
                lane.wake()
                async with asyncio.timeout(RUN_LIMIT):
                    await done.wait()
                seconds.append(time.perf_counter() - started)
        finally:
            await lane.stop()
            await store.close()
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="The lane and journal with a channel that answers at once.")
    parser.add_argument("--quick", action="store_true", help="2 updates to 50 targets: a smoke run")
    parser.add_argument("--updates", type=int, help="updates, one after another (default 7, or 2 with --quick)")
    parser.add_argument("--targets", type=int, help="targets per update (default 1000, or 50 with --quick)")
    parser.add_argument("--concurrency", type=int, default=64, help="the lane's concurrency")
    parser.add_argument("--claims", action="store_true", help="hand nothing off: the lane claims every delivery")
    args = parser.parse_args()
    updates = args.updates or (2 if args.quick else 7)
    targets = args.targets or (50 if args.quick else 1000)
    seconds = asyncio.run(bench(updates, targets, args.concurrency, hand_off=not args.claims))
    median = statistics.median(seconds)
    leases = "claimed by the lane" if args.claims else "handed off as accepted"
    print(f"{updates} updates to {targets} targets, concurrency {args.concurrency}, {leases}, nothing sent")
    print(
        f"per update: median {median * 1000:.1f} ms ({targets / median:,.0f} deliveries/s), "
        f"each: {', '.join(f'{s * 1000:.0f}' for s in seconds)} ms"
    )
    print(
        json.dumps(
            {
                "bench": "lane",
                "updates": updates,
                "targets": targets,
                "concurrency": args.concurrency,
                "handed_off": not args.claims,
                "median_s": round(median, 4),
                "seconds": [round(s, 4) for s in seconds],
            }
        )
    )


if __name__ == "__main__":
    main()
