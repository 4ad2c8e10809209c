"""Journal-held subscribers against a plain list: one update's email fan-out, end to end through the lane.

    .venv/bin/python -m tests.bench.bench_subscribers           # 50,000 subscribers, 3 interleaved rounds
    .venv/bin/python -m tests.bench.bench_subscribers --quick   # 2,000 subscribers, 1 round: a smoke run

The same 50,000 subscribers, each following a random subset of 10 of 20 components (seeded, so every run
draws the same), are given to the email channel two ways: as a plain CSV subscribers file ("list"), and
held in the SQLite journal as self-service subscribers with no file at all ("journal", imported in one
write with save_subscribers, whose time is reported too). Each round posts one update touching one
component (about half of them follow it) through Dispatcher.submit() to settle(), for each way in turn,
against one aiosmtpd sink in another process (tests.bench.bench_email's, which accepts and discards). The
figure of merit is the journal's time over the list's, per round and as the median: the journal adds one
read of every subscriber per fan-out, and the target is at most 1.2x. Both ways have [service] public_url,
so every message carries its recipient's signed manage link, as real ones do."""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
from itertools import count
from pathlib import Path

from tests.bench.bench_email import SENDER, SinkProcess, broadcaster_lane

COMPONENTS = ["API", *(f"Component {n:02d}" for n in range(19))]
"""The update touches API, which a random half of the subscribers follow."""
FOLLOWED = 10


def people(n: int) -> list[tuple[str, list[str]]]:
    draw = random.Random(20261205)
    return [(f"subscriber{i:05d}@example.org", draw.sample(COMPONENTS, FOLLOWED)) for i in range(n)]


def write_config(directory: Path, *, port: int, listed: list[tuple[str, list[str]]] | None) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    lines = ""
    if listed is not None:
        rows = "".join(f"{address},{';'.join(components)}\n" for address, components in listed)
        (directory / "subscribers.csv").write_text("email,components\n" + rows)
        lines = f'subscribers_file = "{directory / "subscribers.csv"}"\n'
    config = directory / "broadcaster.toml"
    config.write_text(
        f'[service]\ndata_dir = "{directory / "var"}"\npublic_url = "https://status-service.example.com"\n'
        f'[email]\nenabled = true\nhost = "127.0.0.1"\nport = {port}\nsecurity = "none"\n'
        f'from_addr = "Example Status <{SENDER}>"\n{lines}pool_size = 8\nmax_subscribers = 1000000\n'
        '[mirror]\nenabled = false\npublic_url = "https://status.example.com"\n[retry.email]\nmax_attempts = 1\n'
    )
    return config


async def import_into_journal(config: Path, listed: list[tuple[str, list[str]]]) -> float:
    from broadcaster.domain.subscriptions import Subscriber
    from broadcaster.runtime import open_runtime
    from config import load_settings

    runtime = await open_runtime(load_settings(config))
    try:
        subscribers = [
            Subscriber(kind="email", address=address, components=tuple(components), since=0.0, source="import")
            for address, components in listed
        ]
        started = time.perf_counter()
        await runtime.store.save_subscribers(subscribers)
        return time.perf_counter() - started
    finally:
        await runtime.close()


async def measure(n: int, rounds: int, directory: Path, sink: SinkProcess) -> None:
    listed = people(n)
    from_list = write_config(directory / "list", port=sink.port, listed=listed)
    from_journal = write_config(directory / "journal", port=sink.port, listed=None)
    imported_in = await import_into_journal(from_journal, listed)
    titles = (f"API errors {i}" for i in count())
    ratios: list[float] = []
    times: dict[str, list[float]] = {"list": [], "journal": []}
    for _ in range(rounds):
        list_time, list_detail = await broadcaster_lane(from_list, lambda: next(titles))
        journal_time, journal_detail = await broadcaster_lane(from_journal, lambda: next(titles))
        times["list"].append(list_time)
        times["journal"].append(journal_time)
        ratios.append(journal_time / list_time)
        print(f"  round: list {list_time:.2f} s ({list_detail}); journal {journal_time:.2f} s ({journal_detail})")
    print(f"{n:,} subscribers, each following {FOLLOWED} of {len(COMPONENTS)} components; {rounds} rounds")
    print(f"import of {n:,} into the journal (one save_subscribers): {imported_in:.2f} s")
    print(f"fan-out from the list:    median {statistics.median(times['list']):.2f} s")
    print(f"fan-out from the journal: median {statistics.median(times['journal']):.2f} s")
    print(f"journal / list time: {', '.join(f'{r:.2f}x' for r in ratios)}; median {statistics.median(ratios):.2f}x")
    figures = {
        "subscribers": n,
        "rounds": rounds,
        "import_s": round(imported_in, 3),
        "list_s": round(statistics.median(times["list"]), 3),
        "journal_s": round(statistics.median(times["journal"]), 3),
        "journal_vs_list": round(statistics.median(ratios), 3),
        "per_round": [round(r, 3) for r in ratios],
    }
    print(json.dumps(figures))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="2,000 subscribers, 1 round")
    parser.add_argument("--subscribers", type=int, default=50_000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    if args.quick:
        args.subscribers, args.rounds = 2_000, 1
    sink = SinkProcess()
    try:
        with tempfile.TemporaryDirectory(prefix="bench-subscribers-") as directory:
            asyncio.run(measure(args.subscribers, args.rounds, Path(directory), sink))
    finally:
        sink.stop()


if __name__ == "__main__":
    main()
