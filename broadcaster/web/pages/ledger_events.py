"""`GET /updates/{id}/events`: the ledger's server-sent events, one per change of one of the update's
deliveries, as this process's lanes report them (Dispatcher.subscribe) and as the journal shows them.

A stream opens with every delivery as the journal has it, so a change between the page and the stream is
never missed; then each lane event follows. This process's lanes are not the only ones: `broadcaster send`
or `retry` in another process, or another instance, may be delivering the update, and say nothing here.
So while any delivery is not final, the journal is read again every JOURNAL_POLL_SECONDS and what changed
is sent; once all are final, the polling stops. What waits to be sent is bounded: a stream that falls too
far behind drops its backlog and sends the journal's state again instead. Streams end when the client
goes or the service shuts down (they are exempt from the handler time limit)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import deque
from typing import Any, Final

from aiohttp import web

from broadcaster.domain.models import ID_PATTERN
from broadcaster.lanes import EventKind, LaneEvent
from broadcaster.lanes.events import STATE_AFTER
from broadcaster.store import Attempt, Delivery
from broadcaster.web.keys import DISPATCHER, GATE, RUNTIME
from broadcaster.web.pages.times import when

BACKLOG_LIMIT: Final = 1000
"""Events a stream may hold unsent before it gives them up for a fresh read of the journal."""
HEARTBEAT_SECONDS: Final = 15.0
"""A comment line this often keeps proxies from closing a quiet stream, and finds clients that left."""
RECONNECT_MILLISECONDS: Final = 3000
JOURNAL_POLL_SECONDS: Final = 2.0
"""How often the journal is read again while a delivery is not final (for what other processes did)."""

DeliveryMark = tuple[str, int, str, str, float | None]
"""What of a delivery, when it changes, makes it worth sending again: state, attempts, error, detail, end."""


class _Stream:
    """One client's stream of one update's events."""

    def __init__(self, update_id: str) -> None:
        self.update_id = update_id
        self.backlog: deque[LaneEvent] = deque()
        self.fell_behind = False
        self.closing = False
        self.changed = asyncio.Event()

    def observe(self, event: LaneEvent) -> None:
        if event.delivery.update_id != self.update_id:
            return
        if len(self.backlog) >= BACKLOG_LIMIT:
            self.backlog.clear()
            self.fell_behind = True
        else:
            self.backlog.append(event)
        self.changed.set()

    def close(self) -> None:
        self.closing = True
        self.changed.set()


class _OpenStreams:
    """The application's open streams, which shutting down ends (a stream never ends by itself)."""

    def __init__(self) -> None:
        self.streams: set[_Stream] = set()


OPEN_STREAMS: Final = web.AppKey("ledger_streams", _OpenStreams)


def install(app: web.Application) -> None:
    app[OPEN_STREAMS] = _OpenStreams()
    app.on_shutdown.append(_end_streams)


async def _end_streams(app: web.Application) -> None:
    for stream in list(app[OPEN_STREAMS].streams):
        stream.close()


async def stream_events(request: web.Request) -> web.StreamResponse:
    if request.app[GATE].session(request) is None:
        raise web.HTTPUnauthorized(text="sign in to follow the ledger")
    update_id = request.match_info["update_id"]
    if not ID_PATTERN.match(update_id):
        raise web.HTTPNotFound(text="not an update id")
    store = request.app[RUNTIME].store
    await store.update(update_id)  # NotFoundError: 404
    stream = _Stream(update_id)
    unsubscribe = request.app[DISPATCHER].subscribe(stream.observe)  # before the journal is read: no gap
    request.app[OPEN_STREAMS].streams.add(stream)
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no"}
    )
    try:
        await response.prepare(request)
        await response.write(f"retry: {RECONNECT_MILLISECONDS}\n\n".encode())
        await _follow(response, request, stream)
    except ConnectionResetError:
        pass  # the page was closed or reloaded
    finally:
        unsubscribe()
        request.app[OPEN_STREAMS].streams.discard(stream)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


async def _follow(response: web.StreamResponse, request: web.Request, stream: _Stream) -> None:
    """Send the journal's state, then each lane event, and the journal's changes every JOURNAL_POLL_SECONDS
    while a delivery is not final; until the stream closes."""
    sent: dict[str, DeliveryMark] = {}
    clock = asyncio.get_running_loop().time
    unfinished = await _send_journal_changes(response, request, stream.update_id, sent)
    next_poll = clock() + JOURNAL_POLL_SECONDS
    while not stream.closing:
        try:
            async with asyncio.timeout(max(0.0, next_poll - clock()) if unfinished else HEARTBEAT_SECONDS):
                await stream.changed.wait()
        except TimeoutError:
            if unfinished:
                unfinished = await _send_journal_changes(response, request, stream.update_id, sent)
                next_poll = clock() + JOURNAL_POLL_SECONDS
            else:
                await response.write(b": waiting\n\n")
            continue
        stream.changed.clear()
        if stream.fell_behind:
            stream.fell_behind = False
            stream.backlog.clear()
            sent.clear()
            unfinished = await _send_journal_changes(response, request, stream.update_id, sent)
        while stream.backlog:
            event = stream.backlog.popleft()
            payload = event_json(event)
            if payload["final"]:
                unfinished.discard(event.delivery.id)
            else:
                unfinished.add(event.delivery.id)
            await _send(response, payload)


async def _send_journal_changes(
    response: web.StreamResponse, request: web.Request, update_id: str, sent: dict[str, DeliveryMark]
) -> set[str]:
    """Send each of the update's deliveries whose journal state differs from what `sent` says was sent (all of
    them when `sent` is empty), and note it there. Returns the deliveries not final."""
    store = request.app[RUNTIME].store
    unfinished: set[str] = set()
    for delivery in await store.deliveries(update_id=update_id):
        if not delivery.state.is_final:
            unfinished.add(delivery.id)
        mark = (delivery.state.value, delivery.attempts, delivery.last_error, delivery.detail, delivery.finished_at)
        if sent.get(delivery.id) != mark:
            await _send(response, delivery_json(delivery, await store.attempts(delivery.id)))
            sent[delivery.id] = mark
    return unfinished


async def _send(response: web.StreamResponse, payload: dict[str, Any]) -> None:
    # One JSON line per event: json.dumps never writes a line break, which would end the data field.
    await response.write(f"event: delivery\ndata: {json.dumps(payload)}\n\n".encode())


def delivery_json(delivery: Delivery, attempts: list[Attempt]) -> dict[str, Any]:
    """A delivery as the journal has it, with its whole attempt log (the page replaces its own)."""
    return {
        "id": delivery.id,
        "state": delivery.state.value,
        "final": delivery.state.is_final,
        "attempts": delivery.attempts,
        "max_attempts": delivery.max_attempts,
        "note": delivery.last_error or delivery.detail,
        "log": [
            {"number": a.number, "outcome": a.outcome, "error": a.error, "at": when(a.finished_at)} for a in attempts
        ],
    }


def event_json(event: LaneEvent) -> dict[str, Any]:
    """A lane's event about a delivery: its new state, and the attempt that ended (when one starts, none, and
    the note stays as it was)."""
    state = STATE_AFTER[event.kind]
    started = event.kind is EventKind.STARTED
    # The event is sent as soon as its outcome is journaled: now is when the attempt ended, to the second.
    ended = {"number": event.attempt, "outcome": event.kind.value, "error": event.detail, "at": when(time.time())}
    return {
        "id": event.delivery.id,
        "state": state.value,
        "final": state.is_final,
        "attempts": event.attempt,
        "max_attempts": event.delivery.max_attempts,
        "note": None if started else event.detail,
        "attempt": None if started else ended,
    }
