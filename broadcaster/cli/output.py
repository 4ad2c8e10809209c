"""Plain-text tables and the JSON shapes the CLI prints.

Both pass through printable(): cells and JSON strings carry text from outside (target names from the
configuration, SMTP replies, error texts of webhook receivers and X), which must not drive the terminal."""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, Final, TextIO

from broadcaster.domain.text import printable
from broadcaster.domain.transitions import utc_text
from broadcaster.store import Delivery

FULL_TABLE_UP_TO: Final = 20
"""Deliveries listed one row each; more are summed up per channel (`broadcaster status UPDATE` lists all)."""


def when(moment: float | datetime | None) -> str:
    """The one way the CLI's text shows a time: UTC to the second, marked Z, as 2026-12-05 03:10:00Z (the
    JSON output keeps ISO 8601 with milliseconds, as Statuspage writes times)."""
    if moment is None:
        return "-"
    if not isinstance(moment, datetime):
        moment = datetime.fromtimestamp(moment, UTC)
    return utc_text(moment)


def say(text: str = "") -> None:
    """Print one line (or several) on standard output, with any terminal escape in it made visible."""
    print(printable(text))


def table(rows: Sequence[Sequence[str]], header: Sequence[str], stream: TextIO | None = None) -> None:
    shown = [[printable(str(cell)) for cell in row] for row in [header, *rows]]
    widths = [max(len(row[i]) for row in shown) for i in range(len(header))]
    for row in shown:
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip(), file=stream or sys.stdout)


def delivery_json(delivery: Delivery) -> dict[str, Any]:
    return {
        "id": delivery.id,
        "channel": delivery.channel,
        "target": delivery.target,
        "state": delivery.state.value,
        "attempts": delivery.attempts,
        "max_attempts": delivery.max_attempts,
        "not_before": delivery.not_before,
        "expires_at": delivery.expires_at,
        "finished_at": delivery.finished_at,
        "error": delivery.last_error,
        "detail": delivery.detail,
        "external_id": delivery.external_id,
    }


def deliveries_table(deliveries: Sequence[Delivery], stream: TextIO | None = None) -> None:
    rows = [
        (d.channel, d.target, d.state.value, f"{d.attempts}/{d.max_attempts}", d.last_error or d.detail)
        for d in deliveries
    ]
    table(rows, ("channel", "target", "state", "attempts", "detail"), stream)


def deliveries_report(deliveries: Sequence[Delivery], update_id: str | None, stream: TextIO | None = None) -> None:
    """The table at the end of send and retry: a row per delivery, or past FULL_TABLE_UP_TO of them a row per
    channel (its targets by state, and the most frequent error), so 5,000 targets are not 5,000 lines."""
    if len(deliveries) <= FULL_TABLE_UP_TO:
        deliveries_table(deliveries, stream)
        return
    rows = []
    for channel in dict.fromkeys(d.channel for d in deliveries):
        mine = [d for d in deliveries if d.channel == channel]
        states = Counter(d.state.value for d in mine)
        errors = Counter(d.last_error for d in mine if d.last_error)
        common = errors.most_common(1)
        detail = f"{common[0][1]} x {common[0][0]}" if common else ""
        rows.append((channel, str(len(mine)), ", ".join(f"{n} {state}" for state, n in states.items()), detail))
    table(rows, ("channel", "targets", "states", "most frequent error"), stream)
    print(f"`broadcaster status {update_id or 'UPDATE_ID'}` lists every target's delivery.", file=stream or sys.stdout)


def print_json(data: Any) -> None:
    # json.dumps escapes C0 controls itself but, with ensure_ascii=False, leaves C1 controls (U+009B is
    # CSI) raw; printable() writes them as JSON escapes, so the data reads back the same.
    print(printable(json.dumps(data, indent=2, ensure_ascii=False)))
