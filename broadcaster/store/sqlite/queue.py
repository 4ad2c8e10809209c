"""The SQLite journal's delivery queue: leasing due deliveries in order, recording outcomes and progress,
releasing, renewing and recovering leases, expiry, and pruning progress no longer needed."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Mapping, Sequence

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.vocabulary import FINAL_DELIVERY_STATES, DeliveryState, Ordering
from broadcaster.store.base import NO_PROGRESS, Claimed, ClaimResult, Delivery, Outcome
from broadcaster.store.sqlite.reading import updates
from broadcaster.store.sqlite.rows import (
    DELIVERY_COLUMNS,
    delivery_from_row,
    equal_terms,
    incident_from_column,
    log_attempt,
    select_deliveries,
    thread_parents,
)
from broadcaster.store.sqlite.schema import OPEN_STATES

ProgressSave = tuple[str, str, Mapping[str, str]]
"""What save_progress writes: (lease owner, delivery id, entries)."""
UpdateView = tuple[Incident, tuple[Update, ...]]
"""An update's incident as it stood right after it, and the incident's updates up to it."""

LEASES = (
    "SELECT id, lease_owner, lease_until, attempts FROM deliveries "
    f"WHERE state IN {OPEN_STATES} AND state = 'in_flight'"
)
"""Every lease. The IN term lets SQLite read them from the deliveries_open index (open deliveries only)
rather than scan the whole history: leases have no index of their own (see the schema)."""


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
    prune: bool = False,
    updates_only: Collection[str] | None = None,
    known: dict[str, UpdateView] | None = None,
) -> ClaimResult:
    """Record `record`, then lease up to `limit` due deliveries (of `updates_only` and what holds them back,
    when given). `known` holds what claims already read of each update (its incident and history, which
    never change once written), kept by the caller between claims so a lane running one update's fan-out
    reads them once, not once per claim."""
    if record:
        finish(conn, owner, record, now=now, prune=prune)
    # Expiring is a sweep over the channel's whole queue, so it runs when the lane asks (every poll
    # interval), not on every claim; the due query below never leases an expired delivery either way.
    expired = expire(conn, now, channel) if sweep else []
    superseded: list[Delivery] = []
    if ordering is Ordering.LATEST_ONLY:
        superseded = select_deliveries(
            conn,
            "UPDATE deliveries AS d SET state = 'superseded', finished_at = ?, "
            "last_error = 'superseded by a newer update' "
            "WHERE d.channel = ? AND d.state = 'pending' AND EXISTS (SELECT 1 FROM deliveries n "
            "WHERE n.channel = d.channel AND n.target = d.target AND n.incident_id = d.incident_id "
            f"AND n.update_seq > d.update_seq) RETURNING {DELIVERY_COLUMNS}",
            (now, channel),
        )
        if superseded:
            prune_progress(conn, now)
    # The journal's pauses, read here as the Redis claim reads them: a pause holds from the moment it is
    # journaled, whenever the lane reads them again.
    paused = [
        row[0] for row in conn.execute("SELECT target FROM controls WHERE channel = ? AND paused = 1", (channel,))
    ]
    if limit <= 0 or "" in paused:
        return ClaimResult([], expired, superseded)
    skip_targets = [*skip_targets, *paused]
    # An earlier delivery still open for the same target (and, for LATEST_ONLY, the same incident) holds
    # a delivery back: that is what keeps each target's deliveries in order, one at a time. The scan
    # follows the deliveries_due index in acceptance order and stops at the limit; SQLite settles the
    # chosen set before it updates any of them.
    same_key = "" if ordering is Ordering.IN_ORDER else "AND e.incident_id = d.incident_id"
    scope, scope_params = _scope(ordering, updates_only)
    leased = conn.execute(
        "UPDATE deliveries SET state = 'in_flight', attempts = attempts + 1, lease_owner = ?, lease_until = ? "
        "WHERE seq IN (SELECT d.seq FROM deliveries d INDEXED BY deliveries_due "
        "WHERE d.channel = ? AND d.state = 'pending' AND d.not_before <= ? AND d.expires_at > ? "
        "AND d.target NOT IN (SELECT value FROM json_each(?)) AND NOT EXISTS (SELECT 1 FROM deliveries e "
        f"WHERE e.channel = d.channel AND e.target = d.target AND e.state IN {OPEN_STATES} AND e.seq < d.seq "
        f"{same_key}){scope} ORDER BY d.seq LIMIT ?) RETURNING seq, has_progress, {DELIVERY_COLUMNS}",
        (owner, now + lease, channel, now, now, json.dumps(list(skip_targets)), *scope_params, limit),
    ).fetchall()
    leased.sort(key=lambda row: row["seq"])  # RETURNING comes in no particular order; seq is acceptance order
    parents = thread_parents(conn, "seq", [row["seq"] for row in leased if row["update_seq"] > 1])
    known = {} if known is None else known
    return ClaimResult([_claimed(conn, row, parents, known) for row in leased], expired, superseded)


def _scope(ordering: Ordering, updates_only: Collection[str] | None) -> tuple[str, tuple[str, ...]]:
    """The claim's extra term for `updates_only`: those updates' deliveries, and for IN_ORDER channels the
    open deliveries to the same target that come before one of them (they must go first). LATEST_ONLY
    deliveries are held back only by their own incident's, which a newer update supersedes or waits for."""
    if updates_only is None:
        return "", ()
    ids = json.dumps(sorted(updates_only))
    if ordering is Ordering.LATEST_ONLY:
        return " AND d.update_id IN (SELECT value FROM json_each(?))", (ids,)
    return (
        " AND (d.update_id IN (SELECT value FROM json_each(?)) OR EXISTS (SELECT 1 FROM deliveries s "
        f"WHERE s.channel = d.channel AND s.target = d.target AND s.state IN {OPEN_STATES} AND s.seq > d.seq "
        "AND s.update_id IN (SELECT value FROM json_each(?))))",
        (ids, ids),
    )


def finish(
    conn: sqlite3.Connection, owner: str, outcomes: Sequence[Outcome], *, now: float, prune: bool = False
) -> int:
    """Record outcomes of leases still held by `owner` (a lease taken back meanwhile is left alone), and with
    `prune` (some of them ended a delivery that saved progress) prune what is no longer needed.

    A delivery delivered at its first attempt gets no attempt-log row: its own row (attempts 1,
    finished_at, detail) already says everything, and a big fan-out writes half as much;
    `attempts()` shows it all the same."""
    logged = [
        (
            o.attempt,
            o.started_at,
            o.finished_at,
            "retry" if o.state is DeliveryState.PENDING else o.state.value,
            o.error,
            o.delivery_id,
            owner,
        )
        for o in outcomes
        if not (o.state is DeliveryState.DELIVERED and o.attempt == 1)
    ]
    if logged:  # first, while the lease still names its owner
        conn.executemany(
            "INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error) "
            "SELECT id, ?, ?, ?, ?, ? FROM deliveries WHERE id = ? AND state = 'in_flight' AND lease_owner = ?",
            logged,
        )
    recorded = conn.executemany(
        "UPDATE deliveries SET state = ?1, not_before = COALESCE(?2, not_before), last_error = ?3, "
        "detail = CASE WHEN ?4 = '' THEN detail ELSE ?4 END, external_id = COALESCE(?5, external_id), "
        "finished_at = ?6, lease_owner = NULL, lease_until = NULL "
        "WHERE id = ?7 AND state = 'in_flight' AND lease_owner = ?8",
        [
            (
                o.state,  # a StrEnum binds as its text
                o.not_before,
                o.error,
                o.detail,
                o.external_id,
                o.finished_at if o.state in FINAL_DELIVERY_STATES else None,
                o.delivery_id,
                owner,
            )
            for o in outcomes
        ],
    ).rowcount
    if prune:
        prune_progress(conn, now)
    return recorded


def release(
    conn: sqlite3.Connection, owner: str, delivery_ids: Collection[str] | None, *, now: float, interrupted: str = ""
) -> int:
    """Hand `owner`'s leases back to the queue, their attempt not counted; with `interrupted`, log each as
    an interrupted attempt first."""
    only = "" if delivery_ids is None else "AND id IN (SELECT value FROM json_each(?))"
    params: tuple[str, ...] = (owner,) if delivery_ids is None else (owner, json.dumps(list(delivery_ids)))
    where = f"state IN {OPEN_STATES} AND state = 'in_flight' AND lease_owner = ? {only}"  # see LEASES
    if interrupted:
        conn.execute(
            "INSERT INTO attempts (delivery_id, number, started_at, finished_at, outcome, error) "
            f"SELECT id, attempts, NULL, ?, 'interrupted', ? FROM deliveries WHERE {where}",
            (now, interrupted, *params),
        )
    return conn.execute(
        f"UPDATE deliveries SET state = 'pending', attempts = MAX(attempts - 1, 0), lease_owner = NULL, "
        f"lease_until = NULL WHERE {where}",
        params,
    ).rowcount


def renew(conn: sqlite3.Connection, owner: str, delivery_ids: Collection[str], until: float) -> None:
    conn.execute(
        "UPDATE deliveries SET lease_until = ? WHERE state = 'in_flight' AND lease_owner = ? "
        "AND id IN (SELECT value FROM json_each(?))",
        (until, owner, json.dumps(list(delivery_ids))),
    )


def save_progress(conn: sqlite3.Connection, saves: Sequence[ProgressSave]) -> list[bool]:
    """Append each (owner, delivery id, entries) to its delivery's progress, if the owner still holds its
    lease; for each, whether it did."""
    held: list[bool] = []
    for owner, delivery_id, entries in saves:
        leased = conn.execute(
            "UPDATE deliveries SET has_progress = 1 WHERE id = ? AND state = 'in_flight' AND lease_owner = ?",
            (delivery_id, owner),
        ).rowcount
        if leased:
            conn.executemany(
                "INSERT INTO progress (delivery_id, key, note) VALUES (?, ?, ?) "
                "ON CONFLICT (delivery_id, key) DO UPDATE SET note = excluded.note",
                [(delivery_id, key, note) for key, note in entries.items()],
            )
        held.append(bool(leased))
    return held


def prune_progress(conn: sqlite3.Connection, now: float) -> int:
    """Forget the steps that went through of every delivery that can no longer be attempted (delivered,
    superseded, expired, or failed and past its time-to-live, when `retry --failed` can no longer requeue
    it); keep what was refused. Reads only the few deliveries still marked as holding progress."""
    done = (
        "SELECT id FROM deliveries INDEXED BY deliveries_progress WHERE has_progress = 1 AND "
        "(state IN ('delivered', 'superseded', 'expired') OR (state = 'failed' AND expires_at <= ?))"
    )
    pruned = conn.execute(f"DELETE FROM progress WHERE note = '' AND delivery_id IN ({done})", (now,)).rowcount
    conn.execute(f"UPDATE deliveries SET has_progress = 0 WHERE id IN ({done})", (now,))
    return pruned


def recover(conn: sqlite3.Connection, now: float, owner_is_dead: Callable[[str], bool]) -> list[Delivery]:
    """Back to the queue: leases that ran out, and leases of owners known dead. The interrupted attempt
    counts, so a delivery that crashes its worker every time still runs out of attempts."""
    recovered: list[Delivery] = []
    for lease in conn.execute(LEASES).fetchall():
        lapsed = lease["lease_until"] is None or lease["lease_until"] < now
        if not (lapsed or owner_is_dead(lease["lease_owner"] or "")):
            continue
        why = "its lease ran out" if lapsed else "its process died"
        recovered += select_deliveries(
            conn,
            "UPDATE deliveries SET state = 'pending', lease_owner = NULL, lease_until = NULL, not_before = ?, "
            f"last_error = ? WHERE id = ? AND lease_owner IS ? RETURNING {DELIVERY_COLUMNS}",
            (now, f"attempt interrupted: {why}", lease["id"], lease["lease_owner"]),
        )
        log_attempt(conn, lease["id"], lease["attempts"], None, now, "interrupted", why)
    return recovered


def expire(conn: sqlite3.Connection, now: float, channel: str | None) -> list[Delivery]:
    only, given = equal_terms(channel=channel)
    expired = select_deliveries(
        conn,
        "UPDATE deliveries SET state = 'expired', finished_at = ?, "
        "last_error = CASE WHEN last_error = '' THEN 'not delivered within its time-to-live' "
        "ELSE 'not delivered within its time-to-live; last error: ' || last_error END "
        f"WHERE state = 'pending' AND expires_at <= ?{only} RETURNING {DELIVERY_COLUMNS}",
        (now, now, *given),
    )
    prune_progress(conn, now)
    return expired


def requeue_failed(conn: sqlite3.Connection, now: float, update_id: str | None, channel: str | None) -> tuple[int, int]:
    only, params = equal_terms(update_id=update_id, channel=channel)
    where = f"state = 'failed'{only}"
    too_old = conn.execute(f"SELECT COUNT(*) FROM deliveries WHERE {where} AND expires_at <= ?", (*params, now))
    too_old_count = int(too_old.fetchone()[0])
    requeued = conn.execute(
        "UPDATE deliveries SET state = 'pending', attempts = 0, not_before = ?, finished_at = NULL "
        f"WHERE {where} AND expires_at > ?",
        (now, *params, now),
    ).rowcount
    return requeued, too_old_count


def suppress(conn: sqlite3.Connection, entries: Mapping[str, str], source: str, now: float) -> int:
    return conn.executemany(
        "INSERT INTO suppressions (address, reason, source, added_at) VALUES (?, ?, ?, ?) "
        "ON CONFLICT (address) DO NOTHING",
        [(address.lower(), reason, source, now) for address, reason in entries.items()],
    ).rowcount


def set_paused(conn: sqlite3.Connection, *, channel: str, target: str, paused: bool, reason: str, now: float) -> None:
    conn.execute(
        "INSERT INTO controls (channel, target, paused, reason, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (channel, target) DO UPDATE SET paused = excluded.paused, reason = excluded.reason, "
        "updated_at = excluded.updated_at",
        (channel, target, int(paused), reason, now),
    )


def _claimed(
    conn: sqlite3.Connection,
    row: sqlite3.Row,
    parents: Mapping[int, str],
    known: dict[str, UpdateView],
) -> Claimed:
    """A claimed delivery from its row (seq, has_progress and the delivery's columns). Deliveries of one
    update share its incident and history, read and decoded once."""
    delivery = delivery_from_row(row)
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
        thread_parent=parents.get(row["seq"]),
        progress=_progress(conn, delivery.id) if row["has_progress"] else NO_PROGRESS,
    )


def _progress(conn: sqlite3.Connection, delivery_id: str) -> dict[str, str]:
    return dict(conn.execute("SELECT key, note FROM progress WHERE delivery_id = ?", (delivery_id,)).fetchall())
