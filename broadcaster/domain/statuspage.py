"""The status of the whole page, derived from the journal, and its Atlassian Statuspage v2 JSON shapes.

Existing status consumers (monitoring dashboards, chat integrations, Statuspage clients) read these
shapes, so field names and values follow Statuspage's public API exactly. Everything here is a pure
function of the journal: the same journal always gives the same output, byte for byte."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any, Final

from broadcaster.domain.models import ID_ALPHABET, ID_LENGTH, Incident, IncidentHistory, Update
from broadcaster.domain.uptime import ComponentUptime
from broadcaster.domain.vocabulary import ComponentState, Impact, Kind, Status

INCIDENT_LIMIT: Final = 50  # Statuspage's incidents.json lists the 50 most recent
_IMPACT_ORDER: Final = (Impact.NONE, Impact.MINOR, Impact.MAJOR, Impact.CRITICAL)
# Statuspage's own words for status.description, for API and webhook consumers that match on them; the
# pages' banner speaks the badges' vocabulary instead (Impact.headline).
STATUS_DESCRIPTIONS: Final = {
    Impact.NONE: "All Systems Operational",
    Impact.MINOR: "Minor Service Outage",
    Impact.MAJOR: "Partial System Outage",
    Impact.CRITICAL: "Major Service Outage",
    Impact.MAINTENANCE: "Service Under Maintenance",
}


def iso(value: datetime | None) -> str | None:
    """ISO 8601 in UTC with milliseconds, as Statuspage writes times."""
    if value is None:
        return None
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def stable_id(*parts: str) -> str:
    """A Statuspage-style id derived from names, so every render gives the same ids."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return "".join(ID_ALPHABET[byte % len(ID_ALPHABET)] for byte in digest[:ID_LENGTH])


@dataclass(frozen=True, slots=True)
class Component:
    id: str
    name: str
    state: ComponentState
    position: int
    created_at: datetime | None
    updated_at: datetime | None


@dataclass(frozen=True, slots=True)
class IncidentSummary:
    """An incident or maintenance as the history page lists it: no updates, no components."""

    id: str
    name: str
    status: Status
    impact: Impact
    started_at: datetime
    resolved_at: datetime | None
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class Site:
    """The whole page at one moment: what every mirror file and the webhook envelope are made of."""

    page_id: str
    name: str
    url: str
    updated_at: datetime | None
    indicator: Impact
    components: tuple[Component, ...]
    histories: tuple[IncidentHistory, ...]
    """Every incident and maintenance known, oldest first."""

    @property
    def description(self) -> str:
        return STATUS_DESCRIPTIONS[self.indicator]

    def incidents(self) -> list[IncidentHistory]:
        """Incidents (not maintenance), most recently created first."""
        return [h for h in reversed(self.histories) if h.incident.kind is Kind.INCIDENT]

    def open_incidents(self) -> list[IncidentHistory]:
        return [h for h in self.incidents() if h.incident.is_open]

    def maintenances(self) -> list[IncidentHistory]:
        return [h for h in reversed(self.histories) if h.incident.kind is Kind.MAINTENANCE]

    def active_maintenances(self) -> list[IncidentHistory]:
        return [h for h in self.maintenances() if h.incident.status in (Status.IN_PROGRESS, Status.VERIFYING)]

    def upcoming_maintenances(self) -> list[IncidentHistory]:
        return [h for h in self.maintenances() if h.incident.status is Status.SCHEDULED]

    def component_id(self, name: str) -> str:
        return stable_id(self.page_id, "component", name)


def build_site(
    histories: Sequence[IncidentHistory], *, page_name: str, public_url: str, configured_components: Sequence[str]
) -> Site:
    """The page's state from the journal's incidents (any order)."""
    ordered = tuple(sorted(histories, key=lambda h: (h.incident.created_at, h.incident.id)))
    page_id = stable_id("page", public_url or page_name)
    updated = [h.incident.updated_at for h in ordered]
    return Site(
        page_id=page_id,
        name=page_name,
        url=public_url,
        updated_at=max(updated) if updated else None,
        indicator=_indicator(h.incident for h in ordered),
        components=_components(ordered, page_id, configured_components),
        histories=ordered,
    )


def _indicator(incidents: Iterable[Incident]) -> Impact:
    """The worst impact among open incidents; "maintenance" while only maintenance is under way."""
    worst = Impact.NONE
    maintenance = False
    for incident in incidents:
        if incident.kind is Kind.MAINTENANCE:
            maintenance |= incident.status in (Status.IN_PROGRESS, Status.VERIFYING)
        elif incident.is_open and _IMPACT_ORDER.index(incident.impact) > _IMPACT_ORDER.index(worst):
            worst = incident.impact
    return Impact.MAINTENANCE if worst is Impact.NONE and maintenance else worst


def _components(histories: Sequence[IncidentHistory], page_id: str, configured: Sequence[str]) -> tuple[Component, ...]:
    """Each component's state is the worst that any open incident or maintenance under way gives it;
    operational otherwise. Configured components come first, in their order, then the others by name."""
    state: dict[str, ComponentState] = {}
    first_seen: dict[str, datetime] = {}
    last_changed: dict[str, datetime] = {}
    for history in histories:
        for update in history.updates:
            for change in update.components:
                first_seen.setdefault(change.name, update.created_at)
                last_changed[change.name] = max(last_changed.get(change.name, update.created_at), update.created_at)
        incident = history.incident
        counts = incident.is_open and incident.status is not Status.SCHEDULED
        for name, current in incident.components.items():
            if counts and current.severity > state.get(name, ComponentState.OPERATIONAL).severity:
                state[name] = current
    names = list(dict.fromkeys([*configured, *sorted(first_seen)]))
    return tuple(
        Component(
            id=stable_id(page_id, "component", name),
            name=name,
            state=state.get(name, ComponentState.OPERATIONAL),
            position=position,
            created_at=first_seen.get(name),
            updated_at=last_changed.get(name),
        )
        for position, name in enumerate(names, start=1)
    )


# --- the JSON shapes


def page_json(site: Site) -> dict[str, Any]:
    return {
        "id": site.page_id,
        "name": site.name,
        "url": site.url,
        "time_zone": "Etc/UTC",
        "updated_at": iso(site.updated_at),
    }


def status_json(site: Site) -> dict[str, Any]:
    return {"indicator": site.indicator.value, "description": site.description}


def component_json(site: Site, component: Component) -> dict[str, Any]:
    return {
        "id": component.id,
        "name": component.name,
        "status": component.state.value,
        "created_at": iso(component.created_at),
        "updated_at": iso(component.updated_at),
        "position": component.position,
        "description": None,
        "showcase": True,
        "start_date": None,
        "group_id": None,
        "page_id": site.page_id,
        "group": False,
        "only_show_if_degraded": False,
    }


def incident_json(site: Site, history: IncidentHistory) -> dict[str, Any]:
    """An incident or scheduled maintenance in Statuspage's shape; updates newest first, as Statuspage lists them."""
    incident = history.incident
    by_name = {c.name: c for c in site.components}
    shape: dict[str, Any] = {
        "id": incident.id,
        "name": incident.name,
        "status": incident.status.value,
        "created_at": iso(incident.created_at),
        "updated_at": iso(incident.updated_at),
        "monitoring_at": iso(incident.monitoring_at),
        "resolved_at": iso(incident.resolved_at),
        "impact": incident.impact.value,
        "shortlink": shortlink(site, incident.id),
        "started_at": iso(incident.started_at),
        "page_id": site.page_id,
        "incident_updates": [update_json(site, update) for update in reversed(history.updates)],
        "components": [component_json(site, by_name[name]) for name in incident.components if name in by_name],
    }
    if incident.kind is Kind.MAINTENANCE:
        shape["scheduled_for"] = iso(incident.scheduled_for)
        shape["scheduled_until"] = iso(incident.scheduled_until)
    return shape


def update_json(site: Site, update: Update) -> dict[str, Any]:
    affected = [
        {
            "code": site.component_id(change.name),
            "name": change.name,
            "old_status": (change.old or ComponentState.OPERATIONAL).value,
            "new_status": change.new.value,
        }
        for change in update.components
    ]
    return {
        "id": update.id,
        "status": update.status.value,
        "body": update.message,
        "incident_id": update.incident_id,
        "created_at": iso(update.created_at),
        "updated_at": iso(update.created_at),
        "display_at": iso(update.created_at),
        "affected_components": affected or None,
        "deliver_notifications": True,
        "custom_tweet": None,
        "tweet_id": None,
    }


def shortlink(site: Site, incident_id: str) -> str:
    """The incident's page on the mirror: absolute when [mirror] public_url is set, else relative to the site root."""
    path = f"incidents/{incident_id}.html"
    return f"{site.url}/{path}" if site.url else path


def api_files(site: Site) -> dict[str, dict[str, Any]]:
    """Every api/v2 file of the mirror, by path relative to the site root."""
    page = page_json(site)
    components = [component_json(site, c) for c in site.components]
    unresolved = [incident_json(site, h) for h in site.open_incidents()]
    upcoming = [incident_json(site, h) for h in site.upcoming_maintenances()]
    active = [incident_json(site, h) for h in site.active_maintenances()]
    return {
        "api/v2/status.json": {"page": page, "status": status_json(site)},
        "api/v2/summary.json": {
            "page": page,
            "components": components,
            "incidents": unresolved,
            "scheduled_maintenances": active + upcoming,
            "status": status_json(site),
        },
        "api/v2/components.json": {"page": page, "components": components},
        "api/v2/incidents.json": {
            "page": page,
            "incidents": [incident_json(site, h) for h in site.incidents()[:INCIDENT_LIMIT]],
        },
        "api/v2/incidents/unresolved.json": {"page": page, "incidents": unresolved},
        "api/v2/scheduled-maintenances.json": {
            "page": page,
            "scheduled_maintenances": [incident_json(site, h) for h in site.maintenances()[:INCIDENT_LIMIT]],
        },
        "api/v2/scheduled-maintenances/upcoming.json": {"page": page, "scheduled_maintenances": upcoming},
        "api/v2/scheduled-maintenances/active.json": {"page": page, "scheduled_maintenances": active},
    }


def uptime_json(site: Site, uptimes: Sequence[ComponentUptime], *, today: date) -> dict[str, Any]:
    """uptime.json: each component's UTC days (oldest first) ending on `today`, with the worst state of
    each day, the fraction of it up, and the uptime over all of them in percent. Not a Statuspage file
    (its API has no uptime), so nothing in it changes unless a component's history or the date does."""
    return {
        "date": today.isoformat(),
        "days": len(uptimes[0].days) if uptimes else 0,
        "components": [
            {
                "id": site.component_id(uptime.name),
                "name": uptime.name,
                "uptime_percent": uptime.percent,
                "days": [
                    {"date": day.day.isoformat(), "worst_status": day.worst.value, "uptime": round(day.uptime, 6)}
                    for day in uptime.days
                ],
            }
            for uptime in uptimes
        ],
    }
