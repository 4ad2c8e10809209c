"""Scheduled maintenance moves on by itself: when its window opens, `serve` posts the in-progress update,
and when the window closes, the completed one, each with the shipped (or configured) template's text, so
a maintenance announced days ahead needs nobody awake at 02:00 to say it started and ended.

A maintenance still `scheduled` when its window opens goes to `in_progress`; one `scheduled` or
`in_progress` when its window closes goes to `completed` (so a window that opened and closed while no
service ran goes straight there). A person who posted `verifying` or `completed` has taken it over, and it
is left to them; one that overruns is extended by an update with a later --scheduled-until. The moves go to
the channels the maintenance was announced on, so a quiet one stays quiet. Every instance
looks; the idempotency key (incident, status, window) makes one update of each, whichever instance posts
it first, and a maintenance rescheduled to a new window moves again."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from broadcaster.dispatch import Dispatcher
from broadcaster.domain.errors import InputError, StoreError
from broadcaster.domain.models import Incident, UpdateDraft
from broadcaster.domain.templates import fill_template
from broadcaster.domain.vocabulary import ComponentState, Kind, Status
from broadcaster.runtime import Runtime
from broadcaster.web import background
from broadcaster.web.keys import DISPATCHER, RUNTIME

log = logging.getLogger("broadcaster.maintenance")

CHECK_EVERY: Final = 30.0
"""Seconds between looks: a maintenance moves at most this long after its window opens or closes."""
AUTHOR: Final = "broadcaster (schedule)"
OPEN_MAINTENANCE_LIMIT: Final = 500
FALLBACK_TEXT: Final = {
    Status.IN_PROGRESS: "The scheduled maintenance is in progress.",
    Status.COMPLETED: "The scheduled maintenance is complete.",
}
"""When the configuration withdrew the template named after the status."""


def install(app: web.Application, *, every: float | None) -> None:
    """With `every` (seconds), move due maintenances that often while the application runs."""
    if every is not None:
        background.repeat(app, _move, every=every, log=log, what="moving scheduled maintenance on")


async def _move(app: web.Application) -> None:
    try:
        await move_due_maintenance(app[RUNTIME], app[DISPATCHER])
    except StoreError as exc:
        log.error("cannot look for scheduled maintenance to move on: %s", exc)


def next_status(incident: Incident, now: datetime) -> Status | None:
    """What the schedule moves `incident` to now, or None."""
    if incident.kind is not Kind.MAINTENANCE:
        return None
    ended = incident.scheduled_until is not None and incident.scheduled_until <= now
    if incident.status in (Status.SCHEDULED, Status.IN_PROGRESS) and ended:
        return Status.COMPLETED
    started = incident.scheduled_for is not None and incident.scheduled_for <= now
    if incident.status is Status.SCHEDULED and started:
        return Status.IN_PROGRESS
    return None


async def move_due_maintenance(runtime: Runtime, dispatcher: Dispatcher) -> list[str]:
    """Post the update each due maintenance needs; the ids of the updates posted."""
    now = datetime.fromtimestamp(runtime.clock(), UTC)
    posted = []
    for incident in await runtime.store.incidents(limit=OPEN_MAINTENANCE_LIMIT, open_only=True):
        status = next_status(incident, now)
        if status is None:
            continue
        draft = _draft(incident, status, runtime.settings.templates, await _channels(runtime, incident))
        try:
            accepted = await dispatcher.submit(draft, idempotency_key=_key(incident, status))
        except InputError as exc:  # e.g. a person moved it between the read and this update
            log.info("maintenance %s not moved to %s: %s", incident.id, status.value, exc)
            continue
        if not accepted.duplicate:
            log.info("maintenance %s (%s) is now %s, as scheduled", incident.id, incident.name, status.value)
            posted.append(accepted.update.id)
    return posted


def _key(incident: Incident, status: Status) -> str:
    window = [moment.timestamp() if moment else None for moment in (incident.scheduled_for, incident.scheduled_until)]
    return f"schedule:{incident.id}:{status.value}:{window[0]}:{window[1]}"


async def _channels(runtime: Runtime, incident: Incident) -> list[str] | None:
    """The channels the maintenance was announced on (a quiet one, posted to the mirror only, stays quiet),
    as far as they are still enabled; None (every enabled channel) when it went to all of them."""
    first = (await runtime.store.history(incident.id)).updates[0]
    announced = {delivery.channel for delivery in await runtime.store.deliveries(update_id=first.id)}
    active = runtime.active_channels()
    chosen = [name for name in active if name in announced]
    return None if set(chosen) == set(active) or not chosen else chosen


def _draft(incident: Incident, status: Status, templates: dict[str, str], channels: list[str] | None) -> UpdateDraft:
    affected = [name for name, state in incident.components.items() if state is not ComponentState.OPERATIONAL]
    text = templates.get(status.value) or FALLBACK_TEXT[status]
    until = incident.scheduled_until if status is Status.IN_PROGRESS else None
    message = fill_template(text, components=affected or list(incident.components), next_update_at=until)
    return UpdateDraft(incident_id=incident.id, status=status, message=message, author=AUTHOR, channels=channels)
