"""Reading the Redis journal: incidents, updates, the delivery ledger, suppressions and lane controls."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Final

from broadcaster.domain.errors import NotFoundError
from broadcaster.domain.models import Incident, IncidentHistory, Update, from_epoch, from_epoch_required
from broadcaster.domain.statuspage import IncidentSummary
from broadcaster.domain.uptime import ComponentUpdate
from broadcaster.domain.vocabulary import Impact, Status
from broadcaster.store.base import Attempt, Delivery, KeyedRequest, LaneControl
from broadcaster.store.redis.connection import Link, optional_text, text
from broadcaster.store.redis.records import (
    attempt_from_entry,
    control_from_entry,
    decoded,
    delivery_from_row,
    incident_from_text,
    number,
    update_from_json,
)

KEYS_PER_READ: Final = 1000
"""Idempotency keys read in one pipeline: each reply stays small, whatever the journal's age."""


async def incident(link: Link, incident_id: str) -> Incident:
    stored = optional_text(await link.client.get(link.prefix + "incident:" + incident_id))
    if stored is None:
        raise NotFoundError(f"no incident with id {incident_id}", {"incident_id": "not found"})
    return incident_from_text(stored)


async def incidents(link: Link, *, limit: int, open_only: bool) -> list[Incident]:
    found = await link.run(link.scripts.incidents, "open" if open_only else "recent", limit, "")
    return [incident_from_text(stored) for stored in found]


async def overdue(link: Link, *, now: datetime, limit: int) -> list[Incident]:
    """Through the index of open incidents by their promised next update (equal times by id, as SQLite)."""
    found = await link.run(link.scripts.incidents, "due", limit, number(now.timestamp()))
    return [incident_from_text(stored) for stored in found]


async def history(link: Link, incident_id: str) -> IncidentHistory:
    found = await _histories(link, "one", incident_id)
    if not found:
        raise NotFoundError(f"no incident with id {incident_id}", {"incident_id": "not found"})
    return found[0]


async def site_history(link: Link, *, recent: int | None) -> list[IncidentHistory]:
    """Open incidents and the `recent` most recently updated (every incident when None), oldest first."""
    found = await _histories(link, "site", "" if recent is None else str(max(recent, 0)))
    return sorted(found, key=lambda item: (item.incident.created_at, item.incident.id))


async def _histories(link: Link, mode: str, argument: str) -> list[IncidentHistory]:
    found = await link.run(link.scripts.histories, mode, argument)
    return [
        IncidentHistory(incident_from_text(stored), tuple(update_from_json(u) for u in updates))
        for stored, updates in found
    ]


async def incident_summaries(link: Link) -> list[IncidentSummary]:
    found = await link.run(link.scripts.incidents, "recent", -1, "")
    return [_summary(json.loads(stored)) for stored in found]


def _summary(data: dict[str, Any]) -> IncidentSummary:
    return IncidentSummary(
        id=data["id"],
        name=data["name"],
        status=Status(data["status"]),
        impact=Impact(data["impact"]),
        started_at=from_epoch_required(data["started_at"]),
        resolved_at=from_epoch(data["resolved_at"]),
        updated_at=from_epoch_required(data["updated_at"]),
    )


async def component_updates(link: Link, *, since: datetime) -> list[ComponentUpdate]:
    """Through the indexes of open incidents and of incidents by their latest update, then each one's
    update list and updates: three round trips, whatever the journal's age."""
    P = link.prefix
    async with link.client.pipeline(transaction=False) as pipe:
        pipe.zrange(P + "incidents:open", 0, -1)
        pipe.zrangebyscore(P + "incidents:recent", number(since.timestamp()), "+inf")
        open_ids, recent_ids = await pipe.execute()
    incident_ids = list(dict.fromkeys(text(i) for i in [*open_ids, *recent_ids]))
    async with link.client.pipeline(transaction=False) as pipe:
        for incident_id in incident_ids:
            pipe.lrange(P + "incident:" + incident_id + ":updates", 0, -1)
        keys = [P + "update:" + text(u) for ids in await pipe.execute() for u in ids]
    stored = [
        value for start in range(0, len(keys), 1000) for value in await link.client.mget(keys[start : start + 1000])
    ]
    updates = [update_from_json(text(value)) for value in stored if value is not None]
    return [ComponentUpdate(u.incident_id, u.seq, u.status, u.created_at, u.components) for u in updates]


async def update(link: Link, update_id: str) -> Update:
    stored = optional_text(await link.client.get(link.prefix + "update:" + update_id))
    if stored is None:
        raise NotFoundError(f"no update with id {update_id}")
    return update_from_json(stored)


async def deliveries(link: Link, *, update_id: str | None, incident_id: str | None, open_only: bool) -> list[Delivery]:
    """In acceptance order. With no update or incident named, every open delivery (open_only) or every one
    ever journaled (a read of the whole history, as it is for SQLite)."""
    reply = await link.run(link.scripts.deliveries, update_id or "", incident_id or "", "1" if open_only else "0")
    rows = decoded(reply)
    return [delivery_from_row(row) for row in sorted(rows, key=lambda row: int(row[-1]))]


async def attempts(link: Link, delivery_id: str) -> list[Attempt]:
    """Every attempt logged, in the order they ended; a delivery delivered at its first attempt logs none,
    and its own fields make the row here."""
    logged_entries, state, attempts_made, finished_at = await link.run(link.scripts.attempts, delivery_id)
    logged = sorted((attempt_from_entry(delivery_id, entry) for entry in logged_entries), key=lambda a: a.finished_at)
    first_try = state == "delivered" and attempts_made == "1" and finished_at is not None
    if first_try and not any(a.outcome == "delivered" for a in logged):
        logged.append(
            Attempt(
                delivery_id=delivery_id,
                number=1,
                started_at=None,
                finished_at=float(finished_at),
                outcome="delivered",
                error="",
            )
        )
    return logged


async def backlog(link: Link) -> dict[str, tuple[int, float]]:
    rows = await link.run(link.scripts.backlog)
    return {channel: (int(count), float(oldest)) for channel, count, oldest in rows}


async def suppressed(link: Link) -> frozenset[str]:
    return frozenset(text(address) for address in await link.client.hkeys(link.prefix + "suppressions"))


async def controls(link: Link) -> list[LaneControl]:
    entries = await link.client.hgetall(link.prefix + "controls")
    found = [control_from_entry(text(field), text(entry)) for field, entry in entries.items()]
    return sorted(found, key=lambda control: (control.channel, control.target))


async def keyed_requests(link: Link) -> list[KeyedRequest]:
    """Through the set of every key, then each key's hash, in pipelines of KEYS_PER_READ."""
    P = link.prefix
    keys = sorted(text(key) for key in await link.client.smembers(P + "idempotency-keys"))
    found: list[KeyedRequest] = []
    for start in range(0, len(keys), KEYS_PER_READ):
        batch = keys[start : start + KEYS_PER_READ]
        async with link.client.pipeline(transaction=False) as pipe:
            for key in batch:
                pipe.hmget(P + "idempotency:" + key, "update_id", "request_digest")
            replies = await pipe.execute()
        found += [
            KeyedRequest(key=key, update_id=text(update_id), request_digest=optional_text(digest) or None)
            for key, (update_id, digest) in zip(batch, replies, strict=True)
            if update_id is not None
        ]
    return found
