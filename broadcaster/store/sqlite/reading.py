"""Reading the SQLite journal: incidents, updates, the delivery ledger and lane controls."""

from __future__ import annotations

import json
import sqlite3

from broadcaster.domain.errors import NotFoundError
from broadcaster.domain.models import (
    Incident,
    IncidentHistory,
    Update,
    changes_from_json,
    from_epoch,
    from_epoch_required,
)
from broadcaster.domain.statuspage import IncidentSummary
from broadcaster.domain.uptime import ComponentUpdate
from broadcaster.domain.vocabulary import Impact, Status
from broadcaster.store.base import Attempt, Delivery, KeyedRequest, LaneControl
from broadcaster.store.sqlite.rows import (
    DELIVERY_COLUMNS,
    UPDATE_COLUMNS,
    attempt_from_row,
    control_from_row,
    equal_terms,
    incident_from_column,
    select_deliveries,
    update_from_row,
)
from broadcaster.store.sqlite.schema import NEXT_UPDATE_AT, OPEN_STATES


def incident(conn: sqlite3.Connection, incident_id: str) -> Incident:
    row = conn.execute("SELECT state FROM incidents WHERE id = ?", (incident_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no incident with id {incident_id}", {"incident_id": "not found"})
    return incident_from_column(row["state"])


def incidents(conn: sqlite3.Connection, limit: int, open_only: bool) -> list[Incident]:
    rows = conn.execute(
        "SELECT state FROM incidents WHERE (? = 0 OR is_open = 1) ORDER BY updated_at DESC LIMIT ?",
        (int(open_only), limit),
    ).fetchall()
    return [incident_from_column(row["state"]) for row in rows]


def history(conn: sqlite3.Connection, incident_id: str) -> IncidentHistory:
    return IncidentHistory(incident(conn, incident_id), tuple(updates(conn, incident_id)))


def site_history(conn: sqlite3.Connection, recent: int | None) -> list[IncidentHistory]:
    rows = conn.execute(
        "SELECT state FROM incidents WHERE is_open = 1 OR ? IS NULL OR id IN "
        "(SELECT id FROM incidents ORDER BY updated_at DESC LIMIT ?) ORDER BY created_at, id",
        (recent, -1 if recent is None else recent),
    ).fetchall()
    found = [incident_from_column(row["state"]) for row in rows]
    by_incident: dict[str, list[Update]] = {item.id: [] for item in found}
    for row in conn.execute(
        f"SELECT {UPDATE_COLUMNS} FROM updates WHERE incident_id IN (SELECT value FROM json_each(?)) "
        "ORDER BY incident_id, seq",
        (json.dumps(list(by_incident)),),
    ):
        by_incident[row["incident_id"]].append(update_from_row(row))
    return [IncidentHistory(item, tuple(by_incident[item.id])) for item in found]


def incident_summaries(conn: sqlite3.Connection) -> list[IncidentSummary]:
    """Only the fields the history page shows, taken out of each incident's JSON by SQLite."""
    rows = conn.execute(
        "SELECT id, state ->> '$.name', state ->> '$.status', state ->> '$.impact', state ->> '$.started_at', "
        "state ->> '$.resolved_at', updated_at FROM incidents"
    )
    return [
        IncidentSummary(
            id=incident_id,
            name=name,
            status=Status(status),
            impact=Impact(impact),
            started_at=from_epoch_required(started_at),
            resolved_at=from_epoch(resolved_at),
            updated_at=from_epoch_required(updated_at),
        )
        for incident_id, name, status, impact, started_at, resolved_at, updated_at in rows
    ]


def component_updates(conn: sqlite3.Connection, since: float) -> list[ComponentUpdate]:
    # An incident that counted at `since` is open still or was updated (resolved) after it: the union reads
    # both through their indexes, never the whole table.
    rows = conn.execute(
        "SELECT incident_id, seq, status, components, created_at FROM updates WHERE incident_id IN "
        "(SELECT id FROM incidents WHERE updated_at >= ? UNION SELECT id FROM incidents WHERE is_open = 1)",
        (since,),
    )
    return [
        ComponentUpdate(
            incident_id=incident_id,
            seq=seq,
            status=Status(status),
            created_at=from_epoch_required(created_at),
            components=changes_from_json(json.loads(components)),
        )
        for incident_id, seq, status, components, created_at in rows
    ]


def update(conn: sqlite3.Connection, update_id: str) -> Update:
    row = conn.execute(f"SELECT {UPDATE_COLUMNS} FROM updates WHERE id = ?", (update_id,)).fetchone()
    if row is None:
        raise NotFoundError(f"no update with id {update_id}")
    return update_from_row(row)


def updates(conn: sqlite3.Connection, incident_id: str, *, up_to: int | None = None) -> list[Update]:
    rows = conn.execute(
        f"SELECT {UPDATE_COLUMNS} FROM updates WHERE incident_id = ? AND (? IS NULL OR seq <= ?) ORDER BY seq",
        (incident_id, up_to, up_to),
    ).fetchall()
    return [update_from_row(row) for row in rows]


def deliveries(
    conn: sqlite3.Connection, update_id: str | None, incident_id: str | None, open_only: bool
) -> list[Delivery]:
    only, params = equal_terms(update_id=update_id, incident_id=incident_id)
    # Every open delivery, whatever its update: named, the open index is read (SQLite, knowing nothing of the
    # table's sizes, would rather read every row in seq order than sort the few open ones).
    source = "deliveries INDEXED BY deliveries_open" if open_only and not params else "deliveries"
    still_open = f" AND state IN {OPEN_STATES}" if open_only else ""
    sql = f"SELECT {DELIVERY_COLUMNS} FROM {source} WHERE 1{only}{still_open} ORDER BY seq"
    return select_deliveries(conn, sql, params)


def attempts(conn: sqlite3.Connection, delivery_id: str) -> list[Attempt]:
    rows = conn.execute(
        "SELECT * FROM attempts WHERE delivery_id = ? ORDER BY finished_at, rowid", (delivery_id,)
    ).fetchall()
    logged = [attempt_from_row(row) for row in rows]
    first_try = conn.execute(
        "SELECT finished_at FROM deliveries WHERE id = ? AND state = 'delivered' AND attempts = 1", (delivery_id,)
    ).fetchone()
    if first_try is not None and not any(a.outcome == "delivered" for a in logged):
        # Delivered at its first attempt: finish() logs nothing for it; the delivery row has the facts.
        logged.append(
            Attempt(
                delivery_id=delivery_id,
                number=1,
                started_at=None,
                finished_at=first_try["finished_at"],
                outcome="delivered",
                error="",
            )
        )
    return logged


def controls(conn: sqlite3.Connection) -> list[LaneControl]:
    return [control_from_row(row) for row in conn.execute("SELECT * FROM controls ORDER BY channel, target")]


def suppressed(conn: sqlite3.Connection) -> frozenset[str]:
    return frozenset(row[0] for row in conn.execute("SELECT address FROM suppressions"))


def lease_holders(conn: sqlite3.Connection) -> set[str]:
    rows = conn.execute(
        "SELECT DISTINCT lease_owner FROM deliveries INDEXED BY deliveries_open "
        f"WHERE state IN {OPEN_STATES} AND lease_owner IS NOT NULL"
    ).fetchall()
    return {row[0] for row in rows}


def backlog(conn: sqlite3.Connection) -> dict[str, tuple[int, float]]:
    rows = conn.execute(
        "SELECT channel, COUNT(*), MIN(created_at) FROM deliveries INDEXED BY deliveries_open "
        f"WHERE state IN {OPEN_STATES} GROUP BY channel"
    ).fetchall()
    return {channel: (count, oldest) for channel, count, oldest in rows}


def overdue(conn: sqlite3.Connection, now: float, limit: int) -> list[Incident]:
    rows = conn.execute(
        f"SELECT state FROM incidents WHERE is_open = 1 AND {NEXT_UPDATE_AT} <= ? "
        f"ORDER BY {NEXT_UPDATE_AT}, id LIMIT ?",
        (now, limit),
    ).fetchall()
    return [incident_from_column(row["state"]) for row in rows]


def keyed_requests(conn: sqlite3.Connection) -> list[KeyedRequest]:
    """An update's own key, and the keys beside it (idempotency_keys: a request answered with an update that
    another intake had made)."""
    rows = conn.execute(
        "SELECT idempotency_key AS key, id AS update_id, request_digest FROM updates WHERE idempotency_key IS NOT NULL "
        "UNION ALL SELECT key, update_id, request_digest FROM idempotency_keys"
    ).fetchall()
    return [
        KeyedRequest(key=row["key"], update_id=row["update_id"], request_digest=row["request_digest"]) for row in rows
    ]
