"""What `broadcaster status` says of this host's services that run degraded: each keeps its own replica in
the data directory (store.failover), whose side tables say since when and why."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from broadcaster.cli.output import when
from broadcaster.domain.statuspage import iso
from broadcaster.store import Standing
from broadcaster.store.failover import read_standings


def degraded_replicas(data_dir: Path) -> dict[str, Standing]:
    return {name: standing for name, standing in read_standings(data_dir).items() if standing.degraded}


def degraded_lines(data_dir: Path) -> list[str]:
    """One line per degraded service of this host ([] when none is)."""
    return [
        f"Degraded: the service keeping {data_dir / name} has run on that local replica since "
        f"{when(standing.since)} ({standing.reason}); {standing.accepted} update(s) it accepted meanwhile and "
        f"{standing.waiting} record(s) held for the shared journal go back to it when it answers"
        for name, standing in degraded_replicas(data_dir).items()
    ]


def degraded_json(data_dir: Path) -> dict[str, Any]:
    return {
        name: {
            "since": None if standing.since is None else iso(datetime.fromtimestamp(standing.since, UTC)),
            "reason": standing.reason,
            "accepted_updates": standing.accepted,
            "held_records": standing.waiting,
        }
        for name, standing in degraded_replicas(data_dir).items()
    }
