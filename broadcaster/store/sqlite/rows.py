"""Rows of the SQLite journal as records, and the small query helpers every operation shares."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from typing import Any, Final, Literal

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

DELIVERY_COLUMNS: Final = (
    "id, update_id, incident_id, update_seq, channel, target, state, attempts, max_attempts, created_at, "
    "not_before, expires_at, finished_at, last_error, detail, external_id"
)
UPDATE_COLUMNS: Final = "id, incident_id, seq, status, impact, message, components, created_at, next_update_at, author"


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


# The post or message a later update of the same incident threads under: the external id of the last
# update delivered before this one, on the same channel and target.
_THREAD_PARENT = (
    "SELECT p.external_id FROM deliveries p WHERE p.incident_id = d.incident_id AND p.channel = d.channel "
    "AND p.target = d.target AND p.state = 'delivered' AND p.update_seq < d.update_seq "
    "AND p.external_id IS NOT NULL ORDER BY p.update_seq DESC LIMIT 1"
)


def equal_terms(**columns: str | None) -> tuple[str, list[str]]:
    """The `AND column = ?` terms and their values for the filters given (not None). Written out, never as
    `(? IS NULL OR column = ?)`: SQLite plans a statement before it sees its values, so that form can use
    no index and reads every delivery ever journaled. Column names come from code, never from input."""
    given = {column: value for column, value in columns.items() if value is not None}
    return "".join(f" AND {column} = ?" for column in given), list(given.values())


def select_deliveries(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Delivery]:
    return [delivery_from_row(row) for row in conn.execute(sql, params).fetchall()]


def thread_parents(
    conn: sqlite3.Connection, key: Literal["seq", "id"], deliveries: Sequence[int | str]
) -> dict[Any, str]:
    """The thread parent of each of these deliveries (given by seq or by id) that has one, by the same key,
    in one indexed query. Only deliveries of a later update of an incident can have one, so a new incident's
    fan-out skips this."""
    if not deliveries:
        return {}
    (found,) = conn.execute(
        f"SELECT json_group_object(d.{key}, ({_THREAD_PARENT})) FROM deliveries d "
        f"WHERE d.{key} IN (SELECT value FROM json_each(?))",
        (json.dumps(deliveries),),
    ).fetchone()
    convert = int if key == "seq" else str
    return {convert(k): parent for k, parent in json.loads(found).items() if parent is not None}


def log_attempt(  # noqa: PLR0917 - one parameter per column of the attempts table
    conn: sqlite3.Connection,
    delivery_id: str,
    number: int,
    started_at: float | None,
    finished_at: float,
    outcome: str,
    error: str,
) -> None:
    conn.execute(
        "INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error) VALUES (?, ?, ?, ?, ?, ?)",
        (delivery_id, number, started_at, finished_at, outcome, error),
    )
