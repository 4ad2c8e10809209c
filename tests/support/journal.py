"""Posting updates straight into a journal, and claiming and finishing its deliveries, for tests below the CLI."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Any

from broadcaster.domain.models import UpdateDraft
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store import Accepted, Handoff, Outcome, PlannedDelivery, Store
from broadcaster.store.base import accept_update
from channels.base import Ordering


def planned(
    *targets: str,
    ordering: Ordering = Ordering.IN_ORDER,
    attempts: int = 3,
    ttl: float = 3600,
    name: str | None = None,
) -> list[PlannedDelivery]:
    channel = name or ("latest" if ordering is Ordering.LATEST_ONLY else "scripted")
    return [
        PlannedDelivery(channel=channel, target=target, ordering=ordering, max_attempts=attempts, ttl=ttl)
        for target in targets or ("t1",)
    ]


async def post(
    journal: Store,
    plan: list[PlannedDelivery],
    *,
    key: str | None = None,
    digest: str | None = None,
    handoff: Handoff | None = None,
    same_within: float | None = None,
    at: datetime | None = None,
    **fields: Any,
) -> Accepted:
    """Accept an update: a new incident unless `incident_id` is given."""
    fields.setdefault("status", "investigating")
    fields.setdefault("message", "An update.")
    if "incident_id" not in fields:
        fields.setdefault("title", "API errors")
    draft = UpdateDraft.model_validate(fields)
    return await accept_update(
        journal,
        draft,
        plan,
        now=at or datetime.now(UTC),
        idempotency_key=key,
        request_digest=digest,
        handoff=handoff,
        same_within=same_within,
    )


async def claim(
    journal: Store,
    owner: str = "me",
    *,
    ordering: Ordering = Ordering.IN_ORDER,
    limit: int = 10,
    at: float | None = None,
    lease: float = 60.0,
    skip: tuple[str, ...] = (),
) -> list[str]:
    result = await journal.claim(
        "scripted", ordering=ordering, owner=owner, limit=limit, now=at or time.time(), lease=lease, skip_targets=skip
    )
    return [c.delivery.id for c in result.claimed]


def first_attempt(delivery_id: str, state: DeliveryState, *, at: float, **extra: Any) -> Outcome:
    """What a delivery's first attempt, started and ended at `at`, came to (`extra`: the rest of Outcome)."""
    return Outcome(delivery_id=delivery_id, state=state, attempt=1, started_at=at, finished_at=at, **extra)


async def finish(journal: Store, delivery_id: str, state: DeliveryState, owner: str = "me", **extra: Any) -> int:
    return await journal.finish(owner, [first_attempt(delivery_id, state, at=time.time(), **extra)])
