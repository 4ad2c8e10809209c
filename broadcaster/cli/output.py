"""Plain-text tables and the JSON shapes the CLI prints."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any, TextIO

from broadcaster.store import Delivery


def when(epoch: float | None) -> str:
    if epoch is None:
        return "-"
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def table(rows: Sequence[Sequence[str]], header: Sequence[str], stream: TextIO = sys.stdout) -> None:
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        cells = [str(cell).ljust(width) for cell, width in zip(row, widths, strict=True)]
        print("  ".join(cells).rstrip(), file=stream)


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


def deliveries_table(deliveries: Sequence[Delivery], stream: TextIO = sys.stdout) -> None:
    rows = [
        (d.channel, d.target, d.state.value, f"{d.attempts}/{d.max_attempts}", d.last_error or d.detail)
        for d in deliveries
    ]
    table(rows, ("channel", "target", "state", "attempts", "detail"), stream)


def print_json(data: Any) -> None:
    print(json.dumps(data, indent=2, ensure_ascii=False))
