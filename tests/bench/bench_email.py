"""Email fan-out benchmark: one update to N subscribers through a local aiosmtpd sink in another process.

    .venv/bin/python -m tests.bench.bench_email            # 10,000 subscribers, 8 connections, 10 rounds,
                                                           # then one update to 100,000 (--scale)
    .venv/bin/python -m tests.bench.bench_email --quick    # 200 subscribers: a smoke run of a few seconds

Side by side, in this one run, against the same sink (which accepts and discards):
  broadcaster (lane)   the real thing end to end: Dispatcher.submit() to Dispatcher.settle(), SQLite journal,
                       lane, EmailChannel built from real settings, every acceptance saved to the journal
                       before its connection's next transaction;
  broadcaster (send)   EmailChannel.send(job) called directly, as the lane calls it;
  raw aiosmtplib       the same number of reused connections sending one pre-rendered message in a loop;
  apprise              Apprise's email plugin in its fastest honest configuration: the recipients split
                       across as many mailto:// URLs as we use connections, so Apprise's thread pool runs one
                       SMTP connection per URL (each URL sends one message per recipient over its connection).
                       It builds a full MIME message per recipient under the GIL, so the URL count barely
                       matters: 1, 4, 8 and 16 URLs all measured 290-375 messages/s here. Bcc is no shortcut:
                       Apprise adds the Bcc list to every per-recipient message. service_timeout=0 so that
                       Apprise does not abandon a long batch.
Rates are medians of the rounds, and the ratio to raw is also given round by round (each round runs the
contenders back to back, so a round's ratio compares neighbours in time).

Scale: then one update to N subscribers (--scale) and one to the round size, each end to end in a child
process of its own (`--lane-run`), so its peak memory (ru_maxrss) is its own: time per recipient at both
sizes, and the larger one's peak memory.
The sink is `python -m tests.bench.bench_email --sink`, started and stopped (by PID) by this script."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import json
import os
import resource
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from itertools import count
from pathlib import Path
from typing import Any

import aiosmtplib

SENDER = "status@example.com"


# --- the sink (runs in its own process)


class _Sink:
    def __init__(self) -> None:
        self.accepted = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.accepted += 1
        return "250 2.0.0 Accepted"


async def _serve_sink() -> None:
    from aiosmtpd.smtp import SMTP

    loop = asyncio.get_running_loop()
    sink = _Sink()
    server = await loop.create_server(lambda: SMTP(sink, hostname="sink.test", loop=loop), "127.0.0.1", 0)
    stop = asyncio.Event()
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    print(server.sockets[0].getsockname()[1], flush=True)
    await stop.wait()
    server.close()
    print(sink.accepted, flush=True)


class SinkProcess:
    """The sink in a child process: its port is read from its first line, its count from its last."""

    def __init__(self) -> None:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "tests.bench.bench_email", "--sink"], stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        self.port = int(self._process.stdout.readline())

    def stop(self) -> int:
        """Stop it by its PID; returns how many messages it accepted."""
        os.kill(self._process.pid, signal.SIGTERM)
        try:
            out, _ = self._process.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.communicate()
            return -1
        return int(out.split()[-1])


# --- the contenders


def write_config(directory: Path, *, port: int, subscribers: int, pool: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    people = directory / "subscribers.txt"
    people.write_text("".join(f"subscriber{n:05d}@example.org\n" for n in range(subscribers)))
    config = directory / "broadcaster.toml"
    config.write_text(
        f'[service]\ndata_dir = "{directory / "var"}"\n'
        f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f'from_addr = "Example Status <{SENDER}>"\nsubscribers_file = "{people}"\n'
        f'unsubscribe_url = "https://status.example.com/unsubscribe"\npool_size = {pool}\n'
        '[mirror]\nenabled = false\npublic_url = "https://status.example.com"\n[retry.email]\nmax_attempts = 1\n'
    )
    return config


async def broadcaster_lane(config: Path, titles: Callable[[], str]) -> tuple[float, str]:
    from broadcaster.dispatch import Dispatcher
    from broadcaster.domain.models import UpdateDraft
    from broadcaster.runtime import open_runtime
    from config import load_settings

    runtime = await open_runtime(load_settings(config))
    try:
        async with Dispatcher(runtime, channels=["email"]) as dispatcher:
            draft = UpdateDraft(
                title=titles(),
                status="identified",
                message="Elevated API errors; fix deploying.",
                components={"API": "major_outage"},
                channels=["email"],
            )
            started = time.perf_counter()
            accepted = await dispatcher.submit(draft)
            (delivery,) = await dispatcher.settle([accepted.update.id], wait=600)
            elapsed = time.perf_counter() - started
    finally:
        await runtime.close()
    return elapsed, f"{delivery.state}: {delivery.detail or delivery.last_error}"


async def broadcaster_send(config: Path) -> tuple[float, str]:
    from channels.base import ChannelContext
    from channels.email import EmailChannel
    from config import load_settings
    from tests.channels.email.conftest import NoJournal
    from tests.channels.email.jobs import attempts

    channel = EmailChannel.create(ChannelContext(load_settings(config), NoJournal()))
    try:
        job = attempts("investigating", "identified", incident_id=f"bench{time.time_ns() % 10**7:07d}").next()
        started = time.perf_counter()
        receipt = await channel.send(job)
        elapsed = time.perf_counter() - started
    finally:
        await channel.aclose()
    return elapsed, receipt.detail


async def raw_aiosmtplib(port: int, recipients: list[str], message: bytes, connections: int) -> tuple[float, str]:
    queue = iter(recipients)
    sent = count()

    async def worker() -> None:
        smtp = aiosmtplib.SMTP(hostname="127.0.0.1", port=port, start_tls=False, local_hostname="example.com")
        await smtp.connect()
        for recipient in queue:
            await smtp.sendmail(SENDER, [recipient], message)
            next(sent)
        await smtp.quit()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return time.perf_counter() - started, f"{next(sent):,} sent"


def has_apprise() -> bool:
    """Apprise is a comparison, not a dependency: it comes with the bench extra (pip install -e '.[bench]')."""
    return importlib.util.find_spec("apprise") is not None


def apprise_run(port: int, recipients: list[str], connections: int, html: str) -> tuple[float, str]:
    import apprise

    # service_timeout=0: no per-service deadline, or Apprise would abandon a long batch after 60 s.
    notifier = apprise.Apprise(asset=apprise.AppriseAsset(async_mode=True, service_timeout=0))
    for chunk in (recipients[i::connections] for i in range(connections)):
        notifier.add(f"mailto://127.0.0.1:{port}?mode=insecure&from={SENDER}&to={','.join(chunk)}")
    started = time.perf_counter()
    ok = notifier.notify(
        title="[Major outage] API errors - Identified", body=html, body_format=apprise.NotifyFormat.HTML
    )
    return time.perf_counter() - started, "all sent" if ok else "some failed"


# --- the run


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def measure(args: argparse.Namespace, directory: Path, sink: SinkProcess) -> dict[str, Any]:
    """Every contender once per round, interleaved so that load from elsewhere spreads over all of them."""
    from email import message_from_bytes, policy

    from channels.base import ChannelContext
    from channels.email import EmailChannel
    from config import load_settings
    from tests.channels.email.conftest import NoJournal
    from tests.channels.email.jobs import attempts

    n, pool = args.subscribers, args.connections
    config = write_config(directory, port=sink.port, subscribers=n, pool=pool)
    recipients = [f"subscriber{i:05d}@example.org" for i in range(n)]
    channel = EmailChannel.create(ChannelContext(load_settings(config), NoJournal()))
    message = channel.render(attempts("investigating", "identified").next()).for_recipient(recipients[0])
    await channel.aclose()
    html = message_from_bytes(message, policy=policy.default).get_body(("html",)).get_content()  # type: ignore[union-attr]
    apprise_n = min(n, args.apprise_subscribers)
    titles = (f"API errors {i}" for i in count())
    await broadcaster_send(write_config(directory / "warm", port=sink.port, subscribers=20, pool=pool))

    rates: dict[str, list[float]] = {"lane": [], "send": [], "raw": []}
    if has_apprise():
        rates["apprise"] = []
    details: dict[str, str] = {}
    for _ in range(args.rounds):
        elapsed, details["lane"] = await broadcaster_lane(config, lambda: next(titles))
        rates["lane"].append(n / elapsed)
        elapsed, details["send"] = await broadcaster_send(config)
        rates["send"].append(n / elapsed)
        elapsed, details["raw"] = await raw_aiosmtplib(sink.port, recipients, message, pool)
        rates["raw"].append(n / elapsed)
        if "apprise" in rates:
            elapsed, details["apprise"] = await asyncio.to_thread(
                apprise_run, sink.port, recipients[:apprise_n], pool, html
            )
            rates["apprise"].append(apprise_n / elapsed)
    return {
        "subscribers": n,
        "connections": pool,
        "rounds": args.rounds,
        **{f"{name}_rate": statistics.median(values) for name, values in rates.items()},
        "lane_vs_raw_per_round": [round(lane / raw, 3) for lane, raw in zip(rates["lane"], rates["raw"], strict=True)],
        "apprise_subscribers": apprise_n if "apprise" in rates else 0,
        "all_rates": {name: [round(v) for v in values] for name, values in rates.items()},
        "details": details,
    }


def report(figures: dict[str, Any], scale: dict[str, Any], accepted_by_sink: int, expected: int) -> None:
    raw, apprise_rate = figures["raw_rate"], figures.get("apprise_rate")
    rows = [
        ("broadcaster (lane, end to end)", "lane"),
        ("broadcaster (EmailChannel.send)", "send"),
        ("raw aiosmtplib loop", "raw"),
        (f"apprise ({figures['apprise_subscribers']:,} subscribers)", "apprise"),
    ]
    print(
        f"\n{figures['subscribers']:,} subscribers, {figures['connections']} connections, median of "
        f"{figures['rounds']} interleaved rounds; sink in a separate process; load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'contender':34} {'messages/s':>11} {'vs raw':>8} {'vs apprise':>11}   every round")
    for label, name in rows:
        if name not in figures["all_rates"]:
            print(f"{label:34} not installed (pip install -e '.[bench]')")
            continue
        rate = figures[f"{name}_rate"]
        rounds = ", ".join(f"{v:,}" for v in figures["all_rates"][name])
        versus = f"{rate / apprise_rate:10.1f}x" if apprise_rate else f"{'-':>11}"
        print(f"{label:34} {rate:11,.0f} {rate / raw:8.0%} {versus}   {rounds}")
    per_round = figures["lane_vs_raw_per_round"]
    spread = f"{min(per_round):.0%}-{max(per_round):.0%}"
    print(f"lane vs raw round by round: median {statistics.median(per_round):.0%}, {spread}")
    for name, detail in figures["details"].items():
        print(f"  {name}: {detail}")
    print(f"sink accepted {accepted_by_sink:,} messages (expected {expected:,})")
    lane = figures["lane_rate"]
    summary = {k: round(v, 1) if isinstance(v, float) else v for k, v in figures.items() if k != "details"}
    summary["lane_vs_raw"] = round(lane / raw, 3)
    targets = [f">= 75% of raw: {lane / raw:.0%}"]
    if apprise_rate:
        summary["lane_vs_apprise"] = round(lane / apprise_rate, 2)
        targets.append(f">= 2.5x apprise: {lane / apprise_rate:.1f}x")
    if scale:
        small, large = scale["small"], scale["large"]
        growth = large["seconds_per_recipient"] / small["seconds_per_recipient"]
        print(
            f"scale: {small['subscribers']:,} subscribers {small['seconds_per_recipient'] * 1e6:.0f} us each, peak "
            f"{small['peak_rss_mib']:.0f} MiB; {large['subscribers']:,} subscribers "
            f"{large['seconds_per_recipient'] * 1e6:.0f} us each ({growth:.2f}x), peak {large['peak_rss_mib']:.0f} MiB"
        )
        targets += [
            f"time per recipient at {large['subscribers']:,} within 1.5x: {growth:.2f}x",
            f"< 150 MB: {large['peak_rss_mib'] * 1.048576:.0f} MB",
        ]
        summary |= {"scale": scale, "scale_growth": round(growth, 3)}
    print("targets: " + "; ".join(targets))
    print(json.dumps(summary))


def lane_run(subscribers: int, port: int, connections: int) -> dict[str, Any]:
    """One update to `subscribers`, end to end, in a process of its own: its time and peak memory."""
    process = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.bench.bench_email",
            "--lane-run",
            str(subscribers),
            "--sink-port",
            str(port),
            "--connections",
            str(connections),
        ],
        capture_output=True,
        text=True,
        check=False,
        timeout=3600,
    )
    if process.returncode != 0:
        raise SystemExit(f"lane run of {subscribers:,} failed: {process.stderr[-2000:]}")
    return dict(json.loads(process.stdout.splitlines()[-1]))


async def _lane_run(subscribers: int, port: int, connections: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-email-scale-") as directory:
        config = write_config(Path(directory), port=port, subscribers=subscribers, pool=connections)
        elapsed, detail = await broadcaster_lane(config, lambda: "API errors")
    if not detail.startswith("delivered"):
        raise SystemExit(f"not delivered: {detail}")
    return {
        "subscribers": subscribers,
        "seconds": round(elapsed, 3),
        "seconds_per_recipient": elapsed / subscribers,
        "peak_rss_mib": round(peak_mib(), 1),
        "detail": detail,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="200 subscribers, for a smoke run")
    parser.add_argument("--subscribers", type=int, default=10_000)
    parser.add_argument("--apprise-subscribers", type=int, default=10_000, help="fewer if Apprise is too slow")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=10, help="interleaved rounds; medians are reported")
    parser.add_argument(
        "--scale", type=int, default=100_000, help="subscribers of the one large update (0: no scale runs)"
    )
    parser.add_argument("--sink", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lane-run", type=int, metavar="N", help=argparse.SUPPRESS)
    parser.add_argument("--sink-port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.sink:
        asyncio.run(_serve_sink())
        return
    if args.lane_run:
        print(json.dumps(asyncio.run(_lane_run(args.lane_run, args.sink_port, args.connections))))
        return
    if args.quick:
        args.subscribers, args.apprise_subscribers, args.connections, args.rounds = 200, 200, 4, 1
        args.scale = 2_000
    sink = SinkProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-email-") as directory:
            figures = asyncio.run(measure(args, Path(directory), sink))
        scale = (
            {
                "small": lane_run(args.subscribers, sink.port, args.connections),
                "large": lane_run(args.scale, sink.port, args.connections),
            }
            if args.scale
            else {}
        )
    finally:
        accepted = sink.stop()
    apprise_n = min(args.subscribers, args.apprise_subscribers) if has_apprise() else 0
    expected = (
        20 + args.rounds * (3 * args.subscribers + apprise_n) + (args.subscribers + args.scale if args.scale else 0)
    )
    report(figures, scale, accepted, expected)


if __name__ == "__main__":
    main()
