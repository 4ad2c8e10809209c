"""Accepting an update into the Redis journal. The incident's new state is domain logic (apply_update), so
it is computed in Python between a read (ACCEPT_VIEW) and a commit (ACCEPT_COMMIT) that writes only if
the incident is still at the version it was read at, and the idempotency key and the content are still
unanswered; otherwise nothing is written and the accept starts over from the read, which then finds
whatever came in meanwhile (and answers it, when it is the same update)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

from broadcaster.domain.drafts import content_digest
from broadcaster.domain.errors import ConflictError, NotFoundError, StoreError
from broadcaster.domain.models import Incident, Update, UpdateDraft, delivery_ids, incident_to_json
from broadcaster.domain.transitions import apply_update
from broadcaster.domain.vocabulary import DeliveryState, Ordering
from broadcaster.store.base import NO_PROGRESS, Accepted, Claimed, Delivery, Handoff, PlannedDelivery
from broadcaster.store.redis.connection import Link, optional_text
from broadcaster.store.redis.records import (
    decoded,
    delivery_from_row,
    incident_from_text,
    listed,
    number,
    update_to_json,
    update_view,
)

ATTEMPTS: Final = 16
"""Commits tried before giving up on an incident that other writers keep changing first. Each round lets at
least one of the writers racing to an incident through, so this many at once all get through; between
rounds a writer waits a random moment (up to RETRY_PAUSE), so that more racing writers spread out."""
RETRY_PAUSE: Final = 0.02
CONTENT_KEPT: Final = 3600
"""Seconds the journal remembers which updates had a content digest: longer than any same_within an intake
asks for (domain.drafts.SAME_UPDATE_WITHIN, 60 s), after which the digest's key expires."""


async def accept(
    link: Link,
    draft: UpdateDraft,
    plan: Sequence[PlannedDelivery],
    *,
    now: datetime,
    idempotency_key: str | None,
    request_digest: str | None,
    handoff: Handoff | None,
    same_within: float | None,
) -> Accepted:
    content = content_digest(draft, {p.channel for p in plan})
    since = "" if same_within is None else number(now.timestamp() - same_within)
    for _ in range(ATTEMPTS):
        keyed_update, keyed_digest, stored_incident, same = await link.run(
            link.scripts.accept_view, idempotency_key or "", draft.incident_id or "", content, since
        )
        if keyed_update is not None:
            if request_digest and keyed_digest and keyed_digest != request_digest:
                raise ConflictError(
                    f"idempotency key {idempotency_key!r} was used for update {keyed_update}, with other content; "
                    "use a new key for a new update",
                    {"idempotency_key": "used before for other content"},
                )
            return await accepted_before(link, keyed_update)
        if same is not None:
            if idempotency_key is not None:  # so that this key, used again later, still answers that update
                answered = await link.run(link.scripts.remember_key, idempotency_key, same, request_digest or "")
                if answered != same:
                    continue  # another request took the key first: answer as it says
            return await accepted_before(link, same)
        if draft.incident_id is not None and stored_incident is None:
            raise NotFoundError(f"no incident with id {draft.incident_id}", {"incident_id": "not found"})
        current = None if stored_incident is None else incident_from_text(stored_incident)
        after, update = apply_update(draft, current, now)
        accepted = await _commit(
            link,
            after=after,
            update=update,
            plan=plan,
            stamp=now.timestamp(),
            expected=0 if current is None else current.update_count,
            identity={"key": idempotency_key or "", "request_digest": request_digest or "", "content": content},
            same_since=since,
            handoff=handoff,
        )
        if accepted is not None:
            return accepted
        await asyncio.sleep(random.uniform(0, RETRY_PAUSE))
    changing = "the incident" if draft.incident_id is None else f"incident {draft.incident_id}"
    raise StoreError(
        f"{changing} changed under {ATTEMPTS} attempts to journal the update (other updates kept coming in "
        "first); nothing was journaled: try again"
    )


async def _commit(
    link: Link,
    *,
    after: Incident,
    update: Update,
    plan: Sequence[PlannedDelivery],
    stamp: float,
    expected: int,
    identity: dict[str, str],
    same_since: str,
    handoff: Handoff | None,
) -> Accepted | None:
    """Write the update and its deliveries, unless something changed since the read (then None)."""
    ids = delivery_ids(len(plan))
    plan_json = planned_json(ids, plan, stamp)
    stored_update = update_to_json(
        update,
        after,
        key=identity["key"] or None,
        request_digest=identity["request_digest"] or None,
        content=identity["content"],
    )
    reply = await link.run(
        link.scripts.accept_commit,
        json.dumps(
            commit_facts(after, update, stamp=stamp, expected=expected, identity=identity, same_since=same_since)
        ),
        json.dumps(incident_to_json(after)),
        stored_update,
        json.dumps(plan_json),
        "" if handoff is None else _handoff_json(handoff),
    )
    if reply == "retry":
        return None
    handed, superseded, parents, past = map(listed, decoded(reply))
    leased = {position - 1 for position in handed}
    deliveries = tuple(
        Delivery(
            id=delivery_id,
            update_id=update.id,
            incident_id=after.id,
            update_seq=update.seq,
            channel=planned.channel,
            target=planned.target,
            state=DeliveryState.IN_FLIGHT if position in leased else DeliveryState.PENDING,
            attempts=1 if position in leased else 0,
            max_attempts=planned.max_attempts,
            created_at=stamp,
            not_before=stamp,
            expires_at=stamp + planned.ttl,
            finished_at=None,
            last_error="",
            detail="",
            external_id=None,
        )
        for position, (delivery_id, planned) in enumerate(zip(ids, plan, strict=True))
    )
    handed_off: tuple[Claimed, ...] = ()
    if handed:
        # As a claim would hand them out: the incident read back (times in UTC) and the stored history.
        incident, history = update_view(past or [stored_update])
        handed_off = tuple(
            Claimed(
                delivery=deliveries[position - 1],
                incident=incident,
                history=history,
                thread_parent=parents[index] if parents else None,
                progress=NO_PROGRESS,
            )
            for index, position in enumerate(handed)
        )
    return Accepted(
        incident=after,
        update=update,
        deliveries=deliveries,
        superseded=tuple(delivery_from_row(row) for row in superseded),
        handed_off=handed_off,
    )


def commit_facts(
    after: Incident, update: Update, *, stamp: float, expected: int, identity: dict[str, str], same_since: str
) -> dict[str, object]:
    """What the commit script checks and writes besides the JSON it stores (lua_accept.COMMIT)."""
    return {
        "incident_id": after.id,
        "expected": expected,
        "updated_at": number(after.updated_at.timestamp()),
        "is_open": after.is_open,
        "next_update_at": "" if after.next_update_at is None else number(after.next_update_at.timestamp()),
        "update_id": update.id,
        "update_seq": str(update.seq),
        "created_at": number(update.created_at.timestamp()),
        "same_since": same_since if expected == 0 else "",
        "content_kept": CONTENT_KEPT,
        "stamp": number(stamp),
        **identity,
    }


def planned_json(ids: Sequence[str], plan: Sequence[PlannedDelivery], stamp: float) -> dict[str, object]:
    """The plan as the commit script takes it: what deliveries to one channel share, written once (groups),
    and each delivery's id and target (entries)."""
    groups: dict[tuple[str, Ordering, int, float], int] = {}
    entries: list[list[Any]] = []
    for delivery_id, planned in zip(ids, plan, strict=True):
        # The ordering as itself (a str): its `.value` costs a descriptor call, once per delivery of a fan-out.
        group = (planned.channel, planned.ordering, planned.max_attempts, stamp + planned.ttl)
        entries.append([groups.setdefault(group, len(groups) + 1), delivery_id, planned.target])
    return {
        "groups": [
            [channel, ordering, str(attempts), number(expires)] for channel, ordering, attempts, expires in groups
        ],
        "entries": entries,
    }


def _handoff_json(handoff: Handoff) -> str:
    return json.dumps(
        {
            "owner": handoff.owner,
            "lease_until": number(handoff.lease_until),
            "room": {channel: room for channel, room in handoff.room.items()},
            "skip": {channel: sorted(targets) for channel, targets in handoff.skip_targets.items()},
        }
    )


async def accepted_before(link: Link, update_id: str) -> Accepted:
    """The answer for an update accepted before: its incident as it stood right after it, and its deliveries."""
    stored = optional_text(await link.client.get(link.prefix + "update:" + update_id))
    if stored is None:  # a key or digest names it, but it is gone: the journal was emptied in part
        raise StoreError(f"update {update_id} is named in the journal but not in it")
    incident, history = update_view([stored])
    rows = decoded(await link.run(link.scripts.deliveries, update_id, "", "0"))
    planned = sorted(rows, key=lambda row: int(row[-1]))
    return Accepted(
        incident=incident,
        update=history[-1],
        deliveries=tuple(delivery_from_row(row) for row in planned),
        superseded=(),
        duplicate=True,
    )
