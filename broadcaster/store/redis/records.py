"""The Redis journal's values as records, and records as the values its scripts take."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from broadcaster.domain.models import (
    Incident,
    Update,
    changes_from_json,
    changes_to_json,
    from_epoch,
    from_epoch_required,
    incident_from_json,
    incident_to_json,
    to_epoch,
)
from broadcaster.domain.vocabulary import DeliveryState, Impact, Status
from broadcaster.store.base import Attempt, Delivery, LaneControl, Outcome

UpdateView = tuple[Incident, tuple[Update, ...]]
"""An update's incident as it stood right after it, and the incident's updates up to it."""
Row = Sequence[Any]
"""A delivery as the scripts return it (decoded from JSON): its id, then lua_shared's ROW fields (None for
one not set), and sometimes more after them."""

_STATES = {state.value: state for state in DeliveryState}
"""DeliveryState by its text: a dict lookup, where DeliveryState(text) is a call through the enum machinery
(a claim builds a thousand records for a fan-out)."""


def decoded(reply: str) -> list[Any]:
    """A script's reply encoded as JSON (one string parses far faster than thousands of RESP values).
    Lua's cjson writes an empty table as {}: that is an empty list here."""
    found = json.loads(reply)
    return found if isinstance(found, list) else []


def listed(value: list[Any] | dict[str, Any]) -> list[Any]:
    """A list inside a decoded reply, which cjson writes as {} when empty."""
    return value if isinstance(value, list) else []


def number(value: float) -> str:
    """A time (or any float) as the scripts take it: the shortest decimal that reads back as the same float.
    Lua would print it with 14 significant digits, rounding an epoch time to a tenth of a millisecond."""
    return repr(float(value))


def delivery_from_row(row: Row) -> Delivery:
    """A row's record. A field every delivery has that is missing (None) fails the conversion: the journal
    is damaged, which no caller could handle."""
    (
        delivery_id,
        update_id,
        incident_id,
        update_seq,
        channel,
        target,
        state,
        attempts,
        max_attempts,
        created_at,
        not_before,
        expires_at,
        finished_at,
        last_error,
        detail,
        external_id,
    ) = row[:16]
    return Delivery(
        id=delivery_id,
        update_id=update_id,
        incident_id=incident_id,
        update_seq=int(update_seq),
        channel=channel,
        target=target,
        state=_STATES[state],
        attempts=int(attempts),
        max_attempts=int(max_attempts),
        created_at=float(created_at),
        not_before=float(not_before),
        expires_at=float(expires_at),
        finished_at=None if finished_at is None else float(finished_at),
        last_error=last_error or "",
        detail=detail or "",
        external_id=external_id,
    )


def update_to_json(
    update: Update, after: Incident, *, key: str | None, request_digest: str | None, content: str
) -> str:
    """An update as stored: its fields, the incident as it stood right after it (what a claim of one of its
    deliveries hands out), and what identifies its request (idempotency key, request and content digests)."""
    return json.dumps(
        {
            "id": update.id,
            "incident_id": update.incident_id,
            "seq": update.seq,
            "status": update.status.value,
            "impact": update.impact.value,
            "message": update.message,
            "components": changes_to_json(update.components),
            "created_at": update.created_at.timestamp(),
            "next_update_at": to_epoch(update.next_update_at),
            "author": update.author,
            "incident_after": incident_to_json(after),
            "idempotency_key": key,
            "request_digest": request_digest,
            "content_digest": content,
        }
    )


def update_from_fields(data: dict[str, Any]) -> Update:
    return Update(
        id=data["id"],
        incident_id=data["incident_id"],
        seq=data["seq"],
        status=Status(data["status"]),
        impact=Impact(data["impact"]),
        message=data["message"],
        components=changes_from_json(data["components"]),
        created_at=from_epoch_required(data["created_at"]),
        next_update_at=from_epoch(data["next_update_at"]),
        author=data["author"],
    )


def update_from_json(stored: str) -> Update:
    return update_from_fields(json.loads(stored))


def incident_from_text(stored: str) -> Incident:
    return incident_from_json(json.loads(stored))


def readback(incident: Incident) -> Incident:
    """The incident as the journal gives it back (its times in UTC), not as the caller built it."""
    return incident_from_json(incident_to_json(incident))


def update_view(stored: Sequence[str]) -> UpdateView:
    """An update's incident (as it stood right after the update) and history, from the stored updates of
    its incident up to it, oldest first."""
    fields = [json.loads(update) for update in stored]
    return incident_from_json(fields[-1]["incident_after"]), tuple(update_from_fields(f) for f in fields)


def outcome_entry(outcome: Outcome) -> list[str | None]:
    """An outcome as lua_shared's `record` takes it: times as exact decimals (repr, as number() writes them;
    inlined, since a fan-out records a thousand), '' for no retry time."""
    not_before = outcome.not_before
    return [
        outcome.delivery_id,
        outcome.state,  # a StrEnum: written as its text
        str(outcome.attempt),
        repr(outcome.started_at),
        repr(outcome.finished_at),
        "" if not_before is None else repr(not_before),
        outcome.error,
        outcome.detail,
        outcome.external_id,
    ]


def attempt_from_entry(delivery_id: str, entry: str) -> Attempt:
    """One logged attempt: [number, started_at ('' when it never started here), finished_at, outcome, error]."""
    number_text, started_at, finished_at, outcome, error = json.loads(entry)
    return Attempt(
        delivery_id=delivery_id,
        number=int(number_text),
        started_at=float(started_at) if started_at else None,
        finished_at=float(finished_at),
        outcome=outcome,
        error=error,
    )


def suppression_entry(*, reason: str, source: str, now: float) -> str:
    return json.dumps({"reason": reason, "source": source, "added_at": now})


def control_entry(*, paused: bool, reason: str, now: float) -> str:
    return json.dumps({"paused": paused, "reason": reason, "updated_at": now})


def control_from_entry(field: str, entry: str) -> LaneControl:
    channel, _, target = field.partition("\t")
    data = json.loads(entry)
    return LaneControl(
        channel=channel, target=target, paused=data["paused"], reason=data["reason"], updated_at=data["updated_at"]
    )
