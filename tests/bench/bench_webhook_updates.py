"""Update after update to the same local endpoints, in one process: the broadcaster end to end, the
webhook channel alone, or bench_webhook's raw aiohttp loop. What one more update costs, without a process
or a runtime starting each time.

    .venv/bin/python -m tests.bench.bench_webhook_updates --sender broadcaster   # 5 updates to 1,000
    .venv/bin/python -m tests.bench.bench_webhook_updates --quick                # 2 updates to 50

tests.bench.bench_webhook times one update against raw aiohttp, but on a shared machine its wall times
swing by a third between runs. Instructions do not: under valgrind, the difference between two update
counts is one update's instructions, repeatable to within 1-2%. The broadcaster's figure minus the
channel's is what the journal, the lane and accepting the update cost; the channel's minus the raw
loop's is what signing and the envelope cost:

    for sender in broadcaster channel raw; do for n in 1 3; do valgrind --tool=cachegrind --cache-sim=no \\
        --cachegrind-out-file=/dev/null .venv/bin/python -m tests.bench.bench_webhook_updates \\
        --sender $sender --updates $n 2>&1 | grep 'I *refs'; done; done
    # (I(3) - I(1)) / 2 = instructions per 1,000-delivery update, for each sender

All senders start the same way (one broadcaster run makes the channel's jobs), so that cancels out in the
difference.

Instructions overweigh signing. valgrind's virtual CPU has no SHA extensions, so under it OpenSSL hashes in
plain code: about 51,000 instructions per 1.6 KB body, 56 M for an update's 1,000 signatures (the channel
with signing switched off counts the same as the raw loop). On this machine's CPU (SHA-NI), signing those
1,000 bodies takes about 4 ms, a hundredth of the run; bench_webhook's wall times show the channel within
noise of the raw loop. Receivers are started and stopped by PID as in bench_webhook, and every update is checked
against their request counts."""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import tempfile
import time
from pathlib import Path

import aiohttp

from broadcaster.dispatch import Dispatcher
from broadcaster.lanes import EventKind
from broadcaster.runtime import open_runtime
from channels.base import ChannelContext
from channels.webhook import WebhookChannel
from tests.bench.bench_webhook import (
    RUN_LIMIT,
    Outcomes,
    Sample,
    Snapshot,
    drop_environment_settings,
    run_broadcaster,
    update_draft,
    webhook_settings,
)
from tests.bench.webhook_receivers import Receivers


async def broadcaster_updates(urls: list[str], args: argparse.Namespace, workdir: Path) -> list[float]:
    runtime = await open_runtime(webhook_settings(urls, args.concurrency, workdir, run=1))
    outcomes = Outcomes(len(urls))
    seconds: list[float] = []
    try:
        async with Dispatcher(runtime, channels=["webhook"], observe=outcomes) as dispatcher:
            for number in range(args.updates):
                outcomes.reset()
                started = time.perf_counter()
                await dispatcher.submit(update_draft(f"Bench update {number}"))
                async with asyncio.timeout(RUN_LIMIT):
                    await outcomes.finished.wait()
                seconds.append(time.perf_counter() - started)
                if set(outcomes.counts) != {EventKind.DELIVERED}:
                    raise SystemExit(f"update {number}: not all delivered: {outcomes.counts}")
    finally:
        await runtime.close()
    return seconds


async def channel_updates(args: argparse.Namespace, sample: Sample) -> list[float]:
    assert sample.settings is not None
    channel = WebhookChannel.create(ChannelContext(sample.settings, Snapshot(sample.histories)))
    seconds: list[float] = []
    try:
        for _ in range(args.updates):
            pending = iter(sample.jobs)

            async def worker() -> None:
                for job in pending:  # noqa: B023 - each update's workers share that update's jobs
                    await channel.send(job)

            started = time.perf_counter()
            async with asyncio.timeout(RUN_LIMIT):
                await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            seconds.append(time.perf_counter() - started)
    finally:
        await channel.aclose()
    return seconds


async def raw_updates(urls: list[str], args: argparse.Namespace, sample: Sample) -> list[float]:
    """bench_webhook's raw aiohttp loop (the same body and headers), on one session for every update."""
    connector = aiohttp.TCPConnector(limit=args.concurrency, limit_per_host=args.concurrency)
    seconds: list[float] = []
    failed: list[int] = []
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        for _ in range(args.updates):
            pending = iter(urls)

            async def worker() -> None:
                for url in pending:  # noqa: B023 - each update's workers share that update's URLs
                    async with session.post(url, data=sample.body, headers=sample.headers, allow_redirects=False) as r:
                        await r.read()
                        if not 200 <= r.status < 300:
                            failed.append(r.status)

            started = time.perf_counter()
            async with asyncio.timeout(RUN_LIMIT):
                await asyncio.gather(*(worker() for _ in range(args.concurrency)))
            seconds.append(time.perf_counter() - started)
    if failed:
        raise SystemExit(f"raw loop: {len(failed)} requests failed, first with HTTP {failed[0]}")
    return seconds


async def bench(args: argparse.Namespace, receivers: Receivers) -> list[float]:
    urls = [f"http://127.0.0.1:{receivers.ports[i % len(receivers.ports)]}/hook/{i}" for i in range(args.targets)]
    sample = Sample()
    with tempfile.TemporaryDirectory(prefix="bench-webhook-updates-") as tmp:
        await run_broadcaster(urls, args.concurrency, Path(tmp), 0, sample)  # the same start for both senders
        async with aiohttp.ClientSession() as control:
            await receivers.reset(control)
            if args.sender == "broadcaster":
                seconds = await broadcaster_updates(urls, args, Path(tmp))
            elif args.sender == "channel":
                seconds = await channel_updates(args, sample)
            else:
                seconds = await raw_updates(urls, args, sample)
            requests, paths = await receivers.counts(control)
    if (requests, paths) != (args.updates * len(urls), len(urls)):
        raise SystemExit(f"the receivers got {requests} requests on {paths} paths, not one per update and endpoint")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description="Update after update to the same webhook endpoints, one sender.")
    parser.add_argument("--sender", choices=["broadcaster", "channel", "raw"], default="broadcaster")
    parser.add_argument("--quick", action="store_true", help="2 updates to 50 endpoints: a smoke run")
    parser.add_argument("--updates", type=int, help="updates, one after another (default 5, or 2 with --quick)")
    parser.add_argument("--targets", type=int, help="endpoints (default 1000, or 50 with --quick)")
    parser.add_argument("--concurrency", type=int, default=64, help="[retry.webhook] concurrency, or the channel's")
    args = parser.parse_args()
    args.updates = args.updates or (2 if args.quick else 5)
    args.targets = args.targets or (50 if args.quick else 1000)
    drop_environment_settings()
    receivers = Receivers()
    try:
        receivers.start(2, 2)
        seconds = asyncio.run(bench(args, receivers))
    finally:
        receivers.stop()
    median = statistics.median(seconds)
    print(f"{args.sender}: {args.updates} updates to {args.targets} endpoints, concurrency {args.concurrency}")
    print(f"per update: median {median * 1000:.1f} ms, each: {', '.join(f'{s * 1000:.0f}' for s in seconds)} ms")
    print(
        json.dumps(
            {
                "bench": "webhook_updates",
                "sender": args.sender,
                "updates": args.updates,
                "targets": args.targets,
                "concurrency": args.concurrency,
                "median_s": round(median, 4),
                "seconds": [round(s, 4) for s in seconds],
            }
        )
    )


if __name__ == "__main__":
    main()
