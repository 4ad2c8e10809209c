"""How an update changes an incident. Pure functions, shared by every store backend, run inside the
backend's transaction so the check and the write see the same incident."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from broadcaster.domain.errors import InputError
from broadcaster.domain.models import ComponentChange, Incident, Update, UpdateDraft, new_id
from broadcaster.domain.vocabulary import IMPACT_OF_COMPONENT, ComponentState, Impact, Kind, Status


def apply_update(draft: UpdateDraft, current: Incident | None, now: datetime) -> tuple[Incident, Update]:
    """The incident after `draft`, and the update to journal.

    Refuses (InputError) a status of the wrong kind, an update to a resolved incident unless `reopen`
    is set, and a next-update time in the past. Resolving returns every component the incident affects
    to operational unless the update sets it explicitly, as Statuspage does."""
    kind = draft.status.kind
    if draft.next_update_at is not None and draft.next_update_at <= now:
        raise InputError("next_update_at is in the past", {"next_update_at": "must be in the future"})
    if current is not None:
        _check_transition(draft, current)

    before: Mapping[str, ComponentState] = current.components if current else {}
    given = _known_names(draft.components, before)
    after = dict(before)
    after.update(given)
    if draft.status.is_final:
        for name in after:
            if name not in given:
                after[name] = ComponentState.OPERATIONAL
    changes = tuple(
        ComponentChange(name, before.get(name), state)
        for name, state in after.items()
        if name in given or before.get(name) != state
    )
    impact = _impact(draft, kind, current, after)

    incident_id = current.id if current else new_id()
    seq = current.update_count + 1 if current else 1
    created_at = current.created_at if current else now
    monitoring_at = current.monitoring_at if current else None
    if draft.status is Status.MONITORING and monitoring_at is None:
        monitoring_at = now
    scheduled_for = draft.scheduled_for or (current.scheduled_for if current else None)
    if kind is Kind.MAINTENANCE and scheduled_for is None:
        scheduled_for = now
    next_update_at = None if draft.status.is_final else draft.next_update_at

    incident = Incident(
        id=incident_id,
        kind=kind,
        name=draft.title or (current.name if current else ""),
        status=draft.status,
        impact=impact,
        components=after,
        created_at=created_at,
        updated_at=now,
        started_at=current.started_at if current else now,
        monitoring_at=monitoring_at,
        resolved_at=now if draft.status.is_final else None,
        scheduled_for=scheduled_for,
        scheduled_until=draft.scheduled_until or (current.scheduled_until if current else None),
        next_update_at=next_update_at,
        update_count=seq,
    )
    update = Update(
        id=new_id(),
        incident_id=incident_id,
        seq=seq,
        status=draft.status,
        impact=impact,
        message=draft.message,
        components=changes,
        created_at=now,
        next_update_at=next_update_at,
        author=draft.author,
    )
    return incident, update


def _check_transition(draft: UpdateDraft, current: Incident) -> None:
    if draft.status.kind is not current.kind:
        allowed = ", ".join(s.value for s in Status if s.kind is current.kind)
        raise InputError(
            f"incident {current.id} is {_a(current.kind)}; its statuses are {allowed}",
            {"status": f"must be one of {allowed}"},
        )
    if current.status.is_final and not draft.reopen:
        raise InputError(
            f"incident {current.id} ({current.name}) is {current.status.value}; "
            'to post to it again, reopen it explicitly (--reopen, or "reopen": true)',
            {"incident_id": f"is {current.status.value}"},
        )
    if draft.reopen and current.status.is_final and draft.status.is_final:
        raise InputError(
            f"reopening needs a status other than {draft.status.value}",
            {"status": "must reopen the incident"},
        )


def _known_names(given: Mapping[str, ComponentState], known: Mapping[str, ComponentState]) -> dict[str, ComponentState]:
    """`given`, each name the incident already has in another case written as the incident has it: "api"
    in a chat command is the incident's "API", not a second component beside it."""
    by_folded = {name.casefold(): name for name in known}
    return {by_folded.get(name.casefold(), name): state for name, state in given.items()}


def _impact(
    draft: UpdateDraft, kind: Kind, current: Incident | None, components: Mapping[str, ComponentState]
) -> Impact:
    """Given, else (when the update names components) the worst of the incident's components, else
    unchanged; a new incident with neither is "minor". A resolved incident keeps its impact, for history."""
    if kind is Kind.MAINTENANCE:
        return Impact.MAINTENANCE
    if draft.impact is not None:
        return draft.impact
    if draft.components and not draft.status.is_final:
        worst = max(components.values(), key=lambda state: state.severity)
        derived = IMPACT_OF_COMPONENT[worst]
        if derived not in (Impact.NONE, Impact.MAINTENANCE):
            return derived
    return current.impact if current else Impact.MINOR


def _a(kind: Kind) -> str:
    return "a maintenance" if kind is Kind.MAINTENANCE else "an incident"
