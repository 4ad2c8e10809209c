"""Uptime per component over the last UPTIME_DAYS UTC days, replayed from the journal's component changes.

A component's state at any moment is the worst that any incident counting at that moment gives it, as
statuspage._components decides the current state: an incident counts from an update that leaves it open
(a maintenance once it is under way) until the update that resolves it. Uptime is counted as Statuspage
counts it: a major outage is downtime, a partial outage 30% downtime, degraded performance and maintenance
none, weighed by how long each state lasted within the day. A state lasts until the next change; the
render's own date counts the state in hand through to its end, so a page rendered twice on the same day
from the same journal is the same page. Pure: the same changes and date always give the same figures."""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Final

from broadcaster.domain.models import ComponentChange
from broadcaster.domain.vocabulary import ComponentState, Status

UPTIME_DAYS: Final = 90
DOWNTIME: Final = {ComponentState.MAJOR_OUTAGE: 1.0, ComponentState.PARTIAL_OUTAGE: 0.3}
"""How much of its duration each state counts as downtime (states not named: none)."""
_DAY: Final = 86_400.0


@dataclass(frozen=True, slots=True)
class ComponentUpdate:
    """What one journaled update said of components: enough to replay their states, without its message."""

    incident_id: str
    seq: int
    status: Status
    created_at: datetime
    components: tuple[ComponentChange, ...]


@dataclass(frozen=True, slots=True)
class UptimeDay:
    day: date
    worst: ComponentState
    """The worst state the component was in at any moment of the day."""
    uptime: float
    """The fraction of the day up, 0 to 1."""


@dataclass(frozen=True, slots=True)
class ComponentUptime:
    name: str
    days: tuple[UptimeDay, ...]
    """Oldest first, ending on the render's date."""

    @property
    def percent(self) -> float:
        """Uptime over all the days, in percent (see as_percent)."""
        return as_percent(sum(day.uptime for day in self.days) / len(self.days))

    def troubled_days(self) -> list[UptimeDay]:
        return [day for day in self.days if day.worst is not ComponentState.OPERATIONAL]


def as_percent(fraction: float) -> float:
    """A fraction in percent, rounded down to two decimals, so any downtime at all shows below 100. (Rounded
    to a millionth first: 0.29 * 10,000 is 2899.9999999999995 in floating point.)"""
    return math.floor(round(fraction * 10_000, 6)) / 100


def window_start(today: date, days: int = UPTIME_DAYS) -> datetime:
    """Midnight UTC at the start of the first day shown: the journal's changes from then on are needed,
    and every incident still counting then."""
    return datetime.combine(today - timedelta(days=days - 1), time(0), UTC)


def component_uptimes(
    updates: Iterable[ComponentUpdate], names: Sequence[str], *, today: date, days: int = UPTIME_DAYS
) -> tuple[ComponentUptime, ...]:
    """Each of `names`' uptime per day, the `days` UTC days ending on `today`. `updates` must hold every
    update of each incident still counting at the window's start (any order)."""
    timelines = _timelines(updates)
    start = window_start(today, days)
    return tuple(ComponentUptime(name, _days(timelines.get(name, []), start, days)) for name in names)


def _counts(status: Status) -> bool:
    return not status.is_final and status is not Status.SCHEDULED


def _timelines(updates: Iterable[ComponentUpdate]) -> dict[str, list[tuple[datetime, ComponentState]]]:
    """Each component's changes of state, oldest first: (from when, the worst state any counting incident gives it)."""
    ordered = sorted(updates, key=lambda u: (u.created_at, u.incident_id, u.seq))
    incident_states: dict[str, dict[str, ComponentState]] = {}
    counting: dict[str, dict[str, ComponentState]] = {}
    """By component: the state each counting incident gives it."""
    timelines: dict[str, list[tuple[datetime, ComponentState]]] = {}
    for update in ordered:
        states = incident_states.setdefault(update.incident_id, {})
        states.update((change.name, change.new) for change in update.components)
        counts = _counts(update.status)
        for name, state in states.items():
            by_incident = counting.setdefault(name, {})
            if counts:
                by_incident[update.incident_id] = state
            else:
                by_incident.pop(update.incident_id, None)
            worst = max(by_incident.values(), key=lambda s: s.severity, default=ComponentState.OPERATIONAL)
            timeline = timelines.setdefault(name, [])
            if (timeline[-1][1] if timeline else ComponentState.OPERATIONAL) is not worst:
                timeline.append((update.created_at, worst))
    return timelines


def _days(timeline: list[tuple[datetime, ComponentState]], start: datetime, days: int) -> tuple[UptimeDay, ...]:
    """The window's days from one component's changes of state."""
    downtime = [0.0] * days
    worst = [ComponentState.OPERATIONAL] * days
    end = start + timedelta(days=days)
    for position, (began, state) in enumerate(timeline):
        ended = timeline[position + 1][0] if position + 1 < len(timeline) else end
        since, until = max(began, start), min(ended, end)
        if since >= until:
            continue
        first = int((since - start).total_seconds() // _DAY)
        last = int(((until - start).total_seconds() - 1e-6) // _DAY)
        for index in range(first, last + 1):
            day_start = start + timedelta(days=index)
            seconds = (min(until, day_start + timedelta(days=1)) - max(since, day_start)).total_seconds()
            downtime[index] += seconds * DOWNTIME.get(state, 0.0)
            if state.severity > worst[index].severity:
                worst[index] = state
    first_day = start.date()
    return tuple(
        UptimeDay(first_day + timedelta(days=i), worst[i], max(0.0, 1 - downtime[i] / _DAY)) for i in range(days)
    )
