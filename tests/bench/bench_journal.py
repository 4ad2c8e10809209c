"""The SQLite journal alone: what accepting, leasing and recording 1,000 deliveries cost, with no lane,
no channel and no event-loop traffic, so the journal's share of bench_lane and bench_webhook is known.

    .venv/bin/python -m tests.bench.bench_journal            # 7 updates to 1,000 targets each
    .venv/bin/python -m tests.bench.bench_journal --quick    # 2 updates to 50 targets: a smoke run

Each update is accepted (one durable transaction, as `send` does), its deliveries handed off to the lane
in that transaction (store.Handoff, as Dispatcher.submit does for an idle lane); then, with `--phase all`,
they are recorded as delivered BATCH at a time, each batch with one claim that has no room to lease more:
the calls a busy lane makes, through the same SqliteStore API. With `--claims`, nothing is handed off and
each claim leases the next BATCH while it records the previous one, as a lane does for deliveries accepted
by another process or beyond its handoff room. `--phase accept` stops after accepting, so the difference
between the phases is what leasing and recording cost. `--history N` journals N finished deliveries
first, as months of incidents leave a journal (`--random-history-ids`: as versions before
models.delivery_ids left it): accepting and recording should cost what they cost in a new journal (a
million random delivery ids once made them 5x and 1.7x slower).

Wall time on a shared machine swings; instructions under valgrind do not. Per 1,000-delivery update:

    for phase in accept all; do for n in 2 7; do valgrind --tool=cachegrind --cache-sim=no \\
        --cachegrind-out-file=/dev/null .venv/bin/python -m tests.bench.bench_journal --phase $phase \\
        --updates $n 2>&1 | grep 'I *refs'; done; done
    # (I(7) - I(2)) / 5 per phase: accept alone, and accept + claims + outcomes"""

from __future__ import annotations

import argparse
import asyncio
import json
import sqlite3
import statistics
import tempfile
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from broadcaster.domain.models import UpdateDraft, delivery_ids, new_id
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store.base import Claimed, Handoff, Outcome, PlannedDelivery
from broadcaster.store.sqlite import SqliteStore
from channels.base import Ordering

CHANNEL = "webhook"
"""Each update goes to a channel of its own (webhook-0, webhook-1, ...), so every update finds its
channel's queue empty, as a busy lane's next update does once the previous one is out, in either phase:
with `--phase accept`, the deliveries of earlier updates stay in flight."""
OWNER = "bench:1:journal"
BATCH = 32
"""Deliveries per claim: what a lane at concurrency 64 claims and records per transaction (about 30 a
transaction in bench_webhook_updates)."""
LEASE = 60.0


def delivered(claimed: Sequence[Claimed], now: float) -> list[Outcome]:
    """First-attempt successes with a receipt like the webhook channel's, as the lane records them."""
    return [
        Outcome(
            delivery_id=c.delivery.id,
            state=DeliveryState.DELIVERED,
            attempt=c.delivery.attempts,
            started_at=now,
            finished_at=now,
            detail="HTTP 200 in 12 ms",
            external_id="msg_" + c.delivery.id,
        )
        for c in claimed
    ]


async def lease_and_record(store: SqliteStore, channel: str, handed_off: Sequence[Claimed], expected: int) -> None:
    """Record what was handed off, BATCH at a time; then claim everything still due, BATCH at a time,
    recording each batch with the next claim. Exits unless `expected` deliveries were recorded."""
    recorded = 0
    for start in range(0, len(handed_off), BATCH):
        now = time.time()
        pending = delivered(handed_off[start : start + BATCH], now)
        await store.finish_and_claim(
            pending, channel, ordering=Ordering.IN_ORDER, owner=OWNER, limit=0, now=now, lease=LEASE, sweep=False
        )
        recorded += len(pending)
    pending = []
    while True:
        now = time.time()
        result = await store.finish_and_claim(
            pending,
            channel,
            ordering=Ordering.IN_ORDER,
            owner=OWNER,
            limit=BATCH,
            now=now,
            lease=LEASE,
            sweep=False,
        )
        recorded += len(pending)
        if not result.claimed:
            break
        pending = delivered(result.claimed, now)
    if recorded != expected:
        raise SystemExit(f"recorded {recorded} deliveries, expected {expected}")


def fill_history(path: Path, deliveries: int, per_update: int, *, random_ids: bool = False) -> int:
    """Journal `deliveries` finished deliveries first, `per_update` to an update, each update an incident of
    its own, as months of earlier incidents leave them: delivered, with ids made as the journal makes
    them, or each drawn at random as versions before models.delivery_ids did. Written straight into the
    tables, a million rows in seconds. Returns how many the journal holds."""
    conn = sqlite3.connect(path, isolation_level=None)
    try:
        conn.execute("BEGIN")
        for number in range(0, deliveries, per_update):
            incident_id, update_id = new_id(), new_id()
            stamp = time.time() - 86400
            conn.execute(
                "INSERT INTO incidents (id, state, is_open, created_at, updated_at) VALUES (?, '{}', 0, ?, ?)",
                (incident_id, stamp, stamp),
            )
            conn.execute(
                "INSERT INTO updates (id, incident_id, seq, status, impact, message, components, created_at, "
                "author, incident_after) VALUES (?, ?, 1, 'resolved', 'none', 'Fixed.', '[]', ?, 'bench', '{}')",
                (update_id, incident_id, stamp),
            )
            size = min(per_update, deliveries - number)
            ids = [new_id() for _ in range(size)] if random_ids else delivery_ids(size)
            conn.execute(
                "INSERT INTO deliveries (id, update_id, incident_id, update_seq, channel, target, state, attempts, "
                "max_attempts, created_at, not_before, expires_at, finished_at, detail, external_id) "
                "SELECT value, ?, ?, 1, ?, 'https://hooks.example/' || key, 'delivered', 1, 5, ?, ?, ?, ?, "
                "'HTTP 200 in 12 ms', 'msg_' || value FROM json_each(?)",
                (update_id, incident_id, CHANNEL, stamp, stamp, stamp + 3600, stamp, json.dumps(ids)),
            )
        conn.execute("COMMIT")
        journaled: int = conn.execute("SELECT COUNT(*) FROM deliveries").fetchone()[0]
    finally:
        conn.close()
    return journaled


async def bench(
    updates: int, targets: int, phase: str, *, hand_off: bool, history: int, random_history_ids: bool = False
) -> tuple[dict[str, list[float]], int]:
    """Seconds per update of each phase, and how many deliveries the journal held before the first."""
    seconds: dict[str, list[float]] = {"accept": [], "lease_and_record": []}
    journaled = 0
    with tempfile.TemporaryDirectory(prefix="bench-journal-") as tmp:
        store = SqliteStore(Path(tmp) / "journal.db", url="sqlite:///journal.db")
        await store.open()
        try:
            if history:
                journaled = fill_history(store.path, history, targets, random_ids=random_history_ids)
            for number in range(updates):
                draft = UpdateDraft(
                    title=f"Bench update {number}", status="investigating", message="Looking.", impact="minor"
                )
                channel = f"{CHANNEL}-{number}"
                plan = [
                    PlannedDelivery(
                        channel=channel,
                        target=f"https://hooks.example/{i}",
                        ordering=Ordering.IN_ORDER,
                        max_attempts=5,
                        ttl=3600,
                    )
                    for i in range(targets)
                ]
                now = datetime.now(UTC)
                handoff = (
                    Handoff(owner=OWNER, lease_until=now.timestamp() + LEASE, room={channel: targets})
                    if hand_off
                    else None
                )
                started = time.perf_counter()
                accepted = await store.accept_handing_off(draft, plan, handoff, now=now)
                seconds["accept"].append(time.perf_counter() - started)
                if phase == "all":
                    started = time.perf_counter()
                    await lease_and_record(store, channel, accepted.handed_off, targets)
                    seconds["lease_and_record"].append(time.perf_counter() - started)
        finally:
            await store.close()
    return seconds, journaled


def main() -> None:
    parser = argparse.ArgumentParser(description="The journal alone: accept, then lease and record, per update.")
    parser.add_argument("--quick", action="store_true", help="2 updates to 50 targets: a smoke run")
    parser.add_argument("--updates", type=int, help="updates, one after another (default 7, or 2 with --quick)")
    parser.add_argument("--targets", type=int, help="targets per update (default 1000, or 50 with --quick)")
    parser.add_argument(
        "--phase",
        choices=["accept", "all"],
        default="all",
        help="accept only, or accept then lease and record every delivery (default)",
    )
    parser.add_argument("--claims", action="store_true", help="hand nothing off: claims lease every delivery")
    parser.add_argument(
        "--history", type=int, default=0, help="finished deliveries journaled before the first update (default 0: none)"
    )
    parser.add_argument(
        "--random-history-ids",
        action="store_true",
        help="give them independent random ids, as journals before 2026-11-23 have",
    )
    args = parser.parse_args()
    updates = args.updates or (2 if args.quick else 7)
    targets = args.targets or (50 if args.quick else 1000)
    seconds, journaled = asyncio.run(
        bench(
            updates,
            targets,
            args.phase,
            hand_off=not args.claims,
            history=args.history,
            random_history_ids=args.random_history_ids,
        )
    )
    medians = {name: round(statistics.median(times), 4) for name, times in seconds.items() if times}
    leases = "claims lease them" if args.claims else "handed off as accepted"
    print(
        f"{updates} updates to {targets} targets, phase {args.phase}, {leases}, batches of {BATCH}, "
        f"after {journaled} finished deliveries"
    )
    for name, median in medians.items():
        print(f"  {name}: median {median * 1000:.1f} ms per update ({median / targets * 1e6:.1f} µs a delivery)")
    print(
        json.dumps(
            {
                "bench": "journal",
                "updates": updates,
                "targets": targets,
                "phase": args.phase,
                "handed_off": not args.claims,
                "batch": BATCH,
                "history": journaled,
                "median_s": medians,
            }
        )
    )


if __name__ == "__main__":
    main()
