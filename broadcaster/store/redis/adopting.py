"""Adopting into the Redis journal an update that a fallback journal accepted while Redis was out of reach
(store.failover): the update keeps its ids, lands on the incident as transitions.adopt_update says, and
what its deliveries went through is recorded in the same script that commits it (lua_adopt.ADOPT)."""

from __future__ import annotations

import asyncio
import json
import logging
import random
from typing import Final

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import incident_to_json
from broadcaster.domain.transitions import adopt_update
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store.base import DeliveryCopy, PlannedDelivery, UpdateCopy
from broadcaster.store.redis.accepting import ATTEMPTS, RETRY_PAUSE, commit_facts, planned_json
from broadcaster.store.redis.connection import Link, optional_text
from broadcaster.store.redis.records import incident_from_text, number, update_to_json

log = logging.getLogger("broadcaster.failover")

ADOPTED_CONTENT: Final = "adopted"
"""The content digest an adopted update is filed under: it was sent already, so no later request is ever
answered with it as "the same update"."""


async def adopt(link: Link, copy: UpdateCopy, *, owner: str, now: float) -> bool:
    update = copy.update
    if await link.client.exists(link.prefix + "update:" + update.id):
        return False  # adopted before (an answer lost on the way back): nothing to do, nor any key to check
    key = await _free_key(link, copy)
    for _ in range(ATTEMPTS):
        stored = optional_text(await link.client.get(link.prefix + "incident:" + update.incident_id))
        current = None if stored is None else incident_from_text(stored)
        after, adopted = adopt_update(update, copy.incident, current)
        stamp = update.created_at.timestamp()
        identity = {"key": key, "request_digest": copy.request_digest or "", "content": ADOPTED_CONTENT}
        expected = current.update_count if current else 0
        facts = commit_facts(after, adopted, stamp=stamp, expected=expected, identity=identity, same_since="")
        plan = [_planned(entry, stamp) for entry in copy.deliveries]
        done = [_done(entry) for entry in copy.deliveries if _was_touched(entry)]
        stored_update = update_to_json(
            adopted, after, key=key or None, request_digest=copy.request_digest, content=ADOPTED_CONTENT
        )
        reply = await link.run(
            link.scripts.adopt,
            json.dumps(facts | {"adopted": True}),
            json.dumps(incident_to_json(after)),
            stored_update,
            json.dumps(planned_json([entry.delivery.id for entry in copy.deliveries], plan, stamp)),
            json.dumps(done),
            owner,
            number(now),
        )
        if reply != "retry":
            return bool(reply == "adopted")
        await asyncio.sleep(random.uniform(0, RETRY_PAUSE))
    raise StoreError(
        f"incident {update.incident_id} kept changing under {ATTEMPTS} attempts to adopt update {update.id}"
    )


def _planned(entry: DeliveryCopy, stamp: float) -> PlannedDelivery:
    d = entry.delivery
    return PlannedDelivery(
        channel=d.channel,
        target=d.target,
        ordering=entry.ordering,
        max_attempts=d.max_attempts,
        ttl=d.expires_at - stamp,
    )


async def _free_key(link: Link, copy: UpdateCopy) -> str:
    """The update's idempotency key, so that the same request sent again answers it; "" when the shared
    journal answers another update with that key (the request reached both journals: both were sent)."""
    if not copy.idempotency_key:
        return ""
    taken = optional_text(await link.client.hget(link.prefix + "idempotency:" + copy.idempotency_key, "update_id"))
    if taken is None:
        return copy.idempotency_key
    log.warning(
        "update %s, accepted while the shared journal was out of reach, has the idempotency key of update %s "
        "there: the same request reached both, and both were sent",
        copy.update.id,
        taken,
    )
    return ""


def _was_touched(entry: DeliveryCopy) -> bool:
    """Attempted, or ended without an attempt: what the journal must not hand out as new."""
    d = entry.delivery
    return d.attempts > 0 or d.state is not DeliveryState.PENDING


def _done(entry: DeliveryCopy) -> dict[str, object]:
    """What lua_adopt.ADOPT records of one delivery. An attempt in flight where it was journaled is recorded
    as pending for a retry now: the journal it comes from was drained of attempts before adopting."""
    d = entry.delivery
    final_attempt = [a for a in entry.attempts if a.number == d.attempts and a.outcome != "interrupted"]
    last = final_attempt[-1] if final_attempt else None
    state = DeliveryState.PENDING if d.state is DeliveryState.IN_FLIGHT else d.state
    finished_at = d.finished_at or (last.finished_at if last else d.not_before)
    return {
        "id": d.id,
        "state": state.value,
        "attempts": str(d.attempts),
        "started_at": "" if last is None or last.started_at is None else number(last.started_at),
        "not_before": number(d.not_before),
        "finished_at": number(finished_at),
        "last_error": d.last_error,
        "detail": d.detail,
        "external_id": d.external_id,
        "progress": [text for pair in entry.progress.items() for text in pair],
        "log": [
            [
                str(a.number),
                "" if a.started_at is None else number(a.started_at),
                number(a.finished_at),
                a.outcome,
                a.error,
            ]
            for a in entry.attempts
            if a is not last
        ],
    }
