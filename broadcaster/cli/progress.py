"""Per-channel progress while the CLI delivers.

On a terminal, one line per channel is redrawn in place (with a countdown to the next retry); anywhere
else (a pipe, a log file, CI), each change is printed as one line, so nothing is lost in a transcript.
Target names and error details come from outside (configuration, SMTP replies, receivers' answers): each
line goes through printable(), so none of them can move the cursor or recolour the terminal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TextIO

from broadcaster.domain.text import printable
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import EventKind, LaneEvent
from broadcaster.store import Delivery


@dataclass(slots=True)
class _Seen:
    channel: str
    target: str
    kind: str
    attempt: int
    max_attempts: int
    detail: str = ""
    not_before: float | None = None


class Progress:
    """Follows the deliveries it is given (other deliveries the lanes work on are not shown)."""

    def __init__(
        self,
        stream: TextIO,
        deliveries: Iterable[Delivery],
        *,
        live: bool,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._stream = stream
        self._live = live
        self._clock = clock
        self._seen: dict[str, _Seen] = {}
        self.follow(deliveries)
        self._drawn = 0
        self._ticker: asyncio.Task[None] | None = None
        encoding = (getattr(stream, "encoding", None) or "").lower()
        self._marks = _UNICODE if encoding.startswith("utf") else _ASCII

    def follow(self, deliveries: Iterable[Delivery]) -> None:
        """Show these deliveries too."""
        for d in deliveries:
            # In flight but not started (leased to a lane as it was accepted, or to another process) is, as far
            # as anyone watching can tell, still waiting: "sending" starts with the lane's STARTED event.
            kind = "pending" if d.state is DeliveryState.IN_FLIGHT else d.state.value
            self._seen[d.id] = _Seen(d.channel, d.target, kind, d.attempts, d.max_attempts, d.last_error, d.not_before)

    async def __aenter__(self) -> Progress:
        if self._live:
            self._draw()
            self._ticker = asyncio.create_task(self._tick())
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        if self._live:
            self._draw()

    def __call__(self, event: LaneEvent) -> None:
        seen = self._seen.get(event.delivery.id)
        if seen is None:
            return
        seen.kind = "sending" if event.kind is EventKind.STARTED else event.kind.value
        seen.attempt = event.attempt
        seen.detail = event.detail
        seen.not_before = event.not_before
        if self._live:
            self._draw()
        elif event.kind is not EventKind.STARTED:
            self._line(seen)

    def _line(self, seen: _Seen) -> None:
        stamp = datetime.now().astimezone().strftime("%H:%M:%S")
        what = seen.kind
        if seen.kind == EventKind.RETRYING and seen.not_before is not None:
            delay = max(0.0, seen.not_before - self._clock())
            what = f"retrying in {delay:.1f}s (attempt {seen.attempt}/{seen.max_attempts})"
        detail = f": {seen.detail}" if seen.detail else ""
        print(printable(f"[{stamp}] {seen.channel} {seen.target}: {what}{detail}"), file=self._stream, flush=True)

    def _draw(self) -> None:
        lines = self._channel_lines()
        out = self._stream
        if self._drawn:
            out.write(f"\x1b[{self._drawn}F")
        for line in lines:  # the escapes here are ours: erase the line, then its text made printable
            out.write(f"\x1b[2K{printable(line)}\n")
        out.flush()
        self._drawn = len(lines)

    def _channel_lines(self) -> list[str]:
        by_channel: dict[str, list[_Seen]] = defaultdict(list)
        for seen in self._seen.values():
            by_channel[seen.channel].append(seen)
        width = max((len(name) for name in by_channel), default=0)
        return [f"  {name.ljust(width)}  {self._summary(items)}" for name, items in by_channel.items()]

    def _summary(self, items: list[_Seen]) -> str:
        counts = Counter(item.kind for item in items)
        total = len(items)
        marks = self._marks
        if counts["delivered"] == total:
            return f"{marks['ok']} delivered" + (f" {total}/{total}" if total > 1 else "")
        parts = [f"{counts['delivered']}/{total} delivered"] if total > 1 else []
        for kind in ("sending", "retrying", "pending", "failed", "expired", "superseded"):
            if counts[kind]:
                parts.append(f"{counts[kind]} {kind}" if total > 1 else kind)
        latest = next((item for item in items if item.kind in ("retrying", "failed", "expired")), None)
        if latest is not None and latest.detail:
            if latest.kind == "retrying" and latest.not_before is not None:
                parts.append(f"next try in {max(0.0, latest.not_before - self._clock()):.0f}s: {latest.detail}")
            else:
                parts.append(latest.detail)
        bad = counts["failed"] or counts["expired"]
        busy = counts["sending"] or counts["retrying"] or counts["pending"]
        mark = marks["busy"] if busy else marks["bad"] if bad else marks["ok"]
        return f"{mark} " + marks["sep"].join(parts)

    async def _tick(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            self._draw()


_UNICODE = {"ok": "✓", "bad": "✗", "busy": "…", "sep": " · "}
_ASCII = {"ok": "ok", "bad": "FAILED", "busy": "...", "sep": ", "}
