"""Accepting an update into the SQLite journal: the incident, the update and its planned deliveries (and
the leases handed to the accepting process's lanes) in one transaction."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Sequence
from datetime import datetime

from broadcaster.domain.drafts import content_digest
from broadcaster.domain.errors import ConflictError
from broadcaster.domain.models import (
    Incident,
    Update,
    UpdateDraft,
    changes_to_json,
    delivery_ids,
    incident_to_json,
    to_epoch,
)
from broadcaster.domain.transitions import apply_update
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store.base import NO_PROGRESS, Accepted, Claimed, Delivery, Handoff, PlannedDelivery
from broadcaster.store.sqlite.queue import prune_progress
from broadcaster.store.sqlite.reading import incident, updates
from broadcaster.store.sqlite.rows import (
    DELIVERY_COLUMNS,
    UPDATE_COLUMNS,
    incident_from_column,
    select_deliveries,
    thread_parents,
    update_from_row,
)
from broadcaster.store.sqlite.schema import OPEN_STATES


def accept(
    conn: sqlite3.Connection,
    draft: UpdateDraft,
    plan: Sequence[PlannedDelivery],
    now: datetime,
    idempotency_key: str | None,
    *,
    request_digest: str | None = None,
    handoff: Handoff | None = None,
    same_within: float | None = None,
) -> Accepted:
    content = content_digest(draft, {p.channel for p in plan})
    if idempotency_key is not None:
        row = conn.execute(
            "SELECT id, request_digest FROM updates WHERE idempotency_key = ?1 "
            "UNION ALL SELECT update_id, request_digest FROM idempotency_keys WHERE key = ?1 LIMIT 1",
            (idempotency_key,),
        ).fetchone()
        if row is not None:
            if request_digest and row["request_digest"] and row["request_digest"] != request_digest:
                raise ConflictError(
                    f"idempotency key {idempotency_key!r} was used for update {row['id']}, with other content; "
                    "use a new key for a new update",
                    {"idempotency_key": "used before for other content"},
                )
            return _accepted_before(conn, row["id"])
    if same_within is not None and (same := _same_content(conn, draft, content, now.timestamp() - same_within)):
        if idempotency_key is not None:  # so that this key, used again later, still answers this update
            conn.execute(
                "INSERT INTO idempotency_keys (key, update_id, request_digest) VALUES (?, ?, ?)",
                (idempotency_key, same, request_digest),
            )
        return _accepted_before(conn, same)
    current = incident(conn, draft.incident_id) if draft.incident_id is not None else None
    after, update = apply_update(draft, current, now)
    write_incident(conn, after)
    _insert_update(conn, update, after, idempotency_key, digest=request_digest, content=content)
    stamp = now.timestamp()
    superseded: list[Delivery] = []
    for planned in plan:
        if planned.ordering is Ordering.LATEST_ONLY:
            superseded += select_deliveries(
                conn,
                "UPDATE deliveries SET state = 'superseded', finished_at = ?, last_error = ? "
                "WHERE channel = ? AND target = ? AND incident_id = ? AND state = 'pending' "
                f"RETURNING {DELIVERY_COLUMNS}",
                (stamp, f"superseded by update {update.id}", planned.channel, planned.target, after.id),
            )
    if superseded:
        prune_progress(conn, stamp)
    leased = _to_hand_off(conn, plan, handoff)
    # One statement per channel, policy and lease, not per delivery (an update to a thousand webhook targets
    # is one round of work), and the records built from what was written rather than read back. Only the id
    # and the target differ within a group: the rest is bound once, so SQLite parses two values a row.
    planned_rows: list[Delivery] = []
    handed: list[Delivery] = []
    groups: dict[tuple[str, int, float, bool], list[tuple[str, str]]] = {}
    for delivery_id, p, lease in zip(delivery_ids(len(plan)), plan, leased, strict=True):
        expires_at = stamp + p.ttl
        delivery = Delivery(
            id=delivery_id,
            update_id=update.id,
            incident_id=after.id,
            update_seq=update.seq,
            channel=p.channel,
            target=p.target,
            state=DeliveryState.IN_FLIGHT if lease else DeliveryState.PENDING,
            attempts=1 if lease else 0,
            max_attempts=p.max_attempts,
            created_at=stamp,
            not_before=stamp,
            expires_at=expires_at,
            finished_at=None,
            last_error="",
            detail="",
            external_id=None,
        )
        planned_rows.append(delivery)
        if lease:
            handed.append(delivery)
        groups.setdefault((p.channel, p.max_attempts, expires_at, lease), []).append((delivery_id, p.target))
    # Handed-off groups first: a target's second delivery in this plan, left queued, must come after its
    # first in acceptance order (seq), which is what holds it back until the first is done.
    for (channel, max_attempts, expires_at, lease), rows in sorted(groups.items(), key=lambda group: not group[0][3]):
        owner, until = (handoff.owner, handoff.lease_until) if lease and handoff is not None else (None, None)
        state = DeliveryState.IN_FLIGHT if lease else DeliveryState.PENDING
        conn.execute(
            "INSERT INTO deliveries (id, update_id, incident_id, update_seq, channel, target, state, attempts, "
            "max_attempts, created_at, not_before, expires_at, lease_owner, lease_until) "
            "SELECT value ->> 0, ?, ?, ?, ?, value ->> 1, ?, ?, ?, ?, ?, ?, ?, ? FROM json_each(?)",
            (
                *(update.id, after.id, update.seq, channel, state.value, int(lease), max_attempts),
                *(stamp, stamp, expires_at, owner, until, json.dumps(rows)),
            ),
        )
    handed_off = _handed_off(conn, handed, after)
    return Accepted(
        incident=after,
        update=update,
        deliveries=tuple(planned_rows),
        superseded=tuple(superseded),
        handed_off=handed_off,
    )


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
        any_open = conn.execute(
            f"SELECT 1 FROM deliveries WHERE channel = ? AND state IN {OPEN_STATES} LIMIT 1", (channel,)
        )
        if any_open.fetchone():
            waiting[channel] |= {
                row[0]
                for row in conn.execute(
                    "SELECT value FROM json_each(?) WHERE EXISTS (SELECT 1 FROM deliveries e WHERE e.channel = ? "
                    f"AND e.target = value AND e.state IN {OPEN_STATES})",
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
    parents = thread_parents(conn, "id", [d.id for d in leased]) if update_seq > 1 else {}
    return tuple(
        Claimed(delivery=d, incident=after, history=history, thread_parent=parents.get(d.id), progress=NO_PROGRESS)
        for d in leased
    )


def write_incident(conn: sqlite3.Connection, item: Incident) -> None:
    conn.execute(
        "INSERT INTO incidents (id, state, is_open, created_at, updated_at) VALUES (?, ?, ?, ?, ?) "
        "ON CONFLICT (id) DO UPDATE SET state = excluded.state, is_open = excluded.is_open, "
        "updated_at = excluded.updated_at",
        (
            item.id,
            json.dumps(incident_to_json(item)),
            int(item.is_open),
            item.created_at.timestamp(),
            item.updated_at.timestamp(),
        ),
    )


def _same_content(conn: sqlite3.Connection, draft: UpdateDraft, content: str, since: float) -> str | None:
    """The update of the same content accepted since `since`, if any. For an existing incident, only while
    it is still the incident's latest: A, B and then A again is three updates, the last undoing B."""
    row = conn.execute(
        "SELECT u.id FROM updates AS u WHERE u.content_digest = ? AND u.created_at >= ? "
        "AND (? IS NULL OR u.seq = (SELECT MAX(seq) FROM updates WHERE incident_id = u.incident_id)) "
        "ORDER BY u.created_at DESC LIMIT 1",
        (content, since, draft.incident_id),
    ).fetchone()
    return None if row is None else str(row["id"])


def _insert_update(
    conn: sqlite3.Connection, new: Update, after: Incident, key: str | None, *, digest: str | None, content: str
) -> None:
    conn.execute(
        "INSERT INTO updates (id, incident_id, seq, status, impact, message, components, created_at, "
        "next_update_at, author, incident_after, idempotency_key, request_digest, content_digest) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            new.id,
            new.incident_id,
            new.seq,
            new.status.value,
            new.impact.value,
            new.message,
            json.dumps(changes_to_json(new.components)),
            new.created_at.timestamp(),
            to_epoch(new.next_update_at),
            new.author,
            json.dumps(incident_to_json(after)),
            key,
            digest,
            content,
        ),
    )


def _accepted_before(conn: sqlite3.Connection, update_id: str) -> Accepted:
    row = conn.execute(f"SELECT {UPDATE_COLUMNS}, incident_after FROM updates WHERE id = ?", (update_id,)).fetchone()
    planned = select_deliveries(
        conn, f"SELECT {DELIVERY_COLUMNS} FROM deliveries WHERE update_id = ? ORDER BY seq", (update_id,)
    )
    return Accepted(
        incident=incident_from_column(row["incident_after"]),
        update=update_from_row(row),
        deliveries=tuple(planned),
        superseded=(),
        duplicate=True,
    )
