"""How updates change incidents: timestamps, components, impact, and the rules for resolved incidents."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from broadcaster.domain.errors import InputError
from broadcaster.domain.models import Incident, Update, UpdateDraft
from broadcaster.domain.transitions import apply_update
from broadcaster.domain.vocabulary import ComponentState, Impact, Kind, Status

T0 = datetime(2026, 11, 23, 8, 0, tzinfo=UTC)


def step(current: Incident | None, at: datetime = T0, **fields: Any) -> tuple[Incident, Update]:
    if current is not None:
        fields.setdefault("incident_id", current.id)
    else:
        fields.setdefault("title", "API errors")
    fields.setdefault("message", "An update.")
    return apply_update(UpdateDraft.model_validate(fields), current, at)


def test_opening_an_incident_sets_its_times_and_first_update() -> None:
    incident, update = step(None, status="investigating")
    assert incident.kind is Kind.INCIDENT
    assert incident.created_at == incident.started_at == incident.updated_at == T0
    assert incident.resolved_at is None and incident.monitoring_at is None
    assert update.seq == 1 and update.incident_id == incident.id
    assert incident.impact is Impact.MINOR  # no impact and no components given


def test_impact_is_derived_from_the_worst_component() -> None:
    incident, _ = step(None, status="identified", components={"API": "partial_outage", "Web": "degraded_performance"})
    assert incident.impact is Impact.MAJOR
    incident, _ = step(incident, T0 + timedelta(minutes=5), status="identified", components={"Web": "major_outage"})
    assert incident.impact is Impact.CRITICAL


def test_explicit_impact_wins() -> None:
    incident, _ = step(None, status="identified", impact="critical", components={"API": "degraded_performance"})
    assert incident.impact is Impact.CRITICAL


def test_monitoring_and_resolution_times_are_recorded_once() -> None:
    incident, _ = step(None, status="investigating")
    later = T0 + timedelta(minutes=10)
    incident, _ = step(incident, later, status="monitoring")
    assert incident.monitoring_at == later
    incident, _ = step(incident, later + timedelta(minutes=1), status="monitoring")
    assert incident.monitoring_at == later
    done = later + timedelta(minutes=30)
    incident, update = step(incident, done, status="resolved")
    assert incident.resolved_at == done
    assert update.seq == 4 and incident.update_count == 4


def test_resolving_returns_components_to_operational_and_records_the_change() -> None:
    incident, _ = step(None, status="identified", components={"API": "major_outage", "Web": "degraded_performance"})
    incident, update = step(incident, T0 + timedelta(hours=1), status="resolved", components={"Web": "operational"})
    assert incident.components == {"API": ComponentState.OPERATIONAL, "Web": ComponentState.OPERATIONAL}
    changes = {c.name: (c.old, c.new) for c in update.components}
    assert changes["API"] == (ComponentState.MAJOR_OUTAGE, ComponentState.OPERATIONAL)
    assert changes["Web"] == (ComponentState.DEGRADED_PERFORMANCE, ComponentState.OPERATIONAL)
    assert incident.impact is Impact.CRITICAL  # a resolved incident keeps its impact for history


def test_an_update_to_a_resolved_incident_is_refused_unless_reopened() -> None:
    """Late updates to a closed incident are usually mistakes; reopening is an explicit act."""
    incident, _ = step(None, status="resolved")
    with pytest.raises(InputError, match="reopen"):
        step(incident, status="investigating")
    reopened, _ = step(incident, T0 + timedelta(hours=2), status="investigating", reopen=True)
    assert reopened.status is Status.INVESTIGATING
    assert reopened.resolved_at is None
    with pytest.raises(InputError, match="other than resolved"):
        step(incident, status="resolved", reopen=True)


def test_status_of_the_wrong_kind_is_refused() -> None:
    incident, _ = step(None, status="investigating")
    with pytest.raises(InputError, match="its statuses are investigating"):
        step(incident, status="in_progress")


def test_maintenance_defaults_its_start_and_keeps_maintenance_impact() -> None:
    incident, _ = step(None, status="in_progress")
    assert incident.kind is Kind.MAINTENANCE
    assert incident.impact is Impact.MAINTENANCE
    assert incident.scheduled_for == T0


def test_next_update_time_must_be_in_the_future_and_clears_on_resolve() -> None:
    with pytest.raises(InputError, match="past"):
        step(None, status="investigating", next_update_at=T0 - timedelta(minutes=1))
    incident, update = step(None, status="investigating", next_update_at=T0 + timedelta(minutes=30))
    assert incident.next_update_at == update.next_update_at == T0 + timedelta(minutes=30)
    incident, _ = step(incident, T0 + timedelta(minutes=20), status="resolved")
    assert incident.next_update_at is None


def test_a_component_named_in_another_case_is_the_incidents_own() -> None:
    """ "api" from a phone is the incident's "API": its state changes, and no second component appears."""
    incident, _ = step(None, status="identified", components={"API": "major_outage"})
    incident, update = step(incident, T0 + timedelta(minutes=5), status="monitoring", components={"api": "operational"})
    assert incident.components == {"API": ComponentState.OPERATIONAL}
    assert [(c.name, c.old, c.new) for c in update.components] == [
        ("API", ComponentState.MAJOR_OUTAGE, ComponentState.OPERATIONAL)
    ]
