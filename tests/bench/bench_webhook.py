"""Webhook fan-out benchmark: one update delivered to N local endpoints, side by side in one run.

    .venv/bin/python -m tests.bench.bench_webhook            # 1,000 endpoints, 3 rounds (median)
    .venv/bin/python -m tests.bench.bench_webhook --quick    # 50 endpoints, 1 round: a smoke run

broadcaster  The real thing end to end: open_runtime + Dispatcher, submit one update (journaled with one
             delivery per target, each target with its own signing secret), the webhook lane claims, signs,
             POSTs and records every delivery in the SQLite journal. Timed from submit, once the runtime
             and lanes are up and settled, until the lane has journaled the last delivery as delivered.
channel      Diagnostic: the webhook channel's send() on its own for the same jobs, at the same concurrency,
             without journal or lane: what the channel costs, to tell it apart from the core's bookkeeping.
raw          One aiohttp ClientSession with a shared connector, the same concurrency, POSTing the same body
             bytes with the same headers to the same URLs: the floor for any aiohttp sender.
apprise      One Apprise object holding the N json:// URLs, `await async_notify(...)`. Its fastest honest
             configuration on this machine: async_notify, sync notify(), async_mode on or off and a larger
             shared thread pool all measured within noise of each other (2.0-2.9 s per 1,000 on 2 cores),
             because each notification is CPU-bound in requests (a new session and connection per call); so
             the public default (async_notify, async_mode on) is what runs here.

Endpoints are N distinct paths spread over the ports of receiver processes (tests.channels.webhook.bench_receiver)
that this script starts and stops by PID; each run is checked against the receivers' request counts.
Memory: ru_maxrss (KiB) of this process, which runs the broadcaster, before and after its first run."""

from __future__ import annotations

import argparse
import asyncio
import base64
import gc
import importlib.util
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.models import IncidentHistory, UpdateDraft
from broadcaster.domain.statuspage import INCIDENT_LIMIT, build_site
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import EventKind, LaneEvent
from broadcaster.runtime import open_runtime
from channels.base import ChannelContext, Job
from channels.webhook.channel import USER_AGENT, WebhookChannel
from channels.webhook.payloads import UpdateBodies
from channels.webhook.signing import Signer, message_id, signing_key, standard_headers
from config import Settings, load_settings
from tests.bench.webhook_receivers import Receivers
from tests.support.redis import RedisServer

TITLE = "Elevated API error rates"
MESSAGE = (
    "Some API requests fail with 502 errors since 14:05 UTC. We have identified a faulty load balancer "
    "configuration and are rolling it back. Next update within 30 minutes."
)
RUN_LIMIT = 300.0  # seconds any one run may take before the benchmark gives up
SETTLE = 0.3
"""Seconds of quiet before each timed run, after a full garbage collection: the receivers finish closing
the previous sender's connections and its garbage is collected before the clock starts, not during the
next sender's run (without it, whichever sender ran second in a round was measured 15-25% slower)."""


async def settle() -> None:
    """A full garbage collection, then SETTLE seconds of quiet: what every sender gets just before its clock
    starts (the broadcaster after its runtime and lanes are up, as a running service is when an update
    comes in)."""
    gc.collect()
    await asyncio.sleep(SETTLE)


def secret(index: int) -> str:
    """A distinct 32-byte signing secret per endpoint, as Standard Webhooks recommends."""
    return "whsec_" + base64.b64encode(f"bench-signing-key-{index:08d}-abcdef".encode()[:32]).decode()


@dataclass
class Sample:
    """What the broadcaster run journaled and sent, for the other senders to repeat: the body and headers
    (for the raw loop, byte for byte) and the jobs the lane ran (for the channel on its own)."""

    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    settings: Settings | None = None
    histories: list[IncidentHistory] = field(default_factory=list)
    jobs: list[Job] = field(default_factory=list)


class Snapshot:
    """The journal as the broadcaster run left it, read from memory (the JournalReader the channel needs)."""

    def __init__(self, histories: list[IncidentHistory]) -> None:
        self._histories = histories

    async def site_history(self, *, recent: int | None) -> list[IncidentHistory]:
        return self._histories

    async def suppressed(self) -> frozenset[str]:
        return frozenset()


async def no_progress(_progress: Mapping[str, Any]) -> None:
    return None


def webhook_settings(
    urls: list[str], concurrency: int, workdir: Path, run: int, *, store_url: str | None = None
) -> Settings:
    """Settings for a journal of its own (a SQLite file, or `store_url`) and one signed webhook target per URL,
    as a config file says it."""
    config = workdir / f"bench-{run}.toml"
    targets = "".join(f'[[webhook.targets]]\nurl = "{url}"\nsecret = "{secret(i)}"\n' for i, url in enumerate(urls))
    store_url = store_url or f"sqlite:///{workdir / f'journal-{run}.db'}"
    config.write_text(
        f'[store]\nurl = "{store_url}"\n[mirror]\nenabled = false\n'
        f"[retry.webhook]\nconcurrency = {concurrency}\n[webhook]\nenabled = true\n{targets}"
    )
    return load_settings(config)


def update_draft(title: str = TITLE) -> UpdateDraft:
    return UpdateDraft(
        title=title, status="investigating", message=MESSAGE, impact="major", components={"API": "partial_outage"}
    )


class Outcomes:
    """Counts the lane's final outcomes (an observer); `finished` is set when `expected` are in."""

    def __init__(self, expected: int) -> None:
        self.expected = expected
        self.counts: dict[EventKind, int] = {}
        self.finished = asyncio.Event()

    def reset(self) -> None:
        self.counts.clear()
        self.finished.clear()

    def __call__(self, event: LaneEvent) -> None:
        if event.kind in (EventKind.DELIVERED, EventKind.FAILED, EventKind.EXPIRED):
            self.counts[event.kind] = self.counts.get(event.kind, 0) + 1
            if sum(self.counts.values()) == self.expected:
                self.finished.set()


async def run_broadcaster(
    urls: list[str], concurrency: int, workdir: Path, run: int, sample: Sample, *, store_url: str | None = None
) -> float:
    settings = webhook_settings(urls, concurrency, workdir, run, store_url=store_url)
    runtime = await open_runtime(settings)
    outcomes = Outcomes(len(urls))

    try:
        async with Dispatcher(runtime, channels=["webhook"], observe=outcomes) as dispatcher:
            await settle()
            started = time.perf_counter()
            accepted = await dispatcher.submit(update_draft())
            async with asyncio.timeout(RUN_LIMIT):
                await outcomes.finished.wait()
            elapsed = time.perf_counter() - started
            deliveries = await dispatcher.settle([accepted.update.id], wait=10)
        states = {d.state for d in deliveries}
        if states != {DeliveryState.DELIVERED} or len(deliveries) != len(urls):
            raise SystemExit(f"broadcaster run {run}: not all delivered: {outcomes.counts}")
        # The raw loop sends this update's envelope, built by the channel's own code, with the same headers.
        sample.settings, sample.histories = settings, await runtime.store.site_history(recent=INCIDENT_LIMIT)
        sample.jobs = [
            Job(
                delivery_id=d.id,
                channel="webhook",
                target=d.target,
                attempt=1,
                max_attempts=d.max_attempts,
                expires_at=d.expires_at,
                incident=accepted.incident,
                update=accepted.update,
                history=(accepted.update,),
                thread_parent=None,
                progress={},
                save_progress=no_progress,
                stop_requested=lambda: False,
            )
            for d in deliveries
        ]
        site = build_site(
            sample.histories, page_name=settings.mirror.page_title, public_url="", configured_components=[]
        )
        sample.body = UpdateBodies(site, sample.jobs[0]).body("json", sent_at=time.time())
        msg_id = message_id(deliveries[0].id)
        sample.headers = {
            "User-Agent": USER_AGENT,
            "Content-Type": "application/json",
            **standard_headers(msg_id, int(time.time()), sample.body, Signer(signing_key(secret(0)))),
        }
    finally:
        await runtime.close()
    return elapsed


async def run_channel(concurrency: int, sample: Sample) -> float:
    """The webhook channel on its own: the lane's jobs, sent at the lane's concurrency, no journal, no lane."""
    assert sample.settings is not None
    channel = WebhookChannel.create(ChannelContext(sample.settings, Snapshot(sample.histories)))
    pending = iter(sample.jobs)
    started = time.perf_counter()
    try:

        async def worker() -> None:
            for job in pending:
                await channel.send(job)

        async with asyncio.timeout(RUN_LIMIT):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    finally:
        await channel.aclose()
    return time.perf_counter() - started


async def run_raw(urls: list[str], concurrency: int, sample: Sample) -> float:
    started = time.perf_counter()
    pending = iter(urls)
    failures = 0
    connector = aiohttp.TCPConnector(limit=concurrency, limit_per_host=concurrency)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:

        async def worker() -> None:
            nonlocal failures
            for url in pending:
                async with session.post(url, data=sample.body, headers=sample.headers, allow_redirects=False) as r:
                    await r.read()
                    failures += not 200 <= r.status < 300

        async with asyncio.timeout(RUN_LIMIT):
            await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - started
    if failures:
        raise SystemExit(f"raw loop: {failures} requests failed")
    return elapsed


def has_apprise() -> bool:
    """Apprise is a comparison, not a dependency: it comes with the bench extra (pip install -e '.[bench]')."""
    return importlib.util.find_spec("apprise") is not None


async def run_apprise(urls: list[str]) -> float:
    import apprise

    notifier = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=True))
    for url in urls:
        notifier.add("json://" + url.removeprefix("http://"))
    started = time.perf_counter()
    async with asyncio.timeout(RUN_LIMIT):
        result = await notifier.async_notify(title=TITLE, body=MESSAGE)
    elapsed = time.perf_counter() - started
    if not result:
        raise SystemExit("apprise: not every notification succeeded")
    return elapsed


def maxrss_kib() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


async def bench(args: argparse.Namespace, receivers: Receivers) -> dict[str, Any]:
    urls = [f"http://127.0.0.1:{receivers.ports[i % len(receivers.ports)]}/hook/{i}" for i in range(args.targets)]
    # The broadcaster and the raw loop run back to back, so each round's ratio compares neighbours in time.
    times: dict[str, list[float]] = {"broadcaster": [], "raw": [], "channel": []}
    if has_apprise():
        times["apprise"] = []
    redis_server = RedisServer().start() if args.redis else None
    if redis_server is not None:
        times["broadcaster_redis"] = []
    sample = Sample()
    rss: dict[str, int] = {"before_kib": maxrss_kib()}
    with tempfile.TemporaryDirectory(prefix="bench-webhook-") as tmp:
        async with aiohttp.ClientSession() as control:
            for run in range(args.rounds):
                for mode, samples in times.items():
                    await receivers.reset(control)
                    await settle()
                    if mode == "broadcaster":
                        seconds = await run_broadcaster(urls, args.concurrency, Path(tmp), run, sample)
                    elif mode == "broadcaster_redis" and redis_server is not None:
                        redis_server.flush()
                        seconds = await run_broadcaster(
                            urls, args.concurrency, Path(tmp), run, Sample(), store_url=redis_server.url
                        )
                    elif mode == "channel":
                        seconds = await run_channel(args.concurrency, sample)
                    elif mode == "raw":
                        seconds = await run_raw(urls, args.concurrency, sample)
                    else:
                        seconds = await run_apprise(urls)
                    samples.append(seconds)
                    if mode == "broadcaster" and run == 0:
                        rss["after_broadcaster_kib"] = maxrss_kib()
                    if await receivers.counts(control) != (len(urls), len(urls)):
                        raise SystemExit(f"{mode}: the receivers did not get exactly one request per endpoint")
    if redis_server is not None:
        redis_server.close()
    rates = {mode: args.targets / statistics.median(samples) for mode, samples in times.items()}
    return {"times": times, "rates": rates, "rss": rss}


def report(args: argparse.Namespace, result: dict[str, Any]) -> None:
    rates = result["rates"]
    labels = {
        "broadcaster": "broadcaster, end to end",
        "broadcaster_redis": "broadcaster on Redis",
        "channel": "webhook channel alone",
        "raw": "raw aiohttp loop",
        "apprise": "Apprise json://",
    }
    apprise_rate = rates.get("apprise")
    print(
        f"one update -> {args.targets} endpoints, concurrency {args.concurrency}, "
        f"median of {args.rounds} round(s), {os.cpu_count()} CPUs"
    )
    print(f"{'sender':26} {'median s':>9} {'deliveries/s':>13} {'vs raw':>8} {'vs Apprise':>11}")
    for mode, label in labels.items():
        if mode not in rates:
            print(f"{label:26} not installed (pip install -e '.[bench]')")
            continue
        seconds = statistics.median(result["times"][mode])
        versus = f"{rates[mode] / apprise_rate:10.2f}x" if apprise_rate else f"{'-':>11}"
        print(f"{label:26} {seconds:9.3f} {rates[mode]:13.0f} {rates[mode] / rates['raw']:7.2f}x {versus}")
    per_round = [raw / ours for ours, raw in zip(result["times"]["broadcaster"], result["times"]["raw"], strict=True)]
    print(
        f"broadcaster vs raw, round by round: median {statistics.median(per_round):.2f}x, "
        f"{min(per_round):.2f}-{max(per_round):.2f}x"
    )
    rss = result["rss"]
    print(f"maxrss: {rss['before_kib']} KiB before, {rss['after_broadcaster_kib']} KiB after the first broadcaster run")
    figures = {
        "bench": "webhook",
        "targets": args.targets,
        "concurrency": args.concurrency,
        "rounds": args.rounds,
        "broadcaster_per_s": round(rates["broadcaster"], 1),
        "channel_alone_per_s": round(rates["channel"], 1),
        "raw_aiohttp_per_s": round(rates["raw"], 1),
        "apprise_per_s": round(apprise_rate, 1) if apprise_rate else None,
        "broadcaster_vs_raw": round(rates["broadcaster"] / rates["raw"], 3),
        "redis_per_s": round(rates["broadcaster_redis"], 1) if "broadcaster_redis" in rates else None,
        "redis_vs_sqlite": (
            round(rates["broadcaster_redis"] / rates["broadcaster"], 3) if "broadcaster_redis" in rates else None
        ),
        "broadcaster_vs_apprise": round(rates["broadcaster"] / apprise_rate, 2) if apprise_rate else None,
        "broadcaster_vs_raw_per_round": [round(ratio, 3) for ratio in per_round],
        "maxrss_before_kib": rss["before_kib"],
        "maxrss_after_broadcaster_kib": rss["after_broadcaster_kib"],
        "seconds": {mode: [round(s, 4) for s in samples] for mode, samples in result["times"].items()},
    }
    print(json.dumps(figures))


def drop_environment_settings() -> None:
    """The benchmark's own configuration only: no BROADCASTER_* variable from the calling shell."""
    for name in [name for name in os.environ if name.startswith("BROADCASTER_")]:
        del os.environ[name]


def main() -> None:
    parser = argparse.ArgumentParser(description="One webhook update to many local endpoints, three senders.")
    parser.add_argument("--quick", action="store_true", help="50 endpoints, one round: a smoke run")
    parser.add_argument("--targets", type=int, help="endpoints (default 1000, or 50 with --quick)")
    parser.add_argument("--rounds", type=int, help="rounds; the median is reported (default 3, or 1 with --quick)")
    parser.add_argument("--concurrency", type=int, default=64, help="[retry.webhook] concurrency and the raw loop's")
    parser.add_argument("--receivers", type=int, default=2, help="receiver processes (2 ports each)")
    parser.add_argument(
        "--no-redis",
        dest="redis",
        action="store_false",
        help="skip the broadcaster on the Redis backend (a redis-server this script starts, beside SQLite)",
    )
    args = parser.parse_args()
    args.targets = args.targets or (50 if args.quick else 1000)
    args.rounds = args.rounds or (1 if args.quick else 3)
    drop_environment_settings()
    receivers = Receivers()
    try:
        receivers.start(args.receivers, 2)
        result = asyncio.run(bench(args, receivers))
    finally:
        receivers.stop()
    report(args, result)


if __name__ == "__main__":
    main()
