"""Per-channel progress while the CLI delivers.

On a terminal, one line per channel is redrawn in place: a bar, the counts, the next retry, and an estimate of
the time left. Anywhere else (a pipe, a log file, CI), a line is printed each time a channel changes (starts,
retries, fails, pauses, finishes), never one per delivery: a webhook fan-out to 5,000 failing targets is a
handful of lines, not 25,000, and a reader that stops reading cannot fill the pipe and freeze the send (see
streams.write_or_drop). Target names and error details come from outside (configuration, SMTP replies,
receivers' answers): each line goes through printable(), so none of them can move the cursor or recolour the
terminal."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Final, TextIO

from broadcaster.cli.streams import write_or_drop
from broadcaster.domain.text import printable
from broadcaster.domain.vocabulary import DeliveryState
from broadcaster.lanes import EventKind, LaneEvent, LaneStatus
from broadcaster.store import Delivery
from broadcaster.store.base import LaneControl

OPEN: Final = frozenset({"pending", "sending", "retrying", "interrupted"})
"""Kinds a delivery can still move on from."""
_BAR_WIDTH: Final = 20


@dataclass(slots=True)
class _Seen:
    channel: str
    target: str
    kind: str
    attempt: int
    max_attempts: int
    detail: str = ""
    not_before: float | None = None


@dataclass(slots=True)
class _Channel:
    """One channel's followed deliveries, counted by kind as they change (so that a change costs the same
    with 5,000 targets as with one)."""

    items: list[_Seen] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    problem: _Seen | None = None
    """The latest delivery to retry, fail or expire: its detail says what is going wrong."""
    open_targets: Counter[str] = field(default_factory=Counter)
    """Open deliveries per target (retry may follow several updates' to one target): which are held by a
    target's pause is then a look-up per paused target, not a pass over every delivery."""
    started_at: float | None = None
    reported: str = "waiting"
    """The phase last printed (lines mode)."""

    @property
    def open(self) -> int:
        return sum(self.counts[kind] for kind in OPEN)


MOST_HINTS: Final = 3
"""Pauses named one by one; past these, "and N more" (a channel may have hundreds of paused targets)."""


def resume_command(channel: str, target: str = "") -> str:
    return f"`broadcaster resume {channel}{f' --target {target}' if target else ''}`"


def resume_hint(channel: str, target: str = "") -> str:
    """The one wording for a pause, with the command that lifts it."""
    return f"{channel}{f' target {target}' if target else ''} is paused: {resume_command(channel, target)}"


def capped(hints: Sequence[str]) -> list[str]:
    """The first MOST_HINTS of `hints`, and how many more there are."""
    more = len(hints) - MOST_HINTS
    return [*hints[:MOST_HINTS], f"and {more} more paused"] if more > 0 else list(hints)


@dataclass(frozen=True, slots=True)
class Pauses:
    """The pauses holding back some of an update's deliveries."""

    notes: list[str]
    """A resume_hint each (capped)."""
    lifted_by: str
    """The command that lifts them (one pause), else where they are named."""
    hold_all: bool
    """Whether everything still waiting waits on one of them."""


def pauses_holding(controls: Iterable[LaneControl], deliveries: Sequence[Delivery]) -> Pauses:
    """The pauses that hold back one of these deliveries."""
    waiting = {(d.channel, d.target) for d in deliveries if not d.state.is_final}
    channels = {channel for channel, _target in waiting}
    holding = [
        c
        for c in controls
        if c.paused and (c.channel in channels if not c.target else (c.channel, c.target) in waiting)
    ]
    held_channels = {c.channel for c in holding if not c.target}
    held_targets = {(c.channel, c.target) for c in holding if c.target}
    only = holding[0] if len(holding) == 1 else None
    return Pauses(
        notes=capped([resume_hint(c.channel, c.target) for c in holding]),
        lifted_by=resume_command(only.channel, only.target) if only else "`broadcaster resume` of the pauses above",
        hold_all=bool(holding) and all(c in held_channels or (c, t) in held_targets for c, t in waiting),
    )


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
        self._channels: dict[str, _Channel] = {}
        self._lanes: Callable[[], Iterable[LaneStatus]] = list
        self._paused: dict[str, LaneStatus] = {}
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
            seen = self._seen.get(d.id)
            if seen is None:
                seen = self._seen[d.id] = _Seen(d.channel, d.target, "", d.attempts, d.max_attempts)
                self._channels.setdefault(d.channel, _Channel()).items.append(seen)
            seen.detail, seen.not_before = d.last_error, d.not_before
            self._set_kind(seen, kind)

    def note(self, text: str) -> None:
        """A line of news amid the progress (on a terminal, the channel lines are drawn again below it)."""
        write_or_drop(self._stream, printable(text) + "\n")
        self._drawn = 0

    def watch_lanes(self, statuses: Callable[[], Iterable[LaneStatus]]) -> None:
        """Where to see which channels and targets are paused (the lanes read the journal's pauses)."""
        self._lanes = statuses

    async def __aenter__(self) -> Progress:
        self._ticker = asyncio.create_task(self._tick())
        if self._live:
            self._draw()
        return self

    async def __aexit__(self, *_: object) -> None:
        if self._ticker is not None:
            self._ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._ticker
        self._look()

    def __call__(self, event: LaneEvent) -> None:
        seen = self._seen.get(event.delivery.id)
        if seen is None:
            return
        channel = self._channels[seen.channel]
        if event.kind is EventKind.STARTED and channel.started_at is None:
            channel.started_at = self._clock()
        seen.attempt = event.attempt
        seen.detail = event.detail
        seen.not_before = event.not_before
        self._set_kind(seen, "sending" if event.kind is EventKind.STARTED else event.kind.value)
        if not self._live:
            self._report(seen.channel, channel)

    def _set_kind(self, seen: _Seen, kind: str) -> None:
        channel = self._channels[seen.channel]
        if seen.kind:
            channel.counts[seen.kind] -= 1
            if seen.kind in OPEN:
                channel.open_targets[seen.target] -= 1
        channel.counts[kind] += 1
        if kind in OPEN:
            channel.open_targets[seen.target] += 1
        seen.kind = kind
        if kind in ("retrying", "failed", "expired"):
            channel.problem = seen

    async def _tick(self) -> None:
        """Redraw (a terminal), or look for pauses (lines): every lane reads its pauses about once a second."""
        while True:
            await asyncio.sleep(0.5 if self._live else 1.0)
            self._look()

    def _look(self) -> None:
        self._paused = {status.channel: status for status in self._lanes() if status.paused or status.paused_targets}
        if self._live:
            self._draw()
        else:
            for name, channel in self._channels.items():
                self._report(name, channel)

    # Lines mode: one line per change of a channel's phase.

    def _report(self, name: str, channel: _Channel) -> None:
        phase, text = self._phase(name, channel)
        if phase == channel.reported:
            return
        channel.reported = phase
        stamp = datetime.fromtimestamp(self._clock(), UTC).strftime("%H:%M:%SZ")  # UTC, as `status` writes times
        write_or_drop(self._stream, printable(f"[{stamp}] {self._name(name, channel)}: {text}") + "\n")

    def _name(self, name: str, channel: _Channel) -> str:
        items = channel.items
        return f"{name} {items[0].target}" if len(items) == 1 else f"{name} ({len(items)} targets)"

    def _phase(self, name: str, channel: _Channel) -> tuple[str, str]:
        """The channel's phase (what a change of is reported) and how to say it."""
        counts, total, problem = channel.counts, len(channel.items), channel.problem
        if hint := self._held(name, channel):
            return "paused", hint
        if not channel.open:
            return "finished", self._outcome(counts, total, problem)
        if counts["failed"] or counts["expired"]:
            return "failing", f"failing ({self._tally(counts, total)}){_detail(problem)}"
        if counts["retrying"] and problem is not None:
            if total == 1:  # one target: each attempt is news, and there are at most max_attempts of them
                return f"retrying {problem.attempt}", f"{self._retry(problem)}{_detail(problem)}"
            return "retrying", f"retrying ({self._tally(counts, total)}){_detail(problem)}"
        phase = "sending" if counts["sending"] or channel.started_at is not None else "waiting"
        return phase, phase

    def _held(self, name: str, channel: _Channel) -> str:
        """A resume hint when everything this channel still has to do waits on a pause, else ""."""
        status = self._paused.get(name)
        if status is None or not channel.open:
            return ""
        if status.paused:
            return resume_hint(name)
        held = sorted(target for target in status.paused_targets if channel.open_targets[target] > 0)
        if sum(channel.open_targets[target] for target in held) < channel.open:
            return ""  # some of what is left can go: the channel is not held
        return "; ".join(capped([resume_hint(name, target) for target in held]))

    def _outcome(self, counts: Counter[str], total: int, problem: _Seen | None) -> str:
        if total == 1:
            kind = next(kind for kind, count in counts.items() if count)
            return kind + (_detail(problem) if kind in ("failed", "expired") else "")
        trouble = _detail(problem) if counts["failed"] or counts["expired"] else ""
        return f"finished: {self._tally(counts, total)}{trouble}"

    def _tally(self, counts: Counter[str], total: int) -> str:
        parts = [f"{counts['delivered']}/{total} delivered"]
        parts += [f"{counts[kind]} {kind}" for kind in _SHOWN if counts[kind]]
        return ", ".join(parts)

    def _retry(self, seen: _Seen) -> str:
        delay = max(0.0, (seen.not_before or 0.0) - self._clock())
        return f"retrying in {delay:.1f}s (attempt {seen.attempt}/{seen.max_attempts})"

    # Terminal mode: one line per channel, redrawn in place.

    def _draw(self) -> None:
        lines = self._channel_lines()
        out = self._stream
        text = f"\x1b[{self._drawn}F" if self._drawn else ""
        # The escapes here are ours: erase the line, then its text made printable.
        text += "".join(f"\x1b[2K{printable(line)}\n" for line in lines)
        write_or_drop(out, text)
        self._drawn = len(lines)

    def _channel_lines(self) -> list[str]:
        width = max((len(name) for name in self._channels), default=0)
        return [f"  {name.ljust(width)}  {self._summary(name, channel)}" for name, channel in self._channels.items()]

    def _summary(self, name: str, channel: _Channel) -> str:
        counts, total, marks = channel.counts, len(channel.items), self._marks
        if hint := self._held(name, channel):
            return f"{marks['paused']} {hint}"
        done = total - channel.open
        bar = "" if total == 1 else self._bar(done, total) + " "
        if counts["delivered"] == total:
            return f"{marks['ok']} {bar}delivered" + (f" {total}/{total}" if total > 1 else "")
        parts = [f"{counts['delivered']}/{total} delivered"] if total > 1 else []
        for kind in ("sending", "retrying", "pending", *_SHOWN):
            if counts[kind]:
                parts.append(f"{counts[kind]} {kind}" if total > 1 else kind)
        problem = channel.problem
        if problem is not None and problem.detail and problem.kind in ("retrying", "failed", "expired"):
            if problem.kind == "retrying" and problem.not_before is not None:
                parts.append(f"next try in {max(0.0, problem.not_before - self._clock()):.0f}s: {problem.detail}")
            else:
                parts.append(problem.detail)
        if left := self._time_left(channel, done):
            parts.append(left)
        bad = counts["failed"] or counts["expired"]
        mark = marks["busy"] if channel.open else marks["bad"] if bad else marks["ok"]
        return f"{mark} {bar}" + marks["sep"].join(parts)

    def _bar(self, done: int, total: int) -> str:
        filled = _BAR_WIDTH * done // total
        return "[" + self._marks["full"] * filled + self._marks["empty"] * (_BAR_WIDTH - filled) + "]"

    def _time_left(self, channel: _Channel, done: int) -> str:
        """An estimate from the pace so far: what is still open at the rate deliveries have settled."""
        if channel.started_at is None or not done or not channel.open:
            return ""
        elapsed = self._clock() - channel.started_at
        if elapsed <= 0:
            return ""
        return f"about {_duration(channel.open * elapsed / done)} left"


def _detail(seen: _Seen | None) -> str:
    return f": {seen.detail}" if seen is not None and seen.detail else ""


def _duration(seconds: float) -> str:
    whole = max(1, round(seconds))
    if whole < 60:
        return f"{whole}s"
    minutes = whole // 60
    return f"{minutes}m" if minutes < 60 else f"{minutes // 60}h {minutes % 60}m"


_SHOWN: Final = ("failed", "expired", "superseded")
_UNICODE: Final = {"ok": "✓", "bad": "✗", "busy": "…", "paused": "‖", "sep": " · ", "full": "█", "empty": "░"}
_ASCII: Final = {"ok": "ok", "bad": "FAILED", "busy": "...", "paused": "PAUSED", "sep": ", ", "full": "#", "empty": "."}
