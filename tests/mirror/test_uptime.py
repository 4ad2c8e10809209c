"""Uptime per component, replayed from component changes: Statuspage's weights, by time within each UTC day."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from broadcaster.domain.models import ComponentChange
from broadcaster.domain.uptime import ComponentUpdate, component_uptimes
from broadcaster.domain.vocabulary import ComponentState, Status

TODAY = date(2026, 3, 31)
OK = ComponentState.OPERATIONAL
DEGRADED = ComponentState.DEGRADED_PERFORMANCE
PARTIAL = ComponentState.PARTIAL_OUTAGE
MAJOR = ComponentState.MAJOR_OUTAGE


def at(day: date, hour: float) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC) + timedelta(hours=hour)


def update(incident: str, seq: int, when: datetime, status: Status, **states: ComponentState) -> ComponentUpdate:
    changes = tuple(ComponentChange(name, None, state) for name, state in states.items())
    return ComponentUpdate(incident, seq, status, when, changes)


def outage(incident: str, day: date, start: float, end: float, **states: ComponentState) -> list[ComponentUpdate]:
    """An incident that sets `states` at `start` hours into `day` and is resolved at `end` hours."""
    back = dict.fromkeys(states, OK)
    return [
        update(incident, 1, at(day, start), Status.INVESTIGATING, **states),
        update(incident, 2, at(day, end), Status.RESOLVED, **back),
    ]


@pytest.mark.parametrize(
    ("state", "expected"),
    [(MAJOR, 1 - 6 / 24), (PARTIAL, 1 - 0.3 * 6 / 24), (DEGRADED, 1.0), (ComponentState.UNDER_MAINTENANCE, 1.0)],
)
def test_each_state_counts_as_statuspage_weighs_it(state: ComponentState, expected: float) -> None:
    day = TODAY - timedelta(days=10)
    (api,) = component_uptimes(outage("a", day, 6, 12, API=state), ["API"], today=TODAY)
    (shown,) = [d for d in api.days if d.day == day]
    assert shown.worst is state
    assert shown.uptime == pytest.approx(expected)
    assert api.percent == pytest.approx(100 * (89 + expected) / 90, abs=0.01)
    assert all(d.uptime == 1 and d.worst is OK for d in api.days if d.day != day)


def test_the_window_is_ninety_utc_days_ending_on_the_render_date() -> None:
    (api,) = component_uptimes([], ["API"], today=TODAY)
    assert len(api.days) == 90
    assert (api.days[0].day, api.days[-1].day) == (TODAY - timedelta(days=89), TODAY)
    assert api.percent == 100


def test_an_outage_across_midnight_counts_on_both_days() -> None:
    day = TODAY - timedelta(days=3)
    (api,) = component_uptimes(outage("a", day, 18, 30, API=MAJOR), ["API"], today=TODAY)
    by_day = {d.day: d for d in api.days}
    assert by_day[day].uptime == pytest.approx(18 / 24)
    assert by_day[day + timedelta(days=1)].uptime == pytest.approx(18 / 24)
    assert by_day[day + timedelta(days=1)].worst is MAJOR
    assert by_day[day + timedelta(days=2)].worst is OK


def test_an_outage_begun_before_the_window_counts_from_its_start() -> None:
    first = TODAY - timedelta(days=89)
    (api,) = component_uptimes(outage("a", first - timedelta(days=5), 0, 24 * 5 + 12, API=MAJOR), ["API"], today=TODAY)
    assert api.days[0].worst is MAJOR
    assert api.days[0].uptime == pytest.approx(0.5)


def test_the_worst_of_overlapping_incidents_wins_and_changes_within_an_incident_count() -> None:
    day = TODAY - timedelta(days=1)
    updates = [
        *outage("a", day, 0, 12, API=PARTIAL),
        update("b", 1, at(day, 2), Status.INVESTIGATING, API=DEGRADED),
        update("b", 2, at(day, 4), Status.IDENTIFIED, API=MAJOR),
        update("b", 3, at(day, 6), Status.RESOLVED, API=OK),
    ]
    (api,) = component_uptimes(updates, ["API"], today=TODAY)
    (shown,) = [d for d in api.days if d.day == day]
    # partial 0-4 and 6-12 (10 h at 30%), major 4-6 (2 h)
    assert shown.uptime == pytest.approx(1 - (10 * 0.3 + 2) / 24)
    assert shown.worst is MAJOR


def test_scheduled_maintenance_does_not_count_until_it_is_under_way() -> None:
    day = TODAY - timedelta(days=2)
    updates = [
        update("m", 1, at(day, 1), Status.SCHEDULED, DB=ComponentState.UNDER_MAINTENANCE),
        update("m", 2, at(day, 10), Status.IN_PROGRESS, DB=MAJOR),
        update("m", 3, at(day, 11), Status.COMPLETED, DB=OK),
    ]
    (db,) = component_uptimes(updates, ["DB"], today=TODAY)
    (shown,) = [d for d in db.days if d.day == day]
    assert shown.uptime == pytest.approx(1 - 1 / 24)


def test_an_ongoing_outage_counts_through_the_end_of_the_render_date() -> None:
    """The same journal on the same date gives the same figures, however late in the day it is rendered."""
    updates = [update("a", 1, at(TODAY, 18), Status.INVESTIGATING, API=MAJOR)]
    (api,) = component_uptimes(updates, ["API"], today=TODAY)
    assert api.days[-1].worst is MAJOR
    assert api.days[-1].uptime == pytest.approx(0.75)


def test_a_percentage_with_any_downtime_is_never_shown_as_100() -> None:
    day = TODAY - timedelta(days=1)
    (api,) = component_uptimes(outage("a", day, 0, 0.01, API=MAJOR), ["API"], today=TODAY)
    assert 99.99 <= api.percent < 100
