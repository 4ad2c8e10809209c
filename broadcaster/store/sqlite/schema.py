"""The SQLite journal's schema and row mapping."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final

from broadcaster.domain.models import (
    Incident,
    Update,
    changes_from_json,
    from_epoch,
    from_epoch_required,
    incident_from_json,
)
from broadcaster.domain.vocabulary import DeliveryState, Impact, Status
from broadcaster.store.base import Attempt, Delivery, LaneControl

SCHEMA_VERSION: Final = 4

OPEN_STATES: Final = "('pending', 'in_flight')"
"""The states of an open delivery, as SQL. The deliveries_open index is partial on exactly this term, and
queries name it to read that index (one that says `INDEXED BY deliveries_open` fails without it)."""

SCHEMA: Final = f"""
CREATE TABLE IF NOT EXISTS incidents (
    id          TEXT PRIMARY KEY,
    state       TEXT NOT NULL,             -- JSON of the Incident as it stands now
    is_open     INTEGER NOT NULL,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS incidents_recent ON incidents (updated_at);

CREATE TABLE IF NOT EXISTS updates (
    id              TEXT PRIMARY KEY,
    incident_id     TEXT NOT NULL REFERENCES incidents (id),
    seq             INTEGER NOT NULL,
    status          TEXT NOT NULL,
    impact          TEXT NOT NULL,
    message         TEXT NOT NULL,
    components      TEXT NOT NULL,         -- JSON list of component changes
    created_at      REAL NOT NULL,
    next_update_at  REAL,
    author          TEXT NOT NULL,
    incident_after  TEXT NOT NULL,         -- JSON of the Incident right after this update
    idempotency_key TEXT UNIQUE,
    UNIQUE (incident_id, seq)
);

CREATE TABLE IF NOT EXISTS deliveries (
    seq          INTEGER PRIMARY KEY AUTOINCREMENT,  -- acceptance order, the order lanes deliver in
    id           TEXT NOT NULL UNIQUE,
    update_id    TEXT NOT NULL REFERENCES updates (id),
    incident_id  TEXT NOT NULL,
    update_seq   INTEGER NOT NULL,
    channel      TEXT NOT NULL,
    target       TEXT NOT NULL,
    state        TEXT NOT NULL,
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    created_at   REAL NOT NULL,
    not_before   REAL NOT NULL,
    expires_at   REAL NOT NULL,
    finished_at  REAL,
    lease_owner  TEXT,
    lease_until  REAL,
    last_error   TEXT NOT NULL DEFAULT '',
    detail       TEXT NOT NULL DEFAULT '',
    external_id  TEXT,
    progress     TEXT NOT NULL DEFAULT '{{}}'
);
-- Partial indexes hold only open deliveries: they stay small however long the history grows, and a
-- delivery enters and leaves each once instead of moving on every change of state. Leases have no index
-- of their own: only the periodic recovery looks for them, through deliveries_open, and an index would
-- cost every claim and every outcome a write.
CREATE INDEX IF NOT EXISTS deliveries_due ON deliveries (channel, seq) WHERE state = 'pending';
CREATE INDEX IF NOT EXISTS deliveries_open ON deliveries (channel, target, seq) WHERE state IN {OPEN_STATES};
-- Failed deliveries wait for an operator's `requeue`, which finds them here rather than in the whole history.
CREATE INDEX IF NOT EXISTS deliveries_failed ON deliveries (channel) WHERE state = 'failed';
CREATE INDEX IF NOT EXISTS deliveries_update ON deliveries (update_id);
CREATE INDEX IF NOT EXISTS deliveries_thread ON deliveries (incident_id, channel, target, update_seq);

CREATE TABLE IF NOT EXISTS attempts (
    delivery_id TEXT NOT NULL,
    number      INTEGER NOT NULL,
    started_at  REAL,
    finished_at REAL NOT NULL,
    outcome     TEXT NOT NULL,
    error       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS attempts_delivery ON attempts (delivery_id);

CREATE TABLE IF NOT EXISTS controls (
    channel    TEXT NOT NULL,
    target     TEXT NOT NULL,              -- '' pauses the whole channel
    paused     INTEGER NOT NULL,
    reason     TEXT NOT NULL,
    updated_at REAL NOT NULL,
    PRIMARY KEY (channel, target)
);
"""

# What takes a journal from version N-1 to N. A new journal gets SCHEMA (already the latest) directly.
MIGRATIONS: Final = {
    2: "DROP INDEX IF EXISTS deliveries_queue;\n"
    "DROP INDEX IF EXISTS deliveries_order;\n"
    "DROP INDEX IF EXISTS deliveries_thread;\n"
    "CREATE INDEX deliveries_due ON deliveries (channel, seq) WHERE state = 'pending';\n"
    f"CREATE INDEX deliveries_open ON deliveries (channel, target, seq) WHERE state IN {OPEN_STATES};\n"
    "CREATE INDEX deliveries_leased ON deliveries (lease_until) WHERE state = 'in_flight';\n"
    "CREATE INDEX deliveries_thread ON deliveries (incident_id, channel, target, update_seq);",
    3: "DROP INDEX IF EXISTS deliveries_leased;",
    4: "CREATE INDEX IF NOT EXISTS deliveries_failed ON deliveries (channel) WHERE state = 'failed';",
}

DELIVERY_COLUMNS: Final = (
    "id, update_id, incident_id, update_seq, channel, target, state, attempts, max_attempts, created_at, "
    "not_before, expires_at, finished_at, last_error, detail, external_id"
)
UPDATE_COLUMNS: Final = "id, incident_id, seq, status, impact, message, components, created_at, next_update_at, author"


DELIVERY_FIELDS: Final = tuple(column.strip() for column in DELIVERY_COLUMNS.split(","))


_STATES: Final = {state.value: state for state in DeliveryState}


def delivery_from_values(values: Sequence[Any]) -> Delivery:
    """A delivery from its DELIVERY_FIELDS values, in order (the order of Delivery's fields). Hot: a claim
    builds one per delivery, so this is positional, with a plain dict lookup for the state."""
    v = values
    return Delivery(v[0], v[1], v[2], v[3], v[4], v[5], _STATES[v[6]], v[7], v[8], v[9], v[10], v[11], v[12], v[13],
                    v[14], v[15])  # fmt: skip


def delivery_from_row(row: sqlite3.Row) -> Delivery:
    return Delivery(
        id=row["id"],
        update_id=row["update_id"],
        incident_id=row["incident_id"],
        update_seq=row["update_seq"],
        channel=row["channel"],
        target=row["target"],
        state=DeliveryState(row["state"]),
        attempts=row["attempts"],
        max_attempts=row["max_attempts"],
        created_at=row["created_at"],
        not_before=row["not_before"],
        expires_at=row["expires_at"],
        finished_at=row["finished_at"],
        last_error=row["last_error"],
        detail=row["detail"],
        external_id=row["external_id"],
    )


def update_from_row(row: sqlite3.Row) -> Update:
    return Update(
        id=row["id"],
        incident_id=row["incident_id"],
        seq=row["seq"],
        status=Status(row["status"]),
        impact=Impact(row["impact"]),
        message=row["message"],
        components=changes_from_json(json.loads(row["components"])),
        created_at=from_epoch_required(row["created_at"]),
        next_update_at=from_epoch(row["next_update_at"]),
        author=row["author"],
    )


def incident_from_column(text: str) -> Incident:
    return incident_from_json(json.loads(text))


def attempt_from_row(row: sqlite3.Row) -> Attempt:
    return Attempt(
        delivery_id=row["delivery_id"],
        number=row["number"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        outcome=row["outcome"],
        error=row["error"],
    )


def control_from_row(row: sqlite3.Row) -> LaneControl:
    return LaneControl(
        channel=row["channel"],
        target=row["target"],
        paused=bool(row["paused"]),
        reason=row["reason"],
        updated_at=row["updated_at"],
    )
