"""The SQLite journal's operations, as plain functions on a connection inside a transaction.

broadcaster.store.sqlite runs each of them on its journal thread; keeping the SQL here, free of
threads and asyncio, keeps both halves short and lets each be read on its own."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import datetime
from typing import Any, Literal

from broadcaster.domain.errors import NotFoundError
from broadcaster.domain.models import (
    Incident,
    IncidentHistory,
    Update,
    UpdateDraft,
    changes_to_json,
    delivery_ids,
    incident_to_json,
    to_epoch,
)
from broadcaster.domain.transitions import apply_update
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store.base import (
    NO_PROGRESS,
    Accepted,
    Attempt,
    Claimed,
    ClaimResult,
    Delivery,
    Handoff,
    LaneControl,
    Outcome,
    PlannedDelivery,
)
from broadcaster.store.sqlite.schema import (
    DELIVERY_COLUMNS,
    DELIVERY_FIELDS,
    UPDATE_COLUMNS,
    attempt_from_row,
    control_from_row,
    delivery_from_row,
    delivery_from_values,
    incident_from_column,
    update_from_row,
)
from broadcaster.store.sqlite.schema import OPEN_STATES as _OPEN

UpdateView = tuple[Incident, tuple[Update, ...]]
"""An update's incident as it stood right after it, and the incident's updates up to it."""

_UPDATE_SEQ = DELIVERY_FIELDS.index("update_seq")
# Looked up once per outcome: the enum's own `.value` and `is_final` are properties, five times slower.
_STATE_TEXT = {state: state.value for state in DeliveryState}
_FINAL_STATES = frozenset(state for state in DeliveryState if state.is_final)
LEASES = f"SELECT id, lease_owner, lease_until, attempts FROM deliveries WHERE state IN {_OPEN} AND state = 'in_flight'"
"""Every lease. The IN term lets SQLite read them from the deliveries_open index (open deliveries only)
rather than scan the whole history: leases have no index of their own (see the schema)."""
# The post or message a later update of the same incident threads under: the external id of the last
# update delivered before this one, on the same channel and target.
_THREAD_PARENT = (
    "SELECT p.external_id FROM deliveries p WHERE p.incident_id = d.incident_id AND p.channel = d.channel "
    "AND p.target = d.target AND p.state = 'delivered' AND p.update_seq < d.update_seq "
    "AND p.external_id IS NOT NULL ORDER BY p.update_seq DESC LIMIT 1"
)


# --- writing updates


def accept(
    conn: sqlite3.Connection,
    draft: UpdateDraft,
    plan: Sequence[PlannedDelivery],
    now: datetime,
    idempotency_key: str | None,
    *,
    handoff: Handoff | None = None,
) -> Accepted:
    if idempotency_key is not None:
        row = conn.execute("SELECT id FROM updates WHERE idempotency_key = ?", (idempotency_key,)).fetchone()
        if row is not None:
            return _accepted_before(conn, row["id"])
    current = incident(conn, draft.incident_id) if draft.incident_id is not None else None
    after, update = apply_update(draft, current, now)
    _write_incident(conn, after)
    _insert_update(conn, update, after, idempotency_key)
    stamp = now.timestamp()
    superseded: list[Delivery] = []
    for planned in plan:
        if planned.ordering is Ordering.LATEST_ONLY:
            superseded += _deliveries(
                conn,
                "UPDATE deliveries SET state = 'superseded', finished_at = ?, last_error = ? "
                "WHERE channel = ? AND target = ? AND incident_id = ? AND state = 'pending' "
                f"RETURNING {DELIVERY_COLUMNS}",
                (stamp, f"superseded by update {update.id}", planned.channel, planned.target, after.id),
            )
    leased = _to_hand_off(conn, plan, handoff)
    # One statement per channel, policy and lease, not per delivery (an update to a thousand webhook targets
    # is one round of work), and the records built from what was written rather than read back. Only the id
    # and the target differ within a group: the rest is bound once, so SQLite parses two values a row, and
    # no float is formatted as JSON a thousand times. Records are built positionally (in Delivery's field
    # order): by keyword, building them took more time than the rest of this loop.
    planned_rows: list[Delivery] = []
    handed: list[Delivery] = []
    groups: dict[tuple[str, int, float, bool], list[tuple[str, str]]] = {}
    in_flight, pending = DeliveryState.IN_FLIGHT, DeliveryState.PENDING
    for delivery_id, p, lease in zip(delivery_ids(len(plan)), plan, leased, strict=True):
        expires_at = stamp + p.ttl
        delivery = Delivery(delivery_id, update.id, after.id, update.seq, p.channel, p.target,
                            in_flight if lease else pending, 1 if lease else 0, p.max_attempts, stamp, stamp,
                            expires_at, None, "", "", None)  # fmt: skip
        planned_rows.append(delivery)
        if lease:
            handed.append(delivery)
        groups.setdefault((p.channel, p.max_attempts, expires_at, lease), []).append((delivery_id, p.target))
    # Handed-off groups first: a target's second delivery in this plan, left queued, must come after its
    # first in acceptance order (seq), which is what holds it back until the first is done.
    for (channel, max_attempts, expires_at, lease), rows in sorted(groups.items(), key=lambda group: not group[0][3]):
        owner, until = (handoff.owner, handoff.lease_until) if lease and handoff is not None else (None, None)
        conn.execute(
            "INSERT INTO deliveries (id, update_id, incident_id, update_seq, channel, target, state, attempts, "
            "max_attempts, created_at, not_before, expires_at, lease_owner, lease_until) "
            "SELECT value ->> 0, ?, ?, ?, ?, value ->> 1, ?, ?, ?, ?, ?, ?, ?, ? FROM json_each(?)",
            (update.id, after.id, update.seq, channel, "in_flight" if lease else "pending", int(lease), max_attempts,
             stamp, stamp, expires_at, owner, until, json.dumps(rows)),
        )  # fmt: skip
    handed_off = _handed_off(conn, handed, after)
    return Accepted(after, update, tuple(planned_rows), tuple(superseded), handed_off=handed_off)


def _to_hand_off(conn: sqlite3.Connection, plan: Sequence[PlannedDelivery], handoff: Handoff | None) -> list[bool]:
    """Which planned deliveries the handoff leases: in plan order, as many as each lane has room for, except
    those to a skipped or paused target or a paused channel (the journal's pauses, read in this transaction:
    a lane learns of a pause only at its next poll), and those to a target with a delivery still open
    (theirs is not the turn yet)."""
    if handoff is None or not any(handoff.room.values()):
        return [False] * len(plan)
    room = dict(handoff.room)
    paused = conn.execute("SELECT channel, target FROM controls WHERE paused = 1").fetchall()
    room.update({channel: 0 for channel, target in paused if target == ""})
    waiting: dict[str, set[str]] = {}
    for channel in [channel for channel, free in room.items() if free > 0]:
        waiting[channel] = set(handoff.skip_targets.get(channel, ())) | {t for c, t in paused if c == channel}
        # Usually the channel's queue is empty and one probe says so; otherwise one probe per target.
        any_open = conn.execute(f"SELECT 1 FROM deliveries WHERE channel = ? AND state IN {_OPEN} LIMIT 1", (channel,))
        if any_open.fetchone():
            waiting[channel] |= {
                row[0]
                for row in conn.execute(
                    "SELECT value FROM json_each(?) WHERE EXISTS (SELECT 1 FROM deliveries e WHERE e.channel = ? "
                    f"AND e.target = value AND e.state IN {_OPEN})",
                    (json.dumps([p.target for p in plan if p.channel == channel]), channel),
                )
            }
    leased: list[bool] = []
    for p in plan:
        free = room.get(p.channel, 0) if p.ordering is Ordering.IN_ORDER else 0
        if free <= 0:  # no room (left) in its lane, or it must stay open to supersession: not handed off
            leased.append(False)
            continue
        blocked = waiting[p.channel]
        lease = p.target not in blocked
        if lease:
            room[p.channel] = free - 1
        blocked.add(p.target)  # a second delivery to it in this plan waits for the first
        leased.append(lease)
    return leased


def _handed_off(conn: sqlite3.Connection, leased: Sequence[Delivery], after: Incident) -> tuple[Claimed, ...]:
    if not leased:
        return ()
    update_seq = leased[0].update_seq
    # The incident as a claim would read it back from the journal (times in UTC), not the draft's own.
    after = incident_from_column(json.dumps(incident_to_json(after)))
    history = tuple(updates(conn, after.id, up_to=update_seq))
    parents = _thread_parents(conn, "id", [d.id for d in leased]) if update_seq > 1 else {}
    return tuple(Claimed(d, after, history, parents.get(d.id), NO_PROGRESS) for d in leased)


# --- the delivery queue


def claim(
    conn: sqlite3.Connection,
    channel: str,
    *,
    ordering: Ordering,
    owner: str,
    limit: int,
    now: float,
    lease: float,
    skip_targets: Collection[str],
    sweep: bool,
    record: Sequence[Outcome] = (),
    known: dict[str, UpdateView] | None = None,
) -> ClaimResult:
    """Record `record`, then lease up to `limit` due deliveries. `known` holds what claims already read of
    each update (its incident and history, which never change once written), kept by the caller between
    claims so a lane running one update's fan-out reads them once, not once per claim."""
    if record:
        finish(conn, owner, record)
    # Expiring is a sweep over the channel's whole queue, so it runs when the lane asks (every poll
    # interval), not on every claim; the due query below never leases an expired delivery either way.
    expired = expire(conn, now, channel) if sweep else []
    superseded: list[Delivery] = []
    if ordering is Ordering.LATEST_ONLY:
        superseded = _deliveries(
            conn,
            "UPDATE deliveries AS d SET state = 'superseded', finished_at = ?, "
            "last_error = 'superseded by a newer update' "
            "WHERE d.channel = ? AND d.state = 'pending' AND EXISTS (SELECT 1 FROM deliveries n "
            "WHERE n.channel = d.channel AND n.target = d.target AND n.incident_id = d.incident_id "
            f"AND n.update_seq > d.update_seq) RETURNING {DELIVERY_COLUMNS}",
            (now, channel),
        )
    if limit <= 0:
        return ClaimResult([], expired, superseded)
    # An earlier delivery still open for the same target (and, for LATEST_ONLY, the same incident) holds
    # a delivery back: that is what keeps each target's deliveries in order, one at a time. The scan
    # follows the deliveries_due index in acceptance order and stops at the limit; SQLite settles the
    # chosen set before it updates any of them.
    same_key = "" if ordering is Ordering.IN_ORDER else "AND e.incident_id = d.incident_id"
    cursor = conn.cursor()
    cursor.row_factory = None  # plain tuples, read by position
    leased = cursor.execute(
        "UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, lease_owner = ?, lease_until = ? "
        "WHERE seq IN (SELECT d.seq FROM deliveries d INDEXED BY deliveries_due "
        "WHERE d.channel = ? AND d.state = 'pending' AND d.not_before <= ? AND d.expires_at > ? "
        "AND d.target NOT IN (SELECT value FROM json_each(?)) AND NOT EXISTS (SELECT 1 FROM deliveries e "
        f"WHERE e.channel = d.channel AND e.target = d.target AND e.state IN {_OPEN} AND e.seq < d.seq {same_key}) "
        f"ORDER BY d.seq LIMIT ?) RETURNING seq, progress, {DELIVERY_COLUMNS}",
        (owner, now + lease, channel, now, now, json.dumps(list(skip_targets)), limit),
    ).fetchall()
    leased.sort()  # RETURNING comes in no particular order; seq is acceptance order
    parents = _thread_parents(conn, "seq", [row[0] for row in leased if row[2 + _UPDATE_SEQ] > 1])
    known = {} if known is None else known
    return ClaimResult([_claimed(conn, row, parents, known) for row in leased], expired, superseded)


def finish(conn: sqlite3.Connection, owner: str, outcomes: Sequence[Outcome]) -> int:
    """Record outcomes of leases still held by `owner` (a lease taken back meanwhile is left alone).

    A delivery delivered at its first attempt gets no attempt-log row: its own row (attempts 1,
    finished_at, detail) already says everything, and skipping it halves the cost of a big fan-out;
    `attempts()` shows it all the same."""
    logged = [
        (o.attempt, o.started_at, o.finished_at, "retry" if o.state is DeliveryState.PENDING else o.state.value,
         o.error, o.delivery_id, owner)
        for o in outcomes
        if not (o.state is DeliveryState.DELIVERED and o.attempt == 1)
    ]  # fmt: skip
    if logged:  # first, while the lease still names its owner
        conn.executemany(
            "INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error) "
            "SELECT id, ?, ?, ?, ?, ? FROM deliveries WHERE id = ? AND state = 'in_flight' AND lease_owner = ?",
            logged,
        )
    # Plain successes, nearly every outcome of a fan-out, take a statement that binds only what they set:
    # 5 M instructions less per 1,000 than the general one (tests/bench/bench_journal).
    plain: list[Outcome] = []
    others: list[Outcome] = []
    for o in outcomes:
        (plain if o.state is DeliveryState.DELIVERED and not o.error and o.not_before is None else others).append(o)
    recorded = 0
    if plain:
        recorded += conn.executemany(
            "UPDATE deliveries SET state = 'delivered', last_error = '', detail = CASE WHEN ?1 = '' THEN detail "
            "ELSE ?1 END, external_id = COALESCE(?2, external_id), finished_at = ?3, lease_owner = NULL, "
            "lease_until = NULL WHERE id = ?4 AND state = 'in_flight' AND lease_owner = ?5",
            [(o.detail, o.external_id, o.finished_at, o.delivery_id, owner) for o in plain],
        ).rowcount
    if others:
        recorded += conn.executemany(
            "UPDATE deliveries SET state = ?1, not_before = COALESCE(?2, not_before), last_error = ?3, "
            "detail = CASE WHEN ?4 = '' THEN detail ELSE ?4 END, external_id = COALESCE(?5, external_id), "
            "finished_at = ?6, lease_owner = NULL, lease_until = NULL "
            "WHERE id = ?7 AND state = 'in_flight' AND lease_owner = ?8",
            [(_STATE_TEXT[o.state], o.not_before, o.error, o.detail, o.external_id,
              o.finished_at if o.state in _FINAL_STATES else None, o.delivery_id, owner)
             for o in others],
        ).rowcount  # fmt: skip
    return recorded


def release(conn: sqlite3.Connection, owner: str, delivery_ids: Collection[str] | None) -> int:
    only = "" if delivery_ids is None else "AND id IN (SELECT value FROM json_each(?))"
    params: tuple[Any, ...] = (owner,) if delivery_ids is None else (owner, json.dumps(list(delivery_ids)))
    return conn.execute(
        "UPDATE deliveries SET state = 'pending', attempts = MAX(attempts - 1, 0), lease_owner = NULL, "
        f"lease_until = NULL WHERE state IN {_OPEN} AND state = 'in_flight' AND lease_owner = ? {only}",  # see LEASES
        params,
    ).rowcount


def renew(conn: sqlite3.Connection, owner: str, delivery_ids: Collection[str], until: float) -> None:
    conn.execute(
        "UPDATE deliveries SET lease_until = ? WHERE state = 'in_flight' AND lease_owner = ? "
        "AND id IN (SELECT value FROM json_each(?))",
        (until, owner, json.dumps(list(delivery_ids))),
    )


def checkpoint(conn: sqlite3.Connection, owner: str, delivery_id: str, progress: Mapping[str, Any]) -> None:
    conn.execute(
        "UPDATE deliveries SET progress = ? WHERE id = ? AND state = 'in_flight' AND lease_owner = ?",
        (json.dumps(progress), delivery_id, owner),
    )


def recover(conn: sqlite3.Connection, now: float, owner_is_dead: Callable[[str], bool]) -> list[Delivery]:
    """Back to the queue: leases that ran out, and leases of owners known dead. The interrupted attempt
    counts, so a delivery that crashes its worker every time still runs out of attempts."""
    recovered: list[Delivery] = []
    for lease in conn.execute(LEASES).fetchall():
        lapsed = lease["lease_until"] is None or lease["lease_until"] < now
        if not (lapsed or owner_is_dead(lease["lease_owner"] or "")):
            continue
        why = "its lease ran out" if lapsed else "its process died"
        recovered += _deliveries(
            conn,
            "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_until = NULL, not_before = ?, "
            f"last_error = ? WHERE id = ? AND lease_owner IS ? RETURNING {DELIVERY_COLUMNS}",
            (now, f"attempt interrupted: {why}", lease["id"], lease["lease_owner"]),
        )
        _log_attempt(conn, lease["id"], lease["attempts"], None, now, "interrupted", why)
    return recovered


def expire(conn: sqlite3.Connection, now: float, channel: str | None) -> list[Delivery]:
    only, given = _equal(channel=channel)
    return _deliveries(
        conn,
        "UPDATE deliveries SET state = 'expired', finished_at = ?, "
        "last_error = CASE WHEN last_error = '' THEN 'not delivered within its time-to-live' "
        "ELSE 'not delivered within its time-to-live; last error: ' || last_error END "
        f"WHERE state = 'pending' AND expires_at <= ?{only} RETURNING {DELIVERY_COLUMNS}",
        (now, now, *given),
    )


def requeue_failed(conn: sqlite3.Connection, now: float, update_id: str | None, channel: str | None) -> tuple[int, int]:
    only, params = _equal(update_id=update_id, channel=channel)
    where = f"state = 'failed'{only}"
    too_old = conn.execute(f"SELECT COUNT(*) FROM deliveries WHERE {where} AND expires_at <= ?", (*params, now))
    too_old_count = int(too_old.fetchone()[0])
    requeued = conn.execute(
        "UPDATE deliveries SET state = 'pending', attempts = 0, not_before = ?, finished_at = NULL "
        f"WHERE {where} AND expires_at > ?",
        (now, *params, now),
    ).rowcount
    return requeued, too_old_count


def set_paused(conn: sqlite3.Connection, *, channel: str, target: str, paused: bool, reason: str, now: float) -> None:
    conn.execute(
        "INSERT INTO controls (channel, target, paused, reason, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (channel, target) DO UPDATE SET paused = excluded.paused, reason = excluded.reason, "
        "updated_at = excluded.updated_at",
        (channel, target, int(paused), reason, now),
    )


# --- reading


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
    only, params = _equal(update_id=update_id, incident_id=incident_id)
    # Every open delivery, whatever its update: named, the open index is read (SQLite, knowing nothing of the
    # table's sizes, would rather read every row in seq order than sort the few open ones).
    source = "deliveries INDEXED BY deliveries_open" if open_only and not params else "deliveries"
    still_open = f" AND state IN {_OPEN}" if open_only else ""
    return _deliveries(conn, f"SELECT {DELIVERY_COLUMNS} FROM {source} WHERE 1{only}{still_open} ORDER BY seq", params)


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
        logged.append(Attempt(delivery_id, 1, None, first_try["finished_at"], "delivered", ""))
    return logged


def controls(conn: sqlite3.Connection) -> list[LaneControl]:
    return [control_from_row(row) for row in conn.execute("SELECT * FROM controls ORDER BY channel, target")]


# --- helpers


def _equal(**columns: str | None) -> tuple[str, list[str]]:
    """The `AND column = ?` terms and their values for the filters given (not None). Written out, never as
    `(? IS NULL OR column = ?)`: SQLite plans a statement before it sees its values, so that form can use
    no index and reads every delivery ever journaled. Column names come from code, never from input."""
    given = {column: value for column, value in columns.items() if value is not None}
    return "".join(f" AND {column} = ?" for column in given), list(given.values())


def _deliveries(conn: sqlite3.Connection, sql: str, params: Sequence[Any]) -> list[Delivery]:
    return [delivery_from_row(row) for row in conn.execute(sql, params).fetchall()]


def _write_incident(conn: sqlite3.Connection, item: Incident) -> None:
    conn.execute(
        "INSERT INTO incidents (id, state, is_open, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, is_open = excluded.is_open, "
        "updated_at = excluded.updated_at",
        (item.id, json.dumps(incident_to_json(item)), int(item.is_open), item.created_at.timestamp(),
         item.updated_at.timestamp()),
    )  # fmt: skip


def _insert_update(conn: sqlite3.Connection, new: Update, after: Incident, key: str | None) -> None:
    conn.execute(
        "INSERT INTO updates (id, incident_id, seq, status, impact, message, components, created_at, "
        "next_update_at, author, incident_after, idempotency_key) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (new.id, new.incident_id, new.seq, new.status.value, new.impact.value, new.message,
         json.dumps(changes_to_json(new.components)), new.created_at.timestamp(), to_epoch(new.next_update_at),
         new.author, json.dumps(incident_to_json(after)), key),
    )  # fmt: skip


def _accepted_before(conn: sqlite3.Connection, update_id: str) -> Accepted:
    row = conn.execute(f"SELECT {UPDATE_COLUMNS}, incident_after FROM updates WHERE id = ?", (update_id,)).fetchone()
    planned = _deliveries(
        conn, f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE update_id = ? ORDER BY seq", (update_id,)
    )
    return Accepted(
        incident_from_column(row["incident_after"]), update_from_row(row), tuple(planned), (), duplicate=True
    )


def _thread_parents(
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


def _claimed(
    conn: sqlite3.Connection,
    row: Sequence[Any],
    parents: Mapping[int, str],
    known: dict[str, UpdateView],
) -> Claimed:
    """A claimed delivery from a (seq, progress, *DELIVERY_COLUMNS) row. Deliveries of one update share
    its incident and history, read and decoded once."""
    seq, progress, *fields = row
    delivery = delivery_from_values(fields)
    view = known.get(delivery.update_id)
    if view is None:
        after = conn.execute("SELECT incident_after FROM updates WHERE id = ?", (delivery.update_id,)).fetchone()
        history = tuple(updates(conn, delivery.incident_id, up_to=delivery.update_seq))
        view = known[delivery.update_id] = (incident_from_column(after["incident_after"]), history)
    incident_after, history = view
    return Claimed(
        delivery=delivery,
        incident=incident_after,
        history=history,
        thread_parent=parents.get(seq),
        progress=NO_PROGRESS if progress == "{}" else json.loads(progress),
    )


def _log_attempt(  # noqa: PLR0917 - one parameter per column of the attempts table
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
