"""Posting updates straight into a journal, for tests below the CLI."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from broadcaster.domain.models import UpdateDraft
from broadcaster.store import Accepted, Handoff, PlannedDelivery, Store
from channels.base import Ordering


def planned(
    *targets: str,
    ordering: Ordering = Ordering.IN_ORDER,
    attempts: int = 3,
    ttl: float = 3600,
    name: str | None = None,
) -> list[PlannedDelivery]:
    channel = name or ("latest" if ordering is Ordering.LATEST_ONLY else "scripted")
    return [PlannedDelivery(channel, target, ordering, attempts, ttl) for target in targets or ("t1",)]


async def post(
    journal: Store,
    plan: list[PlannedDelivery],
    *,
    key: str | None = None,
    handoff: Handoff | None = None,
    **fields: Any,
) -> Accepted:
    """Accept an update: a new incident unless `incident_id` is given."""
    fields.setdefault("status", "investigating")
    fields.setdefault("message", "An update.")
    if "incident_id" not in fields:
        fields.setdefault("title", "API errors")
    draft = UpdateDraft.model_validate(fields)
    return await journal.accept(draft, plan, now=datetime.now(UTC), idempotency_key=key, handoff=handoff)
