"""What the JSON API answers, as pydantic models: each response is built through one of them, and the OpenAPI
document (broadcaster.web.openapi) is generated from the same models, so the two cannot drift apart."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.vocabulary import ComponentState, DeliveryState, Impact, Status
from broadcaster.store import Attempt, Delivery


class View(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Problem(View):
    """Every error answer: what was wrong, and per field what is wrong with it (when fields were at fault)."""

    error: str
    fields: dict[str, str] = Field(default={})


class DeliveryBrief(View):
    channel: str
    target: str
    state: DeliveryState


class UpdateAccepted(View):
    """202: the update is journaled (durable); its deliveries are on their way."""

    update_id: str
    incident_id: str
    deliveries: list[DeliveryBrief]


class AttemptView(View):
    number: int
    finished_at: datetime
    outcome: str
    error: str


class DeliveryView(View):
    id: str
    channel: str
    target: str
    state: DeliveryState
    attempts: int
    max_attempts: int
    expires_at: datetime
    finished_at: datetime | None
    error: str
    detail: str
    external_id: str | None
    attempt_log: list[AttemptView] = Field(default=[], description="Every attempt, oldest first.")


class UpdateView(View):
    update_id: str
    incident_id: str
    seq: int
    status: Status
    impact: Impact
    message: str
    author: str
    created_at: datetime
    next_update_at: datetime | None
    components: dict[str, ComponentState]
    deliveries: list[DeliveryView]


class IncidentSummary(View):
    incident_id: str
    kind: Literal["incident", "maintenance"]
    name: str
    status: Status
    impact: Impact
    components: dict[str, ComponentState]
    created_at: datetime
    updated_at: datetime
    next_update_at: datetime | None
    overdue: bool = Field(description="Its next update was due and has not come.")


class IncidentList(View):
    incidents: list[IncidentSummary]


class UpdateBrief(View):
    update_id: str
    seq: int
    status: Status
    message: str
    author: str
    created_at: datetime


class IncidentView(IncidentSummary):
    updates: list[UpdateBrief]


class PauseRequest(View):
    target: str = Field(default="", description='One target of the channel; "" (default) for the whole channel.')
    reason: str = Field(default="", max_length=500, description="Shown with the pause by `broadcaster status`.")


class RetryRequest(View):
    update_id: str | None = Field(default=None, description="Only this update's failed deliveries.")
    channel: str | None = Field(default=None, description="Only this channel's.")


class PauseView(View):
    channel: str
    target: str = Field(description='"" for the whole channel')
    paused: bool


class Requeued(View):
    requeued: int
    too_old: int = Field(description="Failed deliveries past their time-to-live, which stay failed.")


def moment(epoch: float) -> datetime:
    return datetime.fromtimestamp(epoch, UTC)


def delivery_view(delivery: Delivery, attempts: list[Attempt]) -> DeliveryView:
    return DeliveryView(
        id=delivery.id,
        channel=delivery.channel,
        target=delivery.target,
        state=delivery.state,
        attempts=delivery.attempts,
        max_attempts=delivery.max_attempts,
        expires_at=moment(delivery.expires_at),
        finished_at=None if delivery.finished_at is None else moment(delivery.finished_at),
        error=delivery.last_error,
        detail=delivery.detail,
        external_id=delivery.external_id,
        attempt_log=[
            AttemptView(number=a.number, finished_at=moment(a.finished_at), outcome=a.outcome, error=a.error)
            for a in attempts
        ],
    )


def update_view(update: Update, deliveries: list[DeliveryView]) -> UpdateView:
    return UpdateView(
        update_id=update.id,
        incident_id=update.incident_id,
        seq=update.seq,
        status=update.status,
        impact=update.impact,
        message=update.message,
        author=update.author,
        created_at=update.created_at,
        next_update_at=update.next_update_at,
        components={change.name: change.new for change in update.components},
        deliveries=deliveries,
    )


def incident_summary(incident: Incident, *, now: datetime) -> IncidentSummary:
    return IncidentSummary(**_incident_fields(incident, now=now))


def incident_view(incident: Incident, updates: tuple[Update, ...], *, now: datetime) -> IncidentView:
    briefs = [
        UpdateBrief(
            update_id=u.id, seq=u.seq, status=u.status, message=u.message, author=u.author, created_at=u.created_at
        )
        for u in updates
    ]
    return IncidentView(**_incident_fields(incident, now=now), updates=briefs)


def is_overdue(incident: Incident, *, now: datetime) -> bool:
    """An open incident whose promised next update is late."""
    return incident.is_open and incident.next_update_at is not None and incident.next_update_at <= now


def _incident_fields(incident: Incident, *, now: datetime) -> dict[str, object]:
    return {
        "incident_id": incident.id,
        "kind": incident.kind.value,
        "name": incident.name,
        "status": incident.status,
        "impact": incident.impact,
        "components": dict(incident.components),
        "created_at": incident.created_at,
        "updated_at": incident.updated_at,
        "next_update_at": incident.next_update_at,
        "overdue": is_overdue(incident, now=now),
    }
