"""How an update changes an incident. Pure functions, shared by every store backend, run inside the
backend's transaction so the check and the write see the same incident."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final

from broadcaster.domain.errors import InputError
from broadcaster.domain.models import ComponentChange, Incident, Update, UpdateDraft, new_id
from broadcaster.domain.vocabulary import IMPACT_OF_COMPONENT, ComponentState, Impact, Kind, Status

REOPEN_HOW: Final = "(the command line's --reopen, the API's \"reopen\": true)"
"""Where an update can reopen a resolved incident: the CLI and the API (the form and chat cannot), each in its
own words; the CLI shows only its own."""


def apply_update(draft: UpdateDraft, current: Incident | None, now: datetime) -> tuple[Incident, Update]:
    """The incident after `draft`, and the update to journal.

    Refuses (InputError) a status of the wrong kind, an update to a resolved incident unless `reopen`
    is set, a next-update time in the past, and a maintenance window that makes no sense (check_window).
    Resolving returns every component the incident affects to operational unless the update sets it
    explicitly, as Statuspage does."""
    kind = draft.status.kind
    if draft.next_update_at is not None and draft.next_update_at <= now:
        raise InputError(
            f"next_update_at {utc_text(draft.next_update_at)} is in the past (it is {utc_text(now)} now)",
            {"next_update_at": "must be in the future"},
        )
    if current is not None:
        _check_transition(draft, current)
    check_window(draft, current, now)

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


def check_window(draft: UpdateDraft, current: Incident | None, now: datetime) -> None:
    """A scheduled maintenance says when it will be (in this update or an earlier one), and no maintenance is
    announced for a window that is over (a completed one may record it after the fact) or starting in the
    past while still "scheduled": the service moves maintenance on by its window, so a window that makes no
    sense would move it at once, whichever way it was posted (CLI, API, form or chat)."""
    if draft.status is Status.SCHEDULED:
        window = {
            "scheduled_for": draft.scheduled_for or (current.scheduled_for if current else None),
            "scheduled_until": draft.scheduled_until or (current.scheduled_until if current else None),
        }
        if missing := [name for name, moment in window.items() if moment is None]:
            raise InputError(
                "a scheduled maintenance needs its window: give scheduled_for and scheduled_until",
                dict.fromkeys(missing, "required for a scheduled maintenance"),
            )
    past = f"is in the past (it is {utc_text(now)} now)"
    until = draft.scheduled_until
    if until is not None and until <= now and draft.status is not Status.COMPLETED:
        raise InputError(f"scheduled_until {utc_text(until)} {past}", {"scheduled_until": "in the past"})
    start = draft.scheduled_for
    if draft.status is Status.SCHEDULED and start is not None and start <= now:
        raise InputError(
            f"scheduled_for {utc_text(start)} {past}; a maintenance under way is in_progress",
            {"scheduled_for": "in the past"},
        )


def utc_text(moment: datetime) -> str:
    """The one way a time is written in a message meant for people: UTC to the second, marked Z
    (2026-12-05 03:10:00Z)."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%SZ")


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
            f"to post to it again, reopen it explicitly {REOPEN_HOW}",
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


def adopt_update(update: Update, incident_after: Incident, current: Incident | None) -> tuple[Incident, Update]:
    """An update journaled elsewhere (a fallback journal, while the shared one was out of reach), as it lands
    on the incident the shared journal holds now: the update keeps its id, its time and what it said, so
    adopting it twice is adopting it once, and takes the next seq there. It was sent already, so it is never
    refused: when the incident moved on meanwhile (another instance posted a later update), the later word
    stands and this one joins the history; otherwise the incident takes its status, impact, components
    and promise. `incident_after` is the incident as this update left it where it was journaled (what a new
    incident starts from)."""
    seq = current.update_count + 1 if current else 1
    adopted = dataclasses.replace(update, seq=seq)
    if current is None:
        return dataclasses.replace(incident_after, update_count=seq), adopted
    if is_behind(update, current):
        return dataclasses.replace(current, update_count=seq), adopted
    components = dict(current.components) | {change.name: change.new for change in update.components}
    final = update.status.is_final
    monitoring_at = current.monitoring_at
    if update.status is Status.MONITORING and monitoring_at is None:
        monitoring_at = update.created_at
    after = dataclasses.replace(
        current,
        status=update.status,
        impact=update.impact,
        components=components,
        updated_at=update.created_at,
        monitoring_at=monitoring_at,
        resolved_at=update.created_at if final else None,
        next_update_at=update.next_update_at,
        update_count=seq,
    )
    return after, adopted


def is_behind(update: Update, current: Incident | None) -> bool:
    """The incident moved on after `update` was written (adopt_update): its latest word is newer."""
    return current is not None and current.updated_at > update.created_at
