"""Incidents, updates and Jobs built the way the lane builds them, for driving EmailChannel.send directly.

`Attempts` stands in for the journal between attempts of one delivery: it keeps what the channel saved
through Job.save_progress and hands it to the next attempt, as the lane does."""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from broadcaster.domain.models import Incident, Update
from broadcaster.domain.vocabulary import ComponentState, Impact, Kind, Status
from channels.base import Job

STARTED = datetime(2024, 5, 1, 9, 40, tzinfo=UTC)


def story(
    *statuses: str,
    name: str = "API errors",
    impact: str = "major",
    components: Mapping[str, str] | None = None,
    messages: tuple[str, ...] = (),
    incident_id: str = "inc0000000ab",
) -> tuple[Incident, tuple[Update, ...]]:
    """An incident after updates with these statuses (default: one "investigating"), ten minutes apart.
    Update ids are the incident id's last three characters and the update's number, e.g. "0ab000000001"."""
    statuses = statuses or ("investigating",)
    states = {key: ComponentState(value) for key, value in (components or {"API": "major_outage"}).items()}
    updates = tuple(
        Update(
            id=f"{incident_id[-3:]}{seq:09d}",
            incident_id=incident_id,
            seq=seq,
            status=Status(status),
            impact=Impact(impact),
            message=messages[seq - 1] if seq <= len(messages) else f"Update number {seq}.",
            components=(),
            created_at=STARTED + timedelta(minutes=10 * (seq - 1)),
            next_update_at=None,
        )
        for seq, status in enumerate(statuses, start=1)
    )
    last = updates[-1]
    incident = Incident(
        id=incident_id,
        kind=last.status.kind,
        name=name,
        status=last.status,
        impact=Impact(impact),
        components=states,
        created_at=STARTED,
        updated_at=last.created_at,
        started_at=STARTED,
        monitoring_at=None,
        resolved_at=last.created_at if last.status.is_final else None,
        scheduled_for=STARTED + timedelta(days=1) if last.status.kind is Kind.MAINTENANCE else None,
        scheduled_until=STARTED + timedelta(days=1, hours=2) if last.status.kind is Kind.MAINTENANCE else None,
        next_update_at=None,
        update_count=len(updates),
    )
    return incident, updates


@dataclass
class Attempts:
    """Successive attempts of one delivery, with the progress each one saved."""

    incident: Incident
    history: tuple[Update, ...]
    progress: dict[str, str] = field(default_factory=dict)
    saves: int = 0
    attempt: int = 0
    stop: bool = False
    """What the next jobs' stop_requested() answers: the lane is stopping."""

    async def save_progress(self, entries: Mapping[str, str]) -> None:
        self.progress.update(entries)
        self.saves += 1

    def next(self, *, expires_at: float | None = None) -> Job:
        self.attempt += 1
        return Job(
            delivery_id=f"dlv-{self.history[-1].id}",
            channel="email",
            target="subscribers",
            attempt=self.attempt,
            max_attempts=8,
            expires_at=time.time() + 3600 if expires_at is None else expires_at,
            incident=self.incident,
            update=self.history[-1],
            history=self.history,
            thread_parent=None,
            progress=dict(self.progress),
            save_progress=self.save_progress,
            stop_requested=lambda: self.stop,
        )


def attempts(*statuses: str, **kwargs: Any) -> Attempts:
    incident, history = story(*statuses, **kwargs)
    return Attempts(incident, history)
