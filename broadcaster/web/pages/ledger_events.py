"""`GET /updates/{id}/events`: the ledger's server-sent events, one per change of one of the update's
deliveries, as this process's lanes report them (Dispatcher.subscribe) and as the journal shows them.

A stream opens with every delivery as the journal has it, so a change between the page and the stream is
never missed; then each lane event follows. This process's lanes are not the only ones: `broadcaster send`
or `retry` in another process, or another instance, may be delivering the update, and say nothing here.
So while any delivery is not final, the journal is read again every JOURNAL_POLL_SECONDS and what changed
is sent; once all are final, the polling stops. What waits to be sent is bounded: a stream that falls too
far behind drops its backlog and sends the journal's state again instead. A journal that cannot be read
is logged and read again at the next poll. Streams end when the client goes (found by the heartbeat's
write, at the latest), when the session that opened it ends (logged out: checked at each poll and
heartbeat) or when the service shuts down; they are exempt from the handler time limit."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from collections import deque
from typing import Any, Final

from aiohttp import web

from broadcaster.domain.errors import StoreError
from broadcaster.domain.models import ID_PATTERN
from broadcaster.lanes import EventKind, LaneEvent
from broadcaster.lanes.events import STATE_AFTER
from broadcaster.store import Attempt, Delivery
from broadcaster.web.keys import DISPATCHER, GATE, RUNTIME
from broadcaster.web.pages.times import when

log = logging.getLogger("broadcaster.web.ledger")

BACKLOG_LIMIT: Final = 1000
"""Events a stream may hold unsent before it gives them up for a fresh read of the journal."""
HEARTBEAT_SECONDS: Final = 15.0
"""A comment line this often keeps proxies from closing a quiet stream, and finds clients that left."""
RECONNECT_MILLISECONDS: Final = 3000
JOURNAL_POLL_SECONDS: Final = 2.0
"""How often the journal is read again while a delivery is not final (for what other processes did)."""

DeliveryMark = tuple[str, int, str | None]
"""What of a delivery, when it changes, makes it worth sending again: its state, attempts and note; the same
whether a lane's event or the journal said it, so the journal's next read does not send it again."""


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
    if await request.app[GATE].session(request) is None:
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
        await _Follower(response, request, stream).run()
    except ConnectionResetError:
        pass  # the page was closed or reloaded
    finally:
        unsubscribe()
        request.app[OPEN_STREAMS].streams.discard(stream)
    with contextlib.suppress(ConnectionResetError):
        await response.write_eof()
    return response


class _Follower:
    """Sends one stream's events: the journal's state, each lane event, the journal's changes while a delivery
    is not final, and a heartbeat whenever nothing else was written for HEARTBEAT_SECONDS."""

    def __init__(self, response: web.StreamResponse, request: web.Request, stream: _Stream) -> None:
        self._response = response
        self._request = request
        self._stream = stream
        self._clock = asyncio.get_running_loop().time
        self._sent: dict[str, DeliveryMark] = {}
        """What each delivery looked like when last sent, so a journal read sends only what changed."""
        self._unfinished: set[str] = set()
        self._read_failed = False
        self._last_write = self._clock()
        self._next_poll = self._clock()

    async def run(self) -> None:
        """Until the stream closes or the session that opened it ends (logged out, or its password changed)."""
        await self._poll()
        while not self._stream.closing:
            due = self._last_write + HEARTBEAT_SECONDS
            if self._polling:
                due = min(due, self._next_poll)
            try:
                async with asyncio.timeout(max(0.0, due - self._clock())):
                    await self._stream.changed.wait()
            except TimeoutError:
                if await self._request.app[GATE].session(self._request) is None:
                    return
                if self._polling and self._clock() >= self._next_poll:
                    await self._poll()
                if self._clock() - self._last_write >= HEARTBEAT_SECONDS:
                    # Written even while polling finds nothing new: a write is how a client that left is found
                    # (the service does not cancel handlers when a connection drops).
                    await self._write(b": waiting\n\n")
                continue
            self._stream.changed.clear()
            if self._stream.fell_behind:
                self._stream.fell_behind = False
                self._stream.backlog.clear()
                self._sent.clear()
                await self._poll()
            while self._stream.backlog:
                await self._send_event(self._stream.backlog.popleft())

    async def _poll(self) -> None:
        """Send each delivery whose journal state differs from what was sent (all when nothing was). A journal
        that cannot be read is logged and read again at the next poll: the stream goes on."""
        self._next_poll = self._clock() + JOURNAL_POLL_SECONDS
        store = self._request.app[RUNTIME].store
        try:
            deliveries = await store.deliveries(update_id=self._stream.update_id)
            unfinished: set[str] = set()
            for delivery in deliveries:
                if not delivery.state.is_final:
                    unfinished.add(delivery.id)
                mark = _mark(delivery_json(delivery, []))
                if self._sent.get(delivery.id) != mark:
                    await self._send(delivery_json(delivery, await store.attempts(delivery.id)))
        except StoreError as exc:
            log.warning("the ledger of update %s could not read the journal: %s", self._stream.update_id, exc)
            self._read_failed = True
            return
        self._read_failed = False
        self._unfinished = unfinished

    @property
    def _polling(self) -> bool:
        """The journal is read again while a delivery is not final, or after a read failed."""
        return bool(self._unfinished) or self._read_failed

    async def _send_event(self, event: LaneEvent) -> None:
        payload = event_json(event)
        if payload["final"]:
            self._unfinished.discard(event.delivery.id)
        else:
            self._unfinished.add(event.delivery.id)
        await self._send(payload)

    async def _send(self, payload: dict[str, Any]) -> None:
        self._sent[payload["id"]] = _mark(payload)
        # One JSON line per event: json.dumps never writes a line break, which would end the data field.
        await self._write(f"event: delivery\ndata: {json.dumps(payload)}\n\n".encode())

    async def _write(self, data: bytes) -> None:
        await self._response.write(data)
        self._last_write = self._clock()


def _mark(payload: dict[str, Any]) -> DeliveryMark:
    return (payload["state"], payload["attempts"], payload["note"])


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
