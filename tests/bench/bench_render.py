"""The status site's render after one update, in a long journal beside a short one: the mirror's reads are
bounded by what the pages show, so 1,000 incidents should cost little more than 10.

    .venv/bin/python -m tests.bench.bench_render            # 1,000 incidents beside 10, 25 updates each
    .venv/bin/python -m tests.bench.bench_render --quick    # 100 beside 10, 5 updates: a smoke run

Each journal (SQLite, as a default install has) gets its incidents one a day going back from today, each
with three updates (a component goes to a partial or major outage, is identified, and is resolved an hour
later with the component back to operational), so the last 90 days carry component history in both and
the long journal's older incidents lie beyond the uptime window. An open incident then gets `--updates`
updates; after each, the mirror renders what it would for `send` (MirrorChannel.update_files: the reads,
the uptime replay, the pages) and writes it into a directory already holding the whole site (the files
unchanged are compared, not written). The figure is the median of those, and the ratio long / short."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from broadcaster.domain.models import UpdateDraft
from broadcaster.store.sqlite import SqliteStore
from channels.mirror import MirrorChannel
from channels.mirror.files import write_tree
from config.mirror import MirrorSettings

COMPONENTS = ["API", "Dashboard", "Billing", "Search", "Webhooks"]
MESSAGE = "We are looking into elevated error rates and will post again within the hour. " * 3


async def fill(store: SqliteStore, incidents: int) -> str:
    """`incidents` resolved incidents, one a day back from yesterday; returns an open incident's id."""
    now = datetime.now(UTC)
    for number in range(incidents):
        began = now - timedelta(days=number + 1, hours=number % 12)
        component = COMPONENTS[number % len(COMPONENTS)]
        state = "major_outage" if number % 3 == 0 else "partial_outage"
        steps: list[tuple[int, dict[str, object]]] = [
            (0, {"title": f"Incident {number}", "status": "investigating", "components": {component: state}}),
            (20, {"status": "identified"}),
            (60, {"status": "resolved", "components": {component: "operational"}}),
        ]
        incident_id = None
        for minutes, fields in steps:
            draft = UpdateDraft.model_validate({"message": MESSAGE, "incident_id": incident_id, **fields})
            accepted = await store.accept(draft, [], now=began + timedelta(minutes=minutes))
            incident_id = accepted.incident.id
    opened = await store.accept(
        UpdateDraft(
            title="Checkout errors", status="investigating", message=MESSAGE, components={"API": "partial_outage"}
        ),
        [],
        now=now,
    )
    return opened.incident.id


async def render_after_updates(incidents: int, updates: int) -> dict[str, float]:
    """Median and minimum milliseconds of the mirror's render after one update, with `incidents` in the journal."""
    with tempfile.TemporaryDirectory(prefix="bench-render-") as workdir:
        store = SqliteStore(Path(workdir) / "journal.db", url="sqlite:///journal.db")
        await store.open()
        site = Path(workdir) / "public"
        settings = MirrorSettings(enabled=True, directories=[site], components=COMPONENTS)
        mirror = MirrorChannel(settings, public_url="", journal=store)
        try:
            open_id = await fill(store, incidents)
            await mirror.render_all()
            samples = []
            for number in range(updates):
                draft = UpdateDraft(incident_id=open_id, status="identified", message=f"Update {number}. {MESSAGE}")
                await store.accept(draft, [], now=datetime.now(UTC))
                started = time.perf_counter()
                write_tree(site, await mirror.update_files(open_id))
                samples.append(time.perf_counter() - started)
        finally:
            await mirror.aclose()
            await store.close()
    return {"median_ms": round(statistics.median(samples) * 1000, 2), "min_ms": round(min(samples) * 1000, 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="100 incidents beside 10, 5 updates: a smoke run")
    parser.add_argument("--incidents", type=int, help="incidents in the long journal (default 1,000)")
    parser.add_argument("--updates", type=int, help="updates to take the median of (default 25)")
    args = parser.parse_args()
    long = args.incidents or (100 if args.quick else 1000)
    updates = args.updates or (5 if args.quick else 25)
    short_figures = asyncio.run(render_after_updates(10, updates))
    long_figures = asyncio.run(render_after_updates(long, updates))
    figures = {
        "machine": f"{platform.machine()} {platform.python_version()}",
        "updates": updates,
        "short_incidents": 10,
        "long_incidents": long,
        "short_median_ms": short_figures["median_ms"],
        "long_median_ms": long_figures["median_ms"],
        "short_min_ms": short_figures["min_ms"],
        "long_min_ms": long_figures["min_ms"],
        "ratio": round(long_figures["median_ms"] / short_figures["median_ms"], 2),
    }
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
