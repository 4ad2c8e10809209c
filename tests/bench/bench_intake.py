"""Intake latency under a fan-out: `POST /api/v1/updates` at an open-loop 50 requests a second while
10,000-recipient email fan-outs run in the same process, beside the same load with the service otherwise
idle. Targets: p99 under 50 ms, and within 3x of idle, so the lanes never starve intake.

    .venv/bin/python -m tests.bench.bench_intake            # 20 s per phase, 2 interleaved rounds
    .venv/bin/python -m tests.bench.bench_intake --quick    # 5 s per phase, 1,000 recipients, one round

Processes, on this one machine, started and stopped by PID:
  service   `broadcaster serve` as an operator runs it (HTTP, journal, lanes and sweeps in one process),
            with email on to the sink;
  sink      bench_email's aiosmtpd sink (accepts and discards);
  this one  the open-loop client: request n is sent at start + n/rate whether or not earlier ones were
            answered, and its latency runs from that scheduled moment to the end of the answer, so a
            stalled service cannot hide its stall by slowing the client down.

Every load request opens an incident whose update goes to the webhook channel only, which is paused: each
is journaled with its delivery (durable before the 202, as always) and nothing more, so the load measures
intake and nothing but the fan-outs competes with it. (Delivered, fifty new incidents a second would
measure the webhook channel instead: each of its updates carries the page's status, read from every open
incident.) During a busy phase the fan-outs are email updates to every subscriber, posted through the
same API one after another for the whole phase: the next as soon as the ledger shows the last delivered.
A busy phase starts once a fan-out is sending and ends by waiting for the last one, so idle phases are
idle. Each phase begins with a second of warm-up requests that are not counted."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp

from tests.bench.bench_email import SinkProcess, write_config
from tests.support.helpers import cli_env

TOKEN = "bench-intake-token-4d8e21"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
P99_TARGET_MS = 50.0
BUSY_VS_IDLE_TARGET = 3.0


# --- the service


class ServiceProcess:
    """`broadcaster serve --port 0` in a child process; its address read from the banner it prints."""

    def __init__(self, config: Path, workdir: Path) -> None:
        self._log = (workdir / "serve.log").open("w")
        self._process = subprocess.Popen(
            [sys.executable, "-m", "broadcaster", "serve", "--config", str(config), "--port", "0"],
            cwd=workdir,
            env=cli_env(),
            stdout=subprocess.PIPE,
            stderr=self._log,
            text=True,
        )
        assert self._process.stdout is not None
        banner = self._process.stdout.readline()
        if not banner.startswith("broadcaster: serving on "):
            self.stop()
            raise SystemExit(f"serve did not start: {banner!r}; see {workdir / 'serve.log'}")
        self.url = banner.split()[-1]

    def stop(self) -> None:
        os.kill(self._process.pid, signal.SIGTERM)
        try:
            self._process.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
        self._log.close()


def service_config(directory: Path, *, sink_port: int, subscribers: int) -> Path:
    """bench_email's email configuration, with an API token and a webhook target added (the load's
    channel, paused, so never contacted)."""
    config = write_config(directory, port=sink_port, subscribers=subscribers, pool=8)
    with config.open("a") as file:
        file.write(
            f'[auth]\napi_tokens = {{ bench = "{TOKEN}" }}\n'
            '[webhook]\nenabled = true\n[[webhook.targets]]\nurl = "http://127.0.0.1:9/never-contacted"\n'
        )
    return config


# --- the load


@dataclass
class Phase:
    condition: str
    latencies_ms: list[float] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    late_sends_ms: float = 0.0
    """How late the client sent its latest request: its own lag, which would make the load closed-loop."""


async def open_loop(session: aiohttp.ClientSession, base: str, phase: Phase, args: argparse.Namespace) -> None:
    """`rate` requests a second for `warmup` + `seconds`, each sent on schedule; the warm-up's not counted."""
    loop = asyncio.get_running_loop()
    count, warmup = int((args.warmup + args.seconds) * args.rate), int(args.warmup * args.rate)
    start = loop.time() + 0.05
    sent: list[asyncio.Task[None]] = []

    async def one(n: int, scheduled: float) -> None:
        body = {
            "title": f"Load {phase.condition} {n}",
            "status": "investigating",
            "message": "An open-loop load update.",
            "channels": ["webhook"],
        }
        headers = {**AUTH, "Idempotency-Key": f"{phase.condition}-{start}-{n}"}
        try:
            async with session.post(f"{base}/api/v1/updates", json=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            phase.errors.append(repr(exc))
            return
        if status != 202:
            phase.errors.append(f"HTTP {status}")
        elif n >= warmup:
            phase.latencies_ms.append((loop.time() - scheduled) * 1000)

    for n in range(count):
        scheduled = start + n / args.rate
        await asyncio.sleep(max(0.0, scheduled - loop.time()))
        phase.late_sends_ms = max(phase.late_sends_ms, (loop.time() - scheduled) * 1000)
        sent.append(asyncio.create_task(one(n, scheduled)))
    await asyncio.gather(*sent)


# --- the fan-outs


@dataclass
class Fanouts:
    sending: asyncio.Event = field(default_factory=asyncio.Event)
    """Set once the first fan-out's delivery is in flight."""
    done: int = 0
    last_finished_at: float | None = None
    longest_gap_s: float = 0.0
    """The longest time from a fan-out's end (its delivery's finished_at in the ledger) to the next one's
    post: how long the email lane idled between two during a busy phase."""
    details: set[str] = field(default_factory=set)


async def fan_out_once(session: aiohttp.ClientSession, base: str, n: int, fanouts: Fanouts) -> None:
    """One email update to every subscriber, through the API; returns once its ledger shows it finished."""
    body = {
        "title": f"Fan-out {n}",
        "status": "identified",
        "message": "Elevated API errors; a fix is deploying.",
        "components": {"API": "major_outage"},
        "channels": ["email"],
    }
    if fanouts.last_finished_at is not None:
        fanouts.longest_gap_s = max(fanouts.longest_gap_s, time.time() - fanouts.last_finished_at)
    async with session.post(f"{base}/api/v1/updates", json=body, headers=AUTH) as response:
        update_id = (await response.json())["update_id"]
    while True:
        async with session.get(f"{base}/api/v1/updates/{update_id}", headers=AUTH) as response:
            (delivery,) = (await response.json())["deliveries"]
        if delivery["state"] == "in_flight":
            fanouts.sending.set()
        elif delivery["state"] != "pending":
            break
        # Often enough that the next fan-out follows within 50 ms: one small read of the journal each time,
        # which the busy phases alone pay for.
        await asyncio.sleep(0.05)
    fanouts.done += 1
    fanouts.last_finished_at = datetime.fromisoformat(delivery["finished_at"]).timestamp()
    fanouts.details.add(f"{delivery['state']}: {delivery['detail'] or delivery['error']}")


async def fan_out_until(session: aiohttp.ClientSession, base: str, stop: asyncio.Event, fanouts: Fanouts) -> None:
    n = 0
    while not stop.is_set():
        await fan_out_once(session, base, n, fanouts)
        n += 1


# --- the run


async def pause_the_load_channel(session: aiohttp.ClientSession, base: str) -> None:
    """Pause the webhook channel and wait until its lane has seen it (within a second)."""
    async with session.post(f"{base}/api/v1/channels/webhook/pause", json={}, headers=AUTH) as response:
        assert response.status == 200, await response.text()
    while True:
        async with session.get(f"{base}/readyz") as response:
            if (await response.json())["lanes"]["webhook"]["state"] == "paused":
                return
        await asyncio.sleep(0.05)


async def run_phase(base: str, condition: str, args: argparse.Namespace) -> tuple[Phase, Fanouts]:
    phase, fanouts, stop = Phase(condition), Fanouts(), asyncio.Event()
    timeout = aiohttp.ClientTimeout(total=30)
    async with (
        aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=200)) as load,
        aiohttp.ClientSession(timeout=timeout) as driver,
    ):
        fanning = None
        if condition == "busy":
            fanning = asyncio.create_task(fan_out_until(driver, base, stop, fanouts))
            await fanouts.sending.wait()
        await open_loop(load, base, phase, args)
        stop.set()
        if fanning is not None:
            await fanning
    return phase, fanouts


def percentile(values: list[float], p: int) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[p - 1] if len(values) > 1 else values[0]


async def measure(args: argparse.Namespace, base: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as session:
        await pause_the_load_channel(session, base)
    phases: dict[str, list[Phase]] = {"idle": [], "busy": []}
    fanouts: list[Fanouts] = []
    for _ in range(args.rounds):
        for condition in ("idle", "busy"):
            phase, fanned = await run_phase(base, condition, args)
            phases[condition].append(phase)
            if condition == "busy":
                fanouts.append(fanned)
    figures: dict[str, Any] = {
        "rate": args.rate,
        "seconds": args.seconds,
        "rounds": args.rounds,
        "subscribers": args.subscribers,
    }
    for condition, runs in phases.items():
        pooled = [latency for run in runs for latency in run.latencies_ms]
        figures[condition] = {
            "requests": len(pooled),
            "errors": sum(len(run.errors) for run in runs),
            "p50_ms": round(percentile(pooled, 50), 2),
            "p99_ms": round(percentile(pooled, 99), 2),
            "max_ms": round(max(pooled), 2),
            "per_round_p99_ms": [round(percentile(run.latencies_ms, 99), 2) for run in runs],
            "client_late_ms": round(max(run.late_sends_ms for run in runs), 2),
        }
    figures["busy_vs_idle_p99"] = round(figures["busy"]["p99_ms"] / figures["idle"]["p99_ms"], 2)
    figures["fanouts"] = sum(f.done for f in fanouts)
    figures["fanout_longest_gap_ms"] = round(max(f.longest_gap_s for f in fanouts) * 1000, 1)
    figures["fanout_details"] = sorted({detail for f in fanouts for detail in f.details})
    return figures


def report(figures: dict[str, Any], sink_accepted: int) -> None:
    print(
        f"\nPOST /api/v1/updates at {figures['rate']:g} requests/s open loop, {figures['seconds']:g} s per phase, "
        f"{figures['rounds']} round(s) of idle then busy; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'condition':44} {'requests':>8} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8}   p99 per round")
    for condition, label in (
        ("idle", "service otherwise idle"),
        ("busy", f"during {figures['subscribers']:,}-recipient email fan-outs"),
    ):
        row = figures[condition]
        rounds = ", ".join(f"{v:.1f}" for v in row["per_round_p99_ms"])
        print(
            f"{label:44} {row['requests']:8,} {row['p50_ms']:8.1f} {row['p99_ms']:8.1f} {row['max_ms']:8.1f}   {rounds}"
        )
    print(
        f"fan-outs: {figures['fanouts']} finished back to back, at most {figures['fanout_longest_gap_ms']:.0f} ms "
        f"apart; the sink accepted {sink_accepted:,} messages"
    )
    for detail in figures["fanout_details"]:
        print(f"  email: {detail}")
    errors = figures["idle"]["errors"] + figures["busy"]["errors"]
    late = max(figures["idle"]["client_late_ms"], figures["busy"]["client_late_ms"])
    print(f"errors: {errors}; the client sent at most {late:.1f} ms behind its schedule")
    busy = figures["busy"]
    print(
        f"targets: p99 under {P99_TARGET_MS:.0f} ms: {busy['p99_ms']:.1f} ms; within {BUSY_VS_IDLE_TARGET:.0f}x of "
        f"idle: {figures['busy_vs_idle_p99']:.2f}x"
    )
    print(json.dumps({**figures, "sink_accepted": sink_accepted}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="5 s per phase, 1,000 recipients, one round")
    parser.add_argument("--rate", type=float, default=50.0, help="requests a second")
    parser.add_argument("--seconds", type=float, default=20.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of uncounted requests per phase")
    parser.add_argument("--subscribers", type=int, default=10_000, help="recipients of each fan-out")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved idle and busy phases")
    args = parser.parse_args()
    if args.quick:
        args.seconds, args.subscribers, args.rounds = 5.0, 1_000, 1
    sink = SinkProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-intake-") as directory:
            workdir = Path(directory)
            config = service_config(workdir, sink_port=sink.port, subscribers=args.subscribers)
            service = ServiceProcess(config, workdir)
            try:
                figures = asyncio.run(measure(args, service.url))
            finally:
                service.stop()
    finally:
        accepted = sink.stop()
    report(figures, accepted)


if __name__ == "__main__":
    main()
