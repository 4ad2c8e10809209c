"""Plain-text tables and the JSON shapes the CLI prints.

Both pass through printable(): cells and JSON strings carry text from outside (target names from the
configuration, SMTP replies, error texts of webhook receivers and X), which must not drive the terminal."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from broadcaster.domain.text import printable
from broadcaster.store import Delivery


def when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


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


def print_json(data: Any) -> None:
    # json.dumps escapes C0 controls itself but, with ensure_ascii=False, leaves C1 controls (U+009B is
    # CSI) raw; printable() writes them as JSON escapes, so the data reads back the same.
    print(printable(json.dumps(data, indent=2, ensure_ascii=False)))
