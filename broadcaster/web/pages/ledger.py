"""The live ledger at `/updates/{id}`: the update, every delivery and each of its attempts as the lanes
record them, and the operator's buttons (retry what failed, pause or resume a channel or one target).

It keeps itself current: ledger.js follows the server-sent events of /updates/{id}/events (ledger_events),
and without JavaScript the page reloads every few seconds while anything is still on its way."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final

from aiohttp import web

from broadcaster.control import requeue_failed, set_paused
from broadcaster.domain.errors import InputError, NotFoundError
from broadcaster.domain.models import ID_PATTERN, Incident, Update
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.store import Attempt, Delivery
from broadcaster.store.base import LaneControl
from broadcaster.web.auth.gate import Session
from broadcaster.web.keys import DISPATCHER, GATE, RUNTIME
from broadcaster.web.pages.access import csrf_refused, posted_form, refused, see_other, signed_in
from broadcaster.web.pages.times import when
from broadcaster.web.rendering import render
from broadcaster.web.views import is_overdue

REFRESH_SECONDS: Final = 5
"""How often the page reloads itself without JavaScript while a delivery is still on its way."""


@dataclass(frozen=True, slots=True)
class DeliveryRow:
    delivery: Delivery
    attempts: list[Attempt]

    @property
    def note(self) -> str:
        """The last error, or what the delivery did."""
        return self.delivery.last_error or self.delivery.detail


@dataclass(slots=True)
class Control:
    """A pausable thing on this page: a whole channel (target "") or one of its targets."""

    channel: str
    target: str
    paused: bool = False
    reason: str = ""
    targets: list[Control] = field(default_factory=list)


POSTED_BEFORE: Final = "posted-before"
"""What the stamp in `?posted=` vouches for: the form's update had been posted already, and was answered."""


async def show_ledger(request: web.Request) -> web.StreamResponse:
    session = await signed_in(request)
    store = request.app[RUNTIME].store
    update_id = request.match_info["update_id"]
    try:
        update = await _update(request, update_id)
    except NotFoundError:
        return await _not_found(request, update_id)
    incident = await store.incident(update.incident_id)
    rows = [
        DeliveryRow(delivery=d, attempts=await store.attempts(d.id))
        for d in await store.deliveries(update_id=update_id)
    ]
    return _page(request, session, update=update, incident=incident, rows=rows, controls=await store.controls())


async def retry_failed(request: web.Request) -> web.StreamResponse:
    """The update's failed deliveries back in the queue with fresh attempts (within their time-to-live)."""
    session = await signed_in(request)
    update_id = request.match_info["update_id"]
    if await posted_form(request, session) is None:
        return await csrf_refused(request)
    try:
        requeued, too_old = await requeue_failed(request.app[RUNTIME], update_id=update_id, channel=None)
    except NotFoundError:
        return await _not_found(request, update_id)
    request.app[DISPATCHER].wake()
    return see_other(f"/updates/{update_id}?requeued={requeued}&too_old={too_old}")


async def pause(request: web.Request) -> web.StreamResponse:
    return await _set_paused(request, paused=True)


async def resume(request: web.Request) -> web.StreamResponse:
    return await _set_paused(request, paused=False)


async def _set_paused(request: web.Request, *, paused: bool) -> web.StreamResponse:
    session = await signed_in(request)
    update_id = request.match_info["update_id"]
    posted = await posted_form(request, session)
    if posted is None:
        return await csrf_refused(request)
    try:
        await _update(request, update_id)  # the page it goes back to must be one: no redirect to any path
    except NotFoundError:
        return await _not_found(request, update_id)
    runtime = request.app[RUNTIME]
    channel, target = posted.get("channel", ""), posted.get("target", "")
    reason = f"by {session.user} from the ledger"
    try:
        await set_paused(runtime, channel, target, paused=paused, reason=reason)
    except InputError as exc:
        return await refused(404, "Nothing to pause there", runtime.settings.scrubber(str(exc)), request=request)
    return see_other(f"/updates/{update_id}")


async def _update(request: web.Request, update_id: str) -> Update:
    if not ID_PATTERN.match(update_id):
        raise NotFoundError(f"{update_id!r} is not an update id")
    return await request.app[RUNTIME].store.update(update_id)


async def _not_found(request: web.Request, update_id: str) -> web.Response:
    return await refused(404, "No such update", f"The journal has no update {update_id!r}.", request=request)


def _page(
    request: web.Request,
    session: Session,
    *,
    update: Update,
    incident: Incident,
    rows: list[DeliveryRow],
    controls: list[LaneControl],
) -> web.Response:
    pending = any(not row.delivery.state.is_final for row in rows)
    failed = sum(1 for row in rows if row.delivery.state is DeliveryState.FAILED)
    return render(
        "ledger.html.j2",
        headers={"Cache-Control": "no-store"},
        user=session.user,
        csrf=request.app[GATE].csrf_token(session),
        update=update,
        incident=incident,
        rows=rows,
        controls=_controls(rows, controls),
        pending=pending,
        failed=failed,
        refresh_seconds=REFRESH_SECONDS,
        overdue=is_overdue(incident, now=datetime.fromtimestamp(request.app[RUNTIME].clock(), UTC)),
        requeued=_count(request, "requeued"),
        too_old=_count(request, "too_old"),
        posted_before=request.app[GATE].stamped(POSTED_BEFORE, update.id, request.query.get("posted", "")),
        when=when,
    )


def _controls(rows: list[DeliveryRow], controls: list[LaneControl]) -> list[Control]:
    """Each channel this update goes to, and each of its targets here, with their pauses."""
    paused = {(c.channel, c.target): c.reason for c in controls if c.paused}
    channels: dict[str, Control] = {}
    for row in rows:
        name, target = row.delivery.channel, row.delivery.target
        channel = channels.setdefault(
            name, Control(channel=name, target="", paused=(name, "") in paused, reason=paused.get((name, ""), ""))
        )
        if all(known.target != target for known in channel.targets):
            reason = paused.get((name, target), "")
            channel.targets.append(Control(channel=name, target=target, paused=(name, target) in paused, reason=reason))
    return list(channels.values())


def _count(request: web.Request, name: str) -> int | None:
    value = request.query.get(name, "")
    return int(value) if value.isdigit() and len(value) < 10 else None
