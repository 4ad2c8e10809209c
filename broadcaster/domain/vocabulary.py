"""The design's vocabulary: statuses, impacts, component states and delivery states."""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Kind(StrEnum):
    INCIDENT = "incident"
    MAINTENANCE = "maintenance"


class Status(StrEnum):
    INVESTIGATING = "investigating"
    IDENTIFIED = "identified"
    MONITORING = "monitoring"
    RESOLVED = "resolved"
    SCHEDULED = "scheduled"
    IN_PROGRESS = "in_progress"
    VERIFYING = "verifying"
    COMPLETED = "completed"

    @property
    def kind(self) -> Kind:
        return Kind.MAINTENANCE if self in MAINTENANCE_STATUSES else Kind.INCIDENT

    @property
    def is_final(self) -> bool:
        return self in (Status.RESOLVED, Status.COMPLETED)

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


MAINTENANCE_STATUSES: Final = (Status.SCHEDULED, Status.IN_PROGRESS, Status.VERIFYING, Status.COMPLETED)


class Impact(StrEnum):
    NONE = "none"
    MINOR = "minor"
    MAJOR = "major"
    CRITICAL = "critical"
    MAINTENANCE = "maintenance"

    @property
    def label(self) -> str:
        return IMPACT_LABELS[self]

    @property
    def headline(self) -> str:
        """The status page's banner while this is the page's indicator: the label itself, so the banner
        and the badges under it say the same words; a whole phrase for the two calm states."""
        return _CALM_HEADLINES.get(self, IMPACT_LABELS[self])


IMPACT_LABELS: Final = {
    Impact.NONE: "No impact",
    Impact.MINOR: "Minor outage",
    Impact.MAJOR: "Major outage",
    Impact.CRITICAL: "Critical outage",
    Impact.MAINTENANCE: "Maintenance",
}
_CALM_HEADLINES: Final = {Impact.NONE: "All systems operational", Impact.MAINTENANCE: "Maintenance under way"}


class ComponentState(StrEnum):
    OPERATIONAL = "operational"
    DEGRADED_PERFORMANCE = "degraded_performance"
    PARTIAL_OUTAGE = "partial_outage"
    MAJOR_OUTAGE = "major_outage"
    UNDER_MAINTENANCE = "under_maintenance"

    @property
    def severity(self) -> int:
        """Orders states from harmless to worst, for "the worst state wins" merges."""
        return _SEVERITY[self]

    @property
    def label(self) -> str:
        return self.value.replace("_", " ").capitalize()


_SEVERITY: Final = {
    ComponentState.OPERATIONAL: 0,
    ComponentState.UNDER_MAINTENANCE: 1,
    ComponentState.DEGRADED_PERFORMANCE: 2,
    ComponentState.PARTIAL_OUTAGE: 3,
    ComponentState.MAJOR_OUTAGE: 4,
}

# What an incident's impact is when the commander gives none: the worst affected component decides.
IMPACT_OF_COMPONENT: Final = {
    ComponentState.OPERATIONAL: Impact.NONE,
    ComponentState.UNDER_MAINTENANCE: Impact.MAINTENANCE,
    ComponentState.DEGRADED_PERFORMANCE: Impact.MINOR,
    ComponentState.PARTIAL_OUTAGE: Impact.MAJOR,
    ComponentState.MAJOR_OUTAGE: Impact.CRITICAL,
}


class DeliveryState(StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    FAILED = "failed"
    EXPIRED = "expired"
    SUPERSEDED = "superseded"

    @property
    def is_final(self) -> bool:
        return self in FINAL_DELIVERY_STATES


FINAL_DELIVERY_STATES: Final = frozenset({"delivered", "failed", "expired", "superseded"})
"""The states a delivery leaves only by an operator's requeue (as a set: the lanes test it per outcome)."""


class Ordering(StrEnum):
    """How a lane orders and collapses the deliveries of one target."""

    IN_ORDER = "in_order"
    """Every update is delivered, one at a time per target, in the order accepted (webhook, mirror)."""
    LATEST_ONLY = "latest_only"
    """Only the newest update of an incident matters: a newer update supersedes an older one still
    queued for the same target, and an incident's updates go out one at a time (email, X)."""
